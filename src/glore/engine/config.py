"""Typed training configuration: dataclasses, YAML recipes and ``--set a.b=c`` overrides.

A recipe is a YAML file with up to seven sections (``task``, ``model``, ``data``, ``optim``, ``schedule``,
``train``, ``output``); every key it omits keeps the default written below, so each default is visible in
one place. Unknown keys and values of the wrong type are errors that name the key and list what is valid.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

__all__ = [
    "add_override_argument",
    "Config",
    "ConfigError",
    "DataConfig",
    "EMAConfig",
    "ModelConfig",
    "OptimConfig",
    "OutputConfig",
    "ScheduleConfig",
    "TrainConfig",
    "apply_overrides",
    "check_config",
    "config_to_dict",
    "load_config",
    "save_config",
]


class ConfigError(ValueError):
    """A configuration key is unknown or its value has the wrong type."""


class _YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading numbers in exponent form as YAML 1.2 does: ``1e-3`` is a float (YAML 1.1,
    which PyYAML follows, wants ``1.0e-3`` and reads ``1e-3`` as a string)."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)

# The least value of options with a range (ints, unless noted); null stays allowed where the type allows it.
MINIMUMS: dict[str, int] = {
    "model.num_classes": 1,
    "data.image_size": 1,
    "data.batch_size": 1,
    "data.val_batch_size": 1,
    "data.num_workers": 0,
    "optim.lr_base_batch_size": 1,
    "schedule.warmup_iters": 0,
    "train.epochs": 1,
    "train.iterations": 1,
    "train.eval_every_iters": 1,
    "train.log_every": 1,
    "train.eval_every": 1,
    "train.checkpoint_every_iters": 1,
    "train.ema.every": 1,
}
# Options that must be positive numbers (floats) when set.
POSITIVE = ("train.checkpoint_every_minutes",)


def _check_range(key: str, value: Any) -> None:
    """Raise ``ConfigError`` naming ``key`` when ``value`` lies outside the option's range."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if key in MINIMUMS and value < MINIMUMS[key]:
        least = MINIMUMS[key]
        what = "a positive int" if least == 1 else f"an int >= {least}"
        raise ConfigError(f"{key}: expected {what}, got {value!r}")
    if key in POSITIVE and not value > 0:
        raise ConfigError(f"{key}: expected a positive number or null, got {value!r}")


