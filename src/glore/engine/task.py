"""The Task API: what a problem supplies to the training loop, and the registry that ``config.task`` selects from.

Tasks are found through the ``glore.tasks`` entry-point group (``pyproject.toml``), so that a package can add one.

A task owns everything that differs between problems: its datasets, its network, how a training step turns a
batch into a loss (``train_step``), how a network predicts for evaluation (``eval_step``: sliding windows, flips,
multi-view averaging live there), its metrics and whether each is maximised or minimised. The loop
(``glore.engine.trainer``) does the rest the same way for every task.

It also owns how a raw file (an image, a video) becomes a network input outside a dataset: ``load_input`` applies
the evaluation dataset's own preprocessing to one file and ``predict`` runs ``eval_step``'s inference on it, so
``glore predict`` and ``glore visualize`` see what ``glore eval`` sees; ``input_size`` is the evaluation input's
size (what ``report.md`` profiles the network at) and ``input_normalization`` the mean and std to show inputs
as images again.

Batches are ``glore.data.Batch(inputs, targets, meta, skipped)``; inputs and targets may be any pytree of tensors
and reach ``train_step``/``eval_step`` already on the device. Tasks live in ``glore.tasks`` and register themselves
with ``register_task``; the engine never imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, Protocol

import torch
from torch import nn
from torch.utils.data import Dataset

from .config import Config, ConfigError, DataConfig
from .settings import Setting, resolve_settings

__all__ = ["Meter", "TASKS", "Task", "build_task", "check_task_config", "register_task", "task_class"]

Direction = Literal["max", "min"]


class Meter(Protocol):
    """A task's metrics accumulator. State stays on the device between ``update`` calls; ``reduce`` sums it over
    the processes once, ``compute`` reads it (one host synchronisation)."""

    def update(self, preds: Any, targets: Any, meta: Mapping[str, list[Any]]) -> None:
        """Add a batch: the task's ``eval_step`` predictions (or ``train_step`` outputs), the batch's targets and
        metadata."""

    def reduce(self, device: torch.device | str = "cpu") -> None:
        """Sum the accumulated state over all processes."""

    def compute(self) -> dict[str, float]:
        """The metrics, including ``count`` (the samples seen)."""


class Task:
    """What a problem supplies to the ``Trainer``.

    Subclass it, declare ``metrics`` and register the subclass with ``register_task(name)`` for
    ``config.task = name`` to select it. The defaults below fit a network that maps ``batch.inputs`` to outputs
    that ``loss(outputs, targets)`` scores.

    Attributes:
        metrics: the metrics ``compute()`` of the task's meter returns that summaries, curves and ``best.pt``
            use, in display order, each with its direction (``"max"`` or ``"min"``). ``loss`` (the validation
            loss the loop measures) is always available and minimised.
        train_metrics: whether the loop also measures the task's metrics on training batches (from the outputs of
            ``train_step``); per-step training metrics cost a meter update each step.
        settings: the task's options (``config.task_args``), name -> ``glore.engine.settings.Setting`` (type,
            range or choices, default, meaning): ``load_config`` checks a recipe's values against them, and any
            other key is refused (``{}``: the task has no options). ``None`` (a task that declares nothing) leaves
            ``task_args`` unchecked.

    Args:
        config: the run's configuration.
    """

    metrics: dict[str, Direction] = {}
    train_metrics: bool = False
    settings: ClassVar[Mapping[str, Setting] | None] = None

    def __init__(self, config: Config) -> None:
        self.config = config

    # -- configuration ------------------------------------------------------------------------------------------

    @classmethod
    def unused_data(cls, data: DataConfig) -> Mapping[str, str]:
        """The ``data.*`` fields this task does not apply for ``data`` (its dataset and transform), each with what
        to set instead; a value other than the default there is refused when the config loads (default: none)."""
        return {}

    @classmethod
    def check_config(cls, config: Config) -> None:
        """Check the task's part of ``config`` when it loads: ``task_args`` against ``settings`` (the given values
        are kept, converted: ints widened to floats where a float is declared), and no ``data.*`` value the task
        would drop (``unused_data``).

        Raises:
            ConfigError: one line naming the key.
        """
        if cls.settings is not None:
            config.task_args = resolve_settings(config.task_args, cls.settings, defaults=False)
        defaults = DataConfig()
        for name, instead in cls.unused_data(config.data).items():
            value = getattr(config.data, name)
            if value != getattr(defaults, name):
                raise ConfigError(f"data.{name}: the {config.task} task does not use it ({instead}); got {value!r}")

    # -- metrics ------------------------------------------------------------------------------------------------

    def metric_direction(self, name: str) -> Direction:
        """``"max"`` or ``"min"`` for metric ``name`` (a key of ``metrics``, or ``loss``).

        Raises:
            ValueError: ``name`` is not a metric of the task.
        """
        directions: dict[str, Direction] = {**self.metrics, "loss": "min"}
        if name not in directions:
            raise ValueError(
                f"output.best_metric: {name!r} is not a metric of the {type(self).__name__}; "
                f"available: {', '.join(directions)}"
            )
        return directions[name]

    @property
    def primary_metric(self) -> str:
        """The first declared metric (``loss`` when none is declared): what ``best.pt`` tracks by default."""
        return next(iter(self.metrics), "loss")

    # -- data and network ---------------------------------------------------------------------------------------

    def build_dataset(self, split: str, *, train: bool) -> Dataset:
        """The dataset of ``split``, with training (``train``) or evaluation preprocessing."""
        raise NotImplementedError(f"{type(self).__name__}.build_dataset")

    def build_datasets(self) -> tuple[Dataset, Dataset | None]:
        """The training dataset and the validation dataset (``None`` when ``data.val_split`` is null)."""
        d = self.config.data
        train_set = self.build_dataset(d.train_split, train=True)
        val_set = self.build_dataset(d.val_split, train=False) if d.val_split else None
        return train_set, val_set

    def build_model(self, train_dataset: Dataset) -> nn.Module:
        """The network to train, built for ``train_dataset`` (e.g. its number of classes)."""
        raise NotImplementedError(f"{type(self).__name__}.build_model")

    def rebuild_model(self, model_config: dict[str, Any]) -> nn.Module:
        """The network described by a checkpoint's ``model_config`` (used by ``evaluate``)."""
        from glore.models import create_model  # models depend on torch alone; the engine may use them

        return create_model(**{**model_config, "pretrained": None})

    def model_config(self, model: nn.Module) -> dict[str, Any] | None:
        """What to store as the checkpoint's ``model_config``: the network's own ``model_config``."""
        config = getattr(model, "model_config", None)
        return dict(config) if config is not None else None

    def collate(self, samples: list[Any]) -> Any:
        """Collate samples into ``Batch(inputs, targets, meta, skipped)`` (default: ``glore.data.collate``)."""
        from glore.data import collate

        return collate(samples)

    # -- steps --------------------------------------------------------------------------------------------------

    def loss(self, outputs: Any, targets: Any, *, train: bool) -> torch.Tensor:
        """The scalar loss of a batch (``train`` is false during validation)."""
        raise NotImplementedError(f"{type(self).__name__}.loss")

    def train_step(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, Any]:
        """The loss of a training batch and the network's outputs (the loop runs backward and the optimiser).

        Runs under the loop's autocast. Default: ``outputs = model(batch.inputs)`` scored by ``loss``.
        """
        outputs = model(batch.inputs)
        return self.loss(outputs, batch.targets, train=True), outputs

    def eval_step(self, model: nn.Module, batch: Any) -> Any:
        """Predictions for an evaluation batch, in the form the task's meter takes (default
        ``model(batch.inputs)``). Sliding-window, flip or multi-view inference belong here."""
        return model(batch.inputs)

    def eval_loss(self, preds: Any, batch: Any) -> torch.Tensor | None:
        """The validation loss of a batch from ``eval_step``'s predictions (default ``loss(preds, targets)``);
        ``None`` when the predictions cannot be scored (the loop then reports no ``val_loss``)."""
        return self.loss(preds, batch.targets, train=False)

    def create_meter(self, dataset: Dataset, *, train: bool = False) -> Meter:
        """A fresh metrics accumulator for ``dataset`` (``train``: for training outputs)."""
        raise NotImplementedError(f"{type(self).__name__}.create_meter")

    def before_checkpoint(
        self,
        model: nn.Module,
        batches: Callable[[], Any],
        to_device: Callable[[Any], Any],
        step: Callable[..., float] | None = None,
    ) -> None:
        """Called after training and before each checkpoint and validation (default: nothing); a task may refine
        ``model`` here, e.g. re-estimate BatchNorm statistics over training batches (precise BN).

        Args:
            model: the network (unwrapped from DDP); each process calls this, the loop then syncs buffers.
            batches: returns an iterator over training batches (on the host; deterministic for the run).
            to_device: moves a batch to the device as the loop does.
            step: ``step(batch, params=None) -> loss``: one more training step of the loop on a host batch (its
                autocast, distributed model and optimiser at the current learning rate, not advanced), updating
                only ``params`` when given; None where no training loop runs.
        """

    def batch_size(self, batch: Any) -> int:
        """Samples in ``batch`` (default: the leading size of the first tensor of ``batch.inputs``)."""
        leaves = [batch.inputs] if isinstance(batch.inputs, torch.Tensor) else _tensor_leaves(batch.inputs)
        if not leaves or leaves[0].dim() == 0:
            return 0
        return int(leaves[0].shape[0])

    # -- raw inputs (glore predict, visualize, report) -------------------------------------------------------------

    def load_input(self, path: str) -> Any:
        """One raw file as an evaluation batch, preprocessed exactly as the task's evaluation dataset preprocesses
        a sample of that file.

        Returns:
            ``glore.data.Batch(inputs, None, meta, 0)``: ``inputs`` holds the file's evaluation views (one image,
            or a video's clips x crops); ``meta`` what ``predict`` needs (``file``; the image's ``size``).

        Raises:
            ValueError: the file cannot be read as the task's input; the message names it.
        """
        raise NotImplementedError(f"{type(self).__name__}.load_input")

    def predict(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """The network's prediction for a ``load_input`` batch, computed as ``eval_step`` computes it for the same
        views (default: ``eval_step``, which for most tasks needs no targets)."""
        return self.eval_step(model, batch)

    def input_size(self, model: nn.Module | None = None) -> tuple[int, ...]:
        """The size of one evaluation input without batch and channels: (H, W), or (T, H, W) for a clip.

        Default: the network's default config (``glore.models.resolve_data_config``), or ``data.image_size``
        squared without a network.
        """
        if model is not None:
            from glore.models import resolve_data_config

            return tuple(resolve_data_config(model)["input_size"][1:])
        side = int(self.config.data.image_size)
        return (side, side)

    def input_normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The per-channel mean and std the task's inputs are normalised with (default ``data.mean``/``data.std``),
        to show them as images again."""
        d = self.config.data
        return tuple(d.mean), tuple(d.std)


def _tensor_leaves(tree: Any) -> list[torch.Tensor]:
    from torch.utils._pytree import tree_leaves

    return [leaf for leaf in tree_leaves(tree) if isinstance(leaf, torch.Tensor)]


TASKS: dict[str, type[Task]] = {}


def register_task(name: str) -> Callable[[type[Task]], type[Task]]:
    """Class decorator that makes a ``Task`` subclass selectable as ``config.task = name``."""

    def decorate(cls: type[Task]) -> type[Task]:
        TASKS[name] = cls
        return cls

    return decorate


def _load_plugins() -> None:
    """Register the tasks installed packages declare under the ``glore.tasks`` entry-point group (glore's own
    are in its pyproject.toml): the engine finds tasks without importing them by name."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="glore.tasks"):
        if entry.name not in TASKS:
            cls = entry.load()  # importing the module registers the class (and any sibling tasks)
            TASKS.setdefault(entry.name, cls)


def task_class(name: str) -> type[Task]:
    """The ``Task`` subclass registered as ``name`` (or declared by an installed package).

    Raises:
        ConfigError: no task has that name (the registered ones listed).
    """
    if name not in TASKS:
        _load_plugins()
    if name not in TASKS:
        raise ConfigError(
            f"task: expected one of {', '.join(sorted(TASKS)) or '(none registered)'}, got {name!r} "
            "(tasks are found through the 'glore.tasks' entry points: after declaring one, reinstall: pip install -e .)"
        )
    return TASKS[name]


def check_task_config(config: Config) -> None:
    """What ``load_config`` runs on every config it loads: the named task's ``check_config``."""
    task_class(config.task).check_config(config)


def build_task(config: Config) -> Task:
    """The task that ``config.task`` names (a registered one, or one declared by an installed package)."""
    return task_class(config.task)(config)