@dataclass
class ModelConfig:
    """The network, passed to ``glore.models.create_model(name, num_classes=..., glore=..., ...)``.

    Attributes:
        name: a registered model name (``glore.models.list_models()``).
        num_classes: classifier outputs; ``None`` takes the training dataset's ``num_classes``.
        glore: where GloRe units go: ``None`` (no units), a spec string such as ``"res4:3"``, or a mapping
            ``{"res4": [1, 3, 5]}``.
        glore_args: keyword arguments of every inserted unit (``num_nodes``, ``num_state``, ...).
        pretrained: pretrained weights, as ``create_model`` understands them (a tag or a file path).
        kwargs: further keyword arguments of the model builder (for ``resnet_small``: widths, depths, ...).
    """

    name: str = "resnet_small"
    num_classes: int | None = None
    glore: str | dict[str, Any] | None = None
    glore_args: dict[str, Any] = field(default_factory=dict)
    pretrained: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    """Datasets and loaders.

    Attributes:
        name: a ``glore.data.create_dataset`` name (``cub200``, ``imagefolder``, ``cifar100``, ``relational``...);
            required: there is no default dataset (``create_dataset`` names the choices when it is missing).
        root: the dataset folder (``None`` for built-in data).
        train_split: split name of the training set.
        val_split: split name of the validation set; ``None`` trains without validation.
        image_size: side of the (square) network input.
        transform: ``"standard"`` builds the task's transforms from ``glore.data.transforms`` (for images: random
            resized crop and flip for training, resize and centre crop for evaluation); ``"none"`` keeps the
            dataset's own output (built-in data that is generated as tensors); ``"package.module:factory"`` imports
            a user's factory (``glore.data.load_transform``), called as ``factory(train=True)`` and
            ``factory(train=False)``, whose transforms the datasets get instead (called as glore's own for that
            kind of data: docs/data.md); the preprocessing fields below are then not applied.
        mean: normalisation mean, one value per channel.
        std: normalisation standard deviation, one value per channel.
        color_jitter: strength of training colour jitter; 0 disables it.
        crop_scale: training random resized crop: range of the crop's area as a fraction of the image.
        eval_crop_ratio: evaluation: the centre crop's share of the resized shorter side (0.875: 256 -> 224;
            1.0 keeps the whole image, e.g. for 32-pixel CIFAR).
        batch_size: the global batch: summed over all processes (each gets ``batch_size / world_size``).
        val_batch_size: global validation batch; ``None`` uses ``batch_size``.
        num_workers: DataLoader worker processes per training process.
        on_error: ``"raise"`` or ``"skip"`` for a sample that cannot be read; skipped samples are counted.
        cache: compute every sample once, before the first epoch, and keep them in memory (for generated data
            such as ``relational``, which would otherwise be generated again every epoch); ``num_workers``
            processes compute them, and the loaders then run in the training process. Needs
            ``transform: none``: random augmentation would be frozen.
        kwargs: further keyword arguments of ``create_dataset`` for both splits.
        train_kwargs: keyword arguments for the training split only (override ``kwargs``).
        val_kwargs: keyword arguments for the validation split only (override ``kwargs``).
    """

    name: str | None = None
    root: str | None = None
    train_split: str = "train"
    val_split: str | None = "val"
    image_size: int = 64
    transform: str = "standard"
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    color_jitter: float = 0.0
    crop_scale: list[float] = field(default_factory=lambda: [0.08, 1.0])
    eval_crop_ratio: float = 0.875
    batch_size: int = 64
    val_batch_size: int | None = None
    num_workers: int = 2
    on_error: Literal["raise", "skip"] = "raise"
    cache: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)
    train_kwargs: dict[str, Any] = field(default_factory=dict)
    val_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.transform not in ("standard", "none"):  # a user's factory: imported now, so a typo fails at load
            from glore.data.transforms import load_transform

            try:
                load_transform(self.transform)
            except ValueError as error:
                raise ConfigError(str(error)) from None


@dataclass
class ParamRule:
    """Optimiser settings for the parameters whose names match a regular expression (``optim.param_rules``).

    Attributes:
        match: a regular expression searched in each parameter's name (``re.search``: ``'\\.bias$'``,
            ``'^layer[1-4]\\.\\d+\\.conv2\\.'``); it must match at least one parameter.
        lr_mult: the matched parameters' learning rate is ``optim.lr`` times this (the schedule scales it alike).
        weight_decay: their weight decay; null keeps what ``optim.weight_decay``/``decay_norm_and_bias`` give.
    """

    match: str = ""
    lr_mult: float = 1.0
    weight_decay: float | None = None


@dataclass
class OptimConfig:
    """Optimiser.

    Attributes:
        name: ``"sgd"`` or ``"adamw"``.
        lr: base learning rate (the peak, reached at the end of warm-up).
        lr_base_batch_size: the global batch ``lr`` was set for; when set, the learning rate follows the batch
            linearly (Goyal et al. 2017): ``lr * data.batch_size / lr_base_batch_size``, so a run on fewer GPUs or
            with a smaller batch keeps the recipe's step size per sample. Null: ``lr`` as given.
        momentum: SGD momentum.
        nesterov: SGD with Nesterov momentum.
        weight_decay: L2 weight decay (decoupled for AdamW).
        decay_norm_and_bias: when false, norm-layer weights and all biases (every parameter with fewer than
            two dims) get no weight decay.
        betas: AdamW betas.
        eps: AdamW epsilon.
        clip_grad_norm: clip the global gradient norm to this value; ``None`` disables clipping.
        param_rules: per-parameter learning-rate multipliers and weight decays, by name (``ParamRule``); a parameter
            takes the settings of every rule that matches it, a later rule overriding an earlier one.
    """

    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.1
    lr_base_batch_size: int | None = None
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    decay_norm_and_bias: bool = True
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    clip_grad_norm: float | None = None
    param_rules: list[ParamRule] = field(default_factory=list)


@dataclass
class ScheduleConfig:
    """Learning-rate schedule, evaluated at every iteration (see ``glore.engine.schedules``).

    Attributes:
        name: ``"constant"``, ``"step"``, ``"multistep"``, ``"cosine"`` or ``"poly"``.
        warmup_epochs: length of the linear warm-up, in epochs (fractions allowed).
        warmup_iters: length of the linear warm-up in iterations instead (recipes counted in iterations, with
            ``train.iterations``); null uses ``warmup_epochs``. Set one of the two.
        warmup_start_factor: the warm-up starts at ``lr * warmup_start_factor``.
        step_size: ``step``: epochs between decays.
        milestones: ``multistep``: epochs at which the rate decays.
        gamma: decay factor of ``step`` and ``multistep``.
        power: exponent of ``poly``.
        min_lr: floor of ``cosine`` and ``poly``.
    """

    name: Literal["constant", "step", "multistep", "cosine", "poly"] = "cosine"
    warmup_epochs: float = 0.0
    warmup_iters: int | None = None
    warmup_start_factor: float = 0.01
    step_size: float = 30.0
    milestones: list[float] = field(default_factory=lambda: [30.0, 60.0, 90.0])
    gamma: float = 0.1
    power: float = 0.9
    min_lr: float = 0.0


@dataclass
class EMAConfig:
    """An exponential moving average of the weights (``train.ema``), kept beside the trained network, validated and
    checkpointed in its place: ``val_*`` are the average's metrics and ``best.pt`` holds it.

    Attributes:
        decay: the average's decay per update: ``ema = decay * ema + (1 - decay) * weights`` (0.9998 at batch 256
            weighs about the last 5000 iterations).
        every: update the average after every this many optimiser steps.
        warmup: a lower decay for the first updates, ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates
            (TensorFlow's ``ExponentialMovingAverage(num_updates=n)``), so that the average is not dominated by the
            random initial weights in short runs.
        validate_raw: also validate the trained network itself, reported as ``raw_val_*`` (one more validation
            pass at each validation).
    """

    decay: float = 0.9998
    every: int = 1
    warmup: bool = False
    validate_raw: bool = False


@dataclass
class TrainConfig:
    """The loop.

    Attributes:
        epochs: number of training epochs (the budget unless ``iterations`` is set).
        iterations: a budget in optimiser iterations instead of epochs (segmentation recipes are written so);
            the data is still drawn epoch by epoch, in the same order as with ``epochs``.
        eval_every_iters: with ``iterations``: validate and checkpoint every this many iterations (and at the
            end); null validates at the end only.
        seed: seed of every random generator (python, numpy, torch, the data order).
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        amp: automatic mixed precision: ``"none"``, ``"bfloat16"`` or ``"float16"`` (with a grad scaler).
        channels_last: use the channels-last memory format for the model and its inputs (channels_last_3d for 5-D
            kernels and clips of video networks).
        compile: wrap the model with ``torch.compile``.
        label_smoothing: label smoothing of the cross-entropy loss.
        sync_bn: convert BatchNorm to SyncBatchNorm when training on several CUDA processes.
        log_every: write a row to ``steps.csv`` (and a plain progress line) every this many iterations.
        eval_every: with ``epochs``: validate every this many epochs (and always after the last).
        progress: ``"auto"`` (a bar on a terminal, plain lines otherwise), ``"bar"``, ``"plain"`` or ``"off"``.
        deterministic: ask PyTorch for deterministic algorithms (slower; bitwise reproducible on CUDA).
        checkpoint_every_iters: also write ``last.pt`` every this many iterations, between validations (null:
            not by count). Such a checkpoint holds the position inside the epoch, so ``--resume`` continues there.
        checkpoint_every_minutes: also write ``last.pt`` when this many minutes passed since the last checkpoint
            (null: not by time); the default bounds what a crash or a preemption loses to a quarter of an hour
            whatever the recipe's validation interval.
        ema: keep an exponential moving average of the weights (``EMAConfig``: ``{decay: 0.9998}``), which is
            validated and checkpointed as the run's network; null: off.
    """

    epochs: int = 10
    iterations: int | None = None
    eval_every_iters: int | None = None
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["none", "bfloat16", "float16"] = "none"
    channels_last: bool = False
    compile: bool = False
    label_smoothing: float = 0.0
    sync_bn: bool = False
    log_every: int = 20
    eval_every: int = 1
    progress: Literal["auto", "bar", "plain", "off"] = "auto"
    deterministic: bool = False
    checkpoint_every_iters: int | None = None
    checkpoint_every_minutes: float | None = 15.0
    ema: EMAConfig | None = None


@dataclass
class OutputConfig:
    """Where a run writes.

    Attributes:
        dir: the run folder (``last.pt``, ``best.pt``, ``metrics.csv``, ``steps.csv``, ``tb/``, ``curves.png``).
        best_metric: validation metric that selects ``best.pt``; its direction (higher or lower is better) is the
            task's (``loss`` keeps the lowest); null: the task's first metric (``top1``, ``miou`` ...).
        tensorboard: write TensorBoard event files to ``dir/tb``.
        plots: write ``curves.png`` after every epoch.
        report: write ``report.md`` when the run ends (``glore.tools.report``: config, profile, metrics,
            curves and, for networks with GloRe units, projection maps of a few validation images).
    """

    dir: str = "runs/default"
    best_metric: str | None = None
    tensorboard: bool = True
    plots: bool = True
    report: bool = True


@dataclass
class Config:
    """A whole training recipe. ``task`` names the entry of ``glore.engine.task.TASKS`` (filled by
    ``glore.tasks``) that supplies the model, datasets, steps and metrics; ``task_args`` holds that task's own
    options (inference mode, loss weights ...), which the task checks and documents."""

    task: str = "classification"
    task_args: dict[str, Any] = field(default_factory=dict)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


# ---------------------------------------------------------------------------------------------------------------------
# Type checking of values read from YAML or the command line.


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "null"
    if tp is Any:
        return "any value"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        args = typing.get_args(tp)
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Return ``value`` checked against the annotation ``tp``, with ints widened to floats where a float is
    expected; raise ``ConfigError`` naming ``key`` otherwise."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping of {_keys(tp)}, got {type(value).__name__} {value!r}")
        return _build(tp, value, key)
    if origin in (Union, types.UnionType):
        inner = _dataclass_of(tp)
        if inner is not None and isinstance(value, Mapping):  # its own errors name the sub-key
            return _build(inner, value, key)
        for option in typing.get_args(tp):
            try:
                return _coerce(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
    if origin is Literal:
        if isinstance(value, bool):
            # YAML 1.1 reads a bare off/on as a bool: give such a word back where the literal expects it.
            word = "on" if value else "off"
            if word in typing.get_args(tp):
                return word
        if value in typing.get_args(tp):
            return value
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{key}: expected null, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
        (item_tp,) = typing.get_args(tp)[:1] or (Any,)
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__} {value!r}")
        return {str(k): v for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(value, tp):
        return value
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")


def _keys(cls: type) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls))


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(cls: type, values: Mapping[str, Any], prefix: str = "") -> Any:
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        if name not in names:
            where = f"in '{prefix}'" if prefix else "at the top level"
            raise ConfigError(f"unknown key '{key}'; valid keys {where}: {_keys(cls)}")
        kwargs[name] = _coerce(value, hints[name], key)
        _check_range(key, kwargs[name])
    return cls(**kwargs)


def config_to_dict(config: Config) -> dict[str, Any]:
    """Return ``config`` as plain nested dicts and lists (what ``config.yaml`` and checkpoints store)."""
    return dataclasses.asdict(config)


def _parse_override(text: str) -> tuple[list[str], str]:
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. optim.lr=0.1")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: expected a dotted key such as optim.lr before '='")
    return key.split("."), raw


def _string_only(tp: Any) -> bool:
    """Whether the field holds strings (or null) only, so an override's text is taken as it is written."""
    if tp is str:
        return True
    origin = typing.get_origin(tp)
    if origin is Literal:
        return all(isinstance(a, str) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return bool(args) and all(_string_only(a) for a in args)
    return False


def _override_value(text: str, raw: str, tp: Any) -> Any:
    stripped = raw.strip()
    if tp is not None and _string_only(tp):
        # Strings stay as written: YAML would read output.dir=no or train.progress=off as booleans.
        if stripped in ("null", "~", "") and tp is not str:
            return None
        if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "'\"":
            return stripped[1:-1]
        return stripped
    if not stripped:
        return None
    try:
        return yaml.load(raw, Loader=_YamlLoader)
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({err})") from None


def apply_overrides(values: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``KEY=VALUE`` overrides (values parsed as YAML) to nested ``values`` in place and return it.

    Keys are checked against the ``Config`` dataclasses: an unknown key raises ``ConfigError`` listing the
    valid keys at that level. Below a free-form mapping field (``model.kwargs``, ``data.kwargs`` ...) any
    sub-key is accepted.
    """
    for text in overrides:
        parts, raw = _parse_override(text)
        cls: Any = Config
        node = values
        tp: Any = None
        for depth, part in enumerate(parts):
            prefix = ".".join(parts[:depth])
            last = depth == len(parts) - 1
            if cls is None:
                tp = None  # below a free-form mapping: the value's type is whatever YAML reads
            else:
                names = {f.name for f in dataclasses.fields(cls)}
                if part not in names:
                    where = f"in '{prefix}'" if prefix else "at the top level"
                    raise ConfigError(f"unknown key '{'.'.join(parts)}'; valid keys {where}: {_keys(cls)}")
                tp = _hints(cls)[part]
                cls = _dataclass_of(tp)
                if not last and cls is None and typing.get_origin(tp) is not dict and not _allows_dict(tp):
                    raise ConfigError(
                        f"override {text!r}: '{'.'.join(parts[: depth + 1])}' is a {_type_name(tp)}, it has no sub-keys"
                    )
            if last:
                node[part] = _override_value(text, raw, tp)
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return values


def _dataclass_of(tp: Any) -> Any:
    """The dataclass ``tp`` is, or that an optional ``tp`` holds (``EMAConfig | None``); else ``None``."""
    if dataclasses.is_dataclass(tp):
        return tp
    if typing.get_origin(tp) in (Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if dataclasses.is_dataclass(a)]
        return inner[0] if len(inner) == 1 else None
    return None


def _allows_dict(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType) and any(
        typing.get_origin(a) is dict for a in typing.get_args(tp)
    )


def load_config(source: str | Path | Mapping[str, Any] | None = None, overrides: Iterable[str] = ()) -> Config:
    """Build a ``Config`` from a YAML file or a mapping, then apply command-line overrides.

    Args:
        source: path of a YAML recipe, a nested mapping, or ``None`` for the defaults.
        overrides: ``"section.key=value"`` strings; values are parsed as YAML (``optim.lr=0.1``,
            ``model.glore=res4:1``, ``data.mean=[0.5,0.5,0.5]``, ``model.glore=null``).

    Returns:
        The checked configuration.

    Raises:
        ConfigError: an unknown key (the message lists the valid keys) or a value of the wrong type, in the
            config's sections or in the task's settings (``task_args``, checked by the task ``task`` names).
        FileNotFoundError: ``source`` is a path that does not exist.
    """
    if source is None:
        values: dict[str, Any] = {}
    elif isinstance(source, Mapping):
        values = _deep_copy(source)
    else:
        path = Path(source)
        if path.is_dir():
            raise ConfigError(
                f"config: {str(path)!r} is a directory; expected a YAML recipe file such as configs/demo.yaml"
            )
        if not path.is_file():
            raise FileNotFoundError(f"config: no such file {str(path)!r}")
        with path.open() as f:
            loaded = yaml.load(f, Loader=_YamlLoader)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, Mapping):
            raise ConfigError(f"config {str(path)!r}: expected a mapping of sections ({_keys(Config)})")
        values = _deep_copy(loaded)
    apply_overrides(values, overrides)
    config = _build(Config, values)
    check_config(config)
    # The task's own part (task_args against its typed settings, data.* it would drop), through the task registry.
    from .task import check_task_config

    check_task_config(config)
    return config


def check_config(config: Config) -> None:
    """The checks that span several keys, or that a config edited in Python after it loaded must pass again:
    ``load_config`` runs them, and so does the trainer before it builds anything.

    Raises:
        ConfigError: one line naming the key and what was expected.
    """
    t = config.train
    for key in ("log_every", "eval_every"):
        value = getattr(t, key)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"train.{key}: expected a positive int, got {value!r}")
    if t.iterations is None:
        if not isinstance(t.epochs, int) or t.epochs < 1:
            raise ConfigError(f"train.epochs: expected a positive int, got {t.epochs!r}")
        if t.eval_every_iters is not None:
            raise ConfigError("train.eval_every_iters: only used with train.iterations; set train.eval_every")
    else:
        if not isinstance(t.iterations, int) or t.iterations < 1:
            raise ConfigError(f"train.iterations: expected a positive int or null, got {t.iterations!r}")
        if t.eval_every_iters is not None and (not isinstance(t.eval_every_iters, int) or t.eval_every_iters < 1):
            raise ConfigError(f"train.eval_every_iters: expected a positive int or null, got {t.eval_every_iters!r}")
        if t.eval_every != 1:
            raise ConfigError(
                f"train.eval_every: {t.eval_every} counts epochs, which a train.iterations budget does not use; "
                "set train.eval_every_iters"
            )
    if t.ema is not None:
        if not isinstance(t.ema, EMAConfig):
            raise ConfigError(f"train.ema: expected a mapping of {_keys(EMAConfig)} or null, got {t.ema!r}")
        decay = t.ema.decay
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 <= decay < 1.0:
            raise ConfigError(f"train.ema.decay: expected a float in [0, 1), got {decay!r}")
        if isinstance(t.ema.every, bool) or not isinstance(t.ema.every, int) or t.ema.every < 1:
            raise ConfigError(f"train.ema.every: expected a positive int, got {t.ema.every!r}")
    if config.data.cache and config.data.transform != "none":
        raise ConfigError(
            "data.cache: caching keeps each sample as first computed, which would freeze random training "
            "augmentation; use it with data.transform=none (generated data such as relational)"
        )


def save_config(config: Config, path: str | Path) -> None:
    """Write ``config`` as YAML to ``path`` (it loads back with ``load_config``)."""
    from glore._io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))


def _deep_copy(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in values.items()}


def add_override_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    """Add the repeatable ``--set KEY=VALUE`` option (collected in ``args.overrides``) to a command's parser.

    Args:
        parser: the command's parser.
        help_text: what the overrides apply to, with an example.
    """
    parser.add_argument(
        "--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[], help=help_text + "; repeatable"
    )
