"""Shared machinery of the networks: the insertion spec, the stage container, create_model and weights.

The insertion spec says where GloRe units go (DESIGN.md, "Names"). Stages use the paper's names res2..res5,
which are torchvision's ``layer1..layer4``; both spellings are accepted and the paper's is printed. With m units
in a stage of D blocks, unit k goes after block ``ceil((k - 1/2) * D / m)``.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import typing
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._io import atomic_path, atomic_write_text
from ..layers import PRODUCT_ORDERS, GloRe, NonLocal
from ._registry import close_matches, get_model_entrypoint

__all__ = [
    "STAGES",
    "GloreSpec",
    "GloreNet",
    "Stage",
    "canonical_stage",
    "unit_positions",
    "parse_glore_spec",
    "check_glore_args",
    "create_model",
    "load_pretrained",
    "load_state_dict_file",
]

# The paper's stage names, in order, and torchvision's names for the same stages.
STAGES = ("res2", "res3", "res4", "res5")
TORCHVISION_NAMES = {"layer1": "res2", "layer2": "res3", "layer3": "res4", "layer4": "res5"}
STAGE_MODULES = {v: k for k, v in TORCHVISION_NAMES.items()}

GloreSpec = str | Mapping[str, int | Sequence[int]] | None

# Options of the inserted units that glore_args may set: the JSON-serialisable ones. ``block`` picks the unit:
# "glore" (default) or "nonlocal" (the baseline the paper compares with, at the same positions).
# ``zero_init=False`` is allowed for ablations only, with a warning: such a unit changes the network it enters.
GLORE_ARGS = ("block", "num_nodes", "num_state", "normalize", "gcn_layers", "order", "zero_init")
NONLOCAL_ARGS = ("block", "zero_init")
UNIT_BLOCKS = ("glore", "nonlocal")

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


# ----------------------------------------------------------------------------------------------------------------
# Insertion spec.


def canonical_stage(name: object) -> str:
    """The paper's name (``"res4"``) of a stage given in either spelling (``"res4"`` or ``"layer3"``).

    Raises:
        ValueError: ``name`` names no stage; the message lists the accepted names.
    """
    if not isinstance(name, str):
        raise TypeError(f"glore spec stage names must be strings like 'res4' or 'layer3', got {name!r}")
    key = name.strip().lower()
    if key in STAGES:
        return key
    if key in TORCHVISION_NAMES:
        return TORCHVISION_NAMES[key]
    accepted = list(STAGES) + list(TORCHVISION_NAMES)
    raise ValueError(
        f"glore spec: unknown stage {name!r}{close_matches(key, accepted)}; expected one of res2..res5 "
        f"(the paper's names) or layer1..layer4 (torchvision's)"
    )


def unit_positions(count: int, depth: int) -> tuple[int, ...]:
    """The 1-based block indices after which ``count`` units go in a stage of ``depth`` blocks.

    Unit k of m goes after block ``ceil((k - 1/2) * D / m)``: blocks 1, 3 of 4 and 1, 3, 5 of 6 as in the
    official networks, spread evenly through deeper stages. Integer arithmetic, so no float rounding.

    Raises:
        ValueError: ``count`` is negative or larger than ``depth``.
    """
    if count < 0 or count > depth:
        raise ValueError(f"glore spec: cannot place {count} units in a stage of {depth} blocks (0..{depth} allowed)")
    return tuple(-((-(2 * k - 1) * depth) // (2 * count)) for k in range(1, count + 1))


def _parse_string_spec(spec: str) -> dict[str, int | list[int]]:
    items: dict[str, int | list[int]] = {}
    # Split on commas that are not inside [...]: "res3:2,res4:[1,3,5]" -> ["res3:2", "res4:[1,3,5]"].
    for item in re.split(r",(?![^\[]*\])", spec):
        if not item.strip():
            continue
        match = re.fullmatch(r"\s*([A-Za-z]+\d)\s*:\s*(\d+|\[\s*\d+(?:\s*,\s*\d+)*\s*\])\s*", item)
        if match is None:
            raise ValueError(
                f"glore spec: cannot read {item.strip()!r} in {spec!r}; expected items like 'res4:3' (a count) "
                f"or 'res4:[1,3,5]' (1-based block indices), separated by commas"
            )
        stage, value = match.groups()
        if stage in items:
            raise ValueError(f"glore spec: stage {stage!r} is given twice in {spec!r}")
        items[stage] = [int(v) for v in value.strip("[] ").split(",")] if value.startswith("[") else int(value)
    return items


def parse_glore_spec(spec: GloreSpec, depths: Mapping[str, int], *, warn: bool = True) -> dict[str, tuple[int, ...]]:
    """Resolve an insertion spec into the 1-based block indices after which units go, per stage.

    Args:
        spec: ``None``/``""`` (no units); a string of counts or indices, ``"res3:2,res4:3"`` or
            ``"res4:[1,3,5]"``; or a dict ``{"res4": 3}`` / ``{"layer3": [1, 3, 5]}``. Stage names are the
            paper's (res2..res5) or torchvision's (layer1..layer4).
        depths: the number of blocks of each stage of the network, keyed by the paper's names.
        warn: warn when a unit goes into res5, where the paper never puts one.

    Returns:
        ``{"res3": (1, 3), "res4": (1, 3, 5)}``: stages in order, indices sorted; stages without units left out.

    Raises:
        TypeError: ``spec`` is not a string, dict or None, or a value is not an int or a list of ints.
        ValueError: unknown stage, a count larger than the stage's depth, an index out of range or repeated.
    """
    if spec is None:
        return {}
    if isinstance(spec, str):
        raw: Mapping[str, Any] = _parse_string_spec(spec)
    elif isinstance(spec, Mapping):
        raw = spec
    else:
        raise TypeError(
            f"glore must be None, a string like 'res3:2,res4:3' or a dict like {{'res4': [1, 3, 5]}}, "
            f"got {spec!r} of type {type(spec).__name__}"
        )
    resolved: dict[str, tuple[int, ...]] = {}
    for key, value in raw.items():
        stage = canonical_stage(key)
        if stage in resolved:
            raise ValueError(f"glore spec: stage {stage} is given twice (as {key!r} and under another name)")
        if stage not in depths:
            raise ValueError(f"glore spec: this network has no stage {stage} (it has {', '.join(depths)})")
        depth = depths[stage]
        if isinstance(value, bool) or not isinstance(value, (int, Sequence)) or isinstance(value, str):
            raise TypeError(
                f"glore spec: {key!r} must map to a count (int) or a list of 1-based block indices, got {value!r}"
            )
        if isinstance(value, int):
            positions = unit_positions(value, depth)
        else:
            if any(isinstance(v, bool) or not isinstance(v, int) for v in value):
                raise TypeError(f"glore spec: block indices of {key!r} must be ints, got {list(value)!r}")
            positions = tuple(sorted(value))
            if len(set(positions)) != len(positions):
                raise ValueError(f"glore spec: block indices of {key!r} repeat: {list(value)!r}")
            bad = [v for v in positions if not 1 <= v <= depth]
            if bad:
                raise ValueError(
                    f"glore spec: block indices of {key!r} must be in 1..{depth} (1-based, the stage has {depth} "
                    f"blocks), got {bad}"
                )
        if positions:
            resolved[stage] = positions
    if warn and "res5" in resolved:
        warnings.warn(
            "glore spec puts GloRe units in res5 (torchvision's layer4); the paper never does (its units sit in "
            "res3 and res4), and a re-implementation whose unit sat after the last stage failed to train",
            UserWarning,
            stacklevel=3,
        )
    return {stage: resolved[stage] for stage in STAGES if stage in resolved}


def spec_to_config(spec: Mapping[str, Sequence[int]]) -> dict[str, list[int]] | None:
    """The JSON form of a resolved spec, ``{"res4": [1, 3, 5]}``, or None when there are no units."""
    return {stage: list(idx) for stage, idx in spec.items()} or None


def check_glore_args(glore_args: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check the unit options given as ``glore_args`` and return them as a plain dict.

    Raises:
        TypeError: ``glore_args`` is not a dict, or has a key the unit does not take (close matches listed).
        ValueError: an unknown ``block`` or ``order``.
    """
    if glore_args is None:
        return {}
    if not isinstance(glore_args, Mapping):
        raise TypeError(f"glore_args must be a dict of GloRe options {GLORE_ARGS}, got {type(glore_args).__name__}")
    args = dict(glore_args)
    block = args.get("block", "glore")
    if block not in UNIT_BLOCKS:
        raise ValueError(f"glore_args: block must be one of {UNIT_BLOCKS}, got {block!r}")
    accepted = NONLOCAL_ARGS if block == "nonlocal" else GLORE_ARGS
    for key in args:
        if key not in accepted:
            raise TypeError(
                f"glore_args: unknown option {key!r} for block={block!r}{close_matches(key, accepted)}; "
                f"expected {accepted}"
            )
    if "order" in args and args["order"] not in PRODUCT_ORDERS:
        raise ValueError(f"glore_args: order must be one of {PRODUCT_ORDERS}, got {args['order']!r}")
    if args.get("zero_init", True) is not True:
        warnings.warn(
            "glore_args: zero_init=False: the inserted units do not start as the identity, so they change the "
            "network's function (and a pretrained network's accuracy) at once; meant for ablations only",
            stacklevel=3,
        )
    return args


def build_unit(channels: int, glore_args: Mapping[str, Any] | None = None) -> nn.Module:
    """A new unit for a ``channels``-wide feature map: ``GloRe`` or, with ``block="nonlocal"``, ``NonLocal``."""
    args = check_glore_args(glore_args)
    if args.pop("block", "glore") == "nonlocal":
        return NonLocal(channels, **args)
    return GloRe(channels, **args)


# ----------------------------------------------------------------------------------------------------------------
# The stage container.


class Stage(nn.Sequential):
    """A stage: a sequence of blocks with GloRe units between them, keeping torchvision's state-dict keys.

    Blocks keep the names ``0, 1, ...`` (so ``layer3.4.conv2.weight`` is the same key as in torchvision) and the
    units are extra children ``glore1, glore2, ...`` registered in forward order: ``named_children()`` lists
    ``0, glore1, 1, 2, glore2, ...`` and ``forward`` runs them in that order. Indexing, ``len`` and iteration are
    over the blocks only, as in torchvision (``model.layer4[-1]`` is still the last block); reach a unit by
    name (``model.layer3.glore1``) or through :attr:`units`.

    Args:
        blocks: the stage's blocks, in order.
        units: 1-based block index -> the unit that runs after that block.
    """

    def __init__(self, blocks: Sequence[nn.Module], units: Mapping[int, nn.Module] | None = None) -> None:
        units = dict(units or {})
        bad = [i for i in units if not 1 <= i <= len(blocks)]
        if bad:
            raise ValueError(f"Stage: unit positions must be 1-based block indices in 1..{len(blocks)}, got {bad}")
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        count = 0
        for i, block in enumerate(blocks):
            modules[str(i)] = block
            if i + 1 in units:
                count += 1
                modules[f"glore{count}"] = units[i + 1]
        super().__init__(modules)

    @property
    def blocks(self) -> list[nn.Module]:
        """The blocks, without the units."""
        return [m for name, m in self._modules.items() if not name.startswith("glore")]

    @property
    def units(self) -> dict[str, nn.Module]:
        """The units by name, ``{"glore1": ...}``, in forward order."""
        return {name: m for name, m in self._modules.items() if name.startswith("glore")}

    def unit_positions(self) -> tuple[int, ...]:
        """The 1-based block indices after which the units sit."""
        positions, seen = [], 0
        for name in self._modules:
            if name.startswith("glore"):
                positions.append(seen)
            else:
                seen += 1
        return tuple(positions)

    def __getitem__(self, idx: int | slice | str) -> Any:  # type: ignore[override]
        if isinstance(idx, str):
            return self._modules[idx]
        if isinstance(idx, slice):
            return nn.Sequential(*self.blocks[idx])
        return self.blocks[idx]

    def __len__(self) -> int:
        return len(self.blocks)

    def __iter__(self) -> Iterator[nn.Module]:
        return iter(self.blocks)

    def forward(self, x: Any) -> Any:
        """Run blocks and units in forward order (``named_children()`` order)."""
        for module in self._modules.values():
            x = module(x)
        return x


# ----------------------------------------------------------------------------------------------------------------
# The networks' common interface.


class GloreNet:
    """Mixin of glore's networks: the creation record, the unit factory and ``save_pretrained``.

    A network sets ``feature_info``, ``num_features`` and its stage modules (named after ``feature_info``'s
    ``module``); ``create_model`` sets ``model_config``.
    """

    feature_info: list[dict[str, Any]]
    num_features: int
    model_config: dict[str, Any]

    # The head is shared: a network defines forward_features and has avgpool, drop_rate, fc, num_features.
    # GloreNet comes before nn.Module among a network's bases, so these win over nn.Module's forward.

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier by a fresh one with ``num_classes`` outputs (0: none)."""
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        if getattr(self, "model_config", None):
            self.model_config["num_classes"] = num_classes

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """(n, num_features, h, w) -> logits (n, num_classes), or the pooled features with ``pre_logits``."""
        x = self.avgpool(x).flatten(1)  # (n, C, 1, 1) -> (n, C)
        if self.drop_rate > 0:
            x = nn.functional.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(n, in_chans, H, W) -> (n, num_classes)."""
        return self.forward_head(self.forward_features(x))

    def stage_modules(self) -> dict[str, nn.Module]:
        """The stage containers by the paper's name: ``{"res2": self.layer1, ...}``."""
        return {info["stage"]: getattr(self, info["module"]) for info in self.feature_info}

    def stage_depths(self) -> dict[str, int]:
        """The number of blocks of each stage, by the paper's name."""
        return {stage: len(module) for stage, module in self.stage_modules().items()}

    def glore_unit(self, stage: str, **unit_args: Any) -> nn.Module:
        """A new zero-initialised GloRe unit for the output of ``stage`` (a paper name such as ``"res4"``)."""
        info = next(i for i in self.feature_info if i["stage"] == stage)
        return build_unit(info["num_chs"], unit_args)

    def glore_spec(self) -> dict[str, tuple[int, ...]]:
        """Where the network's units are: ``{"res4": (1, 3, 5)}``."""
        spec = {}
        for stage, module in self.stage_modules().items():
            if isinstance(module, Stage) and module.units:
                spec[stage] = module.unit_positions()
        return spec

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write the weights (``model.safetensors``) and the architecture (``config.json``) to ``directory``.

        ``create_model(pretrained=directory)`` rebuilds the same network with these weights.

        Returns:
            The directory's path.

        Raises:
            RuntimeError: the network was not made by ``create_model`` (it has no ``model_config``).
        """
        from safetensors.torch import save_file

        config = getattr(self, "model_config", None)
        if not config:
            raise RuntimeError("save_pretrained needs model.model_config: build the network with create_model")
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        assert isinstance(self, nn.Module)
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        with atomic_path(path / WEIGHTS_FILE) as tmp:
            save_file(tensors, str(tmp), metadata={"format": "pt"})
        text = json.dumps({"format": "glore", "model_config": config}, indent=2, sort_keys=True)
        atomic_write_text(path / CONFIG_FILE, text + "\n")
        return path


# ----------------------------------------------------------------------------------------------------------------
# create_model.


def _jsonable(name: str, value: Any) -> Any:
    if isinstance(value, tuple):
        value = [_jsonable(name, v) for v in value]
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"create_model: {name}={value!r} is not JSON-serialisable; model_config must rebuild the network"
        ) from None
    return value


def _model_class(fn: Any) -> type | None:
    try:
        cls = typing.get_type_hints(fn).get("return")
    except Exception:  # an unresolvable annotation: fall back to the builder's own error
        return None
    return cls if inspect.isclass(cls) else None


def _check_kwargs(name: str, fn: Any, kwargs: Mapping[str, Any]) -> None:
    cls = _model_class(fn)
    if cls is None:
        return
    params = inspect.signature(cls.__init__).parameters
    accepted = [p for p in params if p != "self" and params[p].kind is not inspect.Parameter.VAR_KEYWORD]
    for key in kwargs:
        if key not in accepted:
            options = [a for a in accepted if a not in ("num_classes", "glore", "glore_args")]
            raise TypeError(
                f"create_model({name!r}): unknown keyword argument {key!r}{close_matches(key, accepted)}; "
                f"{cls.__name__} takes {', '.join(options)}"
            )


def read_pretrained_config(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``model_config`` stored by ``save_pretrained`` in ``directory``."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"pretrained directory {str(directory)!r} has no {CONFIG_FILE} (see save_pretrained)")
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or data.get("format") != "glore" or not isinstance(data.get("model_config"), dict):
        raise ValueError(f"{path} is not a glore config: expected {{'format': 'glore', 'model_config': {{...}}}}")
    return data["model_config"]


def create_model(
    name: str | None = None,
    *,
    num_classes: int = 1000,
    glore: GloreSpec = None,
    glore_args: Mapping[str, Any] | None = None,
    pretrained: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered network, optionally with GloRe units and pretrained weights.

    Args:
        name: a name from :func:`list_models`; may be left out when ``pretrained`` is a directory written by
            ``save_pretrained`` (its config names the network).
        num_classes: classifier outputs (0: no classifier, ``forward`` returns pooled features).
        glore: where to insert GloRe units: ``"res3:2,res4:3"``, ``{"res4": 3}``, ``{"layer3": [1, 3, 5]}``.
        glore_args: the units' options: ``num_nodes``, ``num_state``, ``normalize``, ``gcn_layers``, ``order``.
        pretrained: a torchvision-style checkpoint (a local ``.pth``/``.safetensors`` file or an http(s) URL) loaded
            into the network with the units left at their identity init, or a ``save_pretrained`` directory.
        **kwargs: architecture options of the network's class (``preact=True``, ``widths=...``).

    Returns:
        The network, in training mode, with ``model_config`` set.

    Raises:
        ValueError: unknown model name (close matches listed), a bad spec, or weights that do not fit.
        TypeError: an unknown keyword argument (close matches listed).
    """
    if pretrained is not None and os.path.isdir(pretrained):
        config = read_pretrained_config(pretrained)
        if name is not None and name != config.get("name"):
            raise ValueError(
                f"create_model: name {name!r} differs from the network saved in {str(pretrained)!r} "
                f"({config.get('name')!r}); leave name out to rebuild the saved network"
            )
        if glore is not None or glore_args is not None or kwargs:
            raise ValueError(
                "create_model: a pretrained directory fixes the architecture; do not pass glore, glore_args or "
                "architecture kwargs with it (use attach() afterwards to add units)"
            )
        model = create_model(**config)
        state = load_state_dict_file(Path(pretrained) / WEIGHTS_FILE)
        load_pretrained(model, state, strict=True)
        if num_classes not in (1000, config.get("num_classes")):
            model.reset_classifier(num_classes)  # type: ignore[operator]
        return model
    if name is None:
        raise TypeError("create_model needs a model name (see list_models()) or pretrained=<save_pretrained dir>")
    fn = get_model_entrypoint(name)
    _check_kwargs(name, fn, kwargs)
    config: dict[str, Any] = {"name": name, "num_classes": num_classes}
    model = fn(num_classes=num_classes, glore=glore, glore_args=glore_args, **kwargs)
    spec = model.glore_spec() if isinstance(model, GloreNet) else {}
    config["glore"] = spec_to_config(spec)
    config["glore_args"] = dict(check_glore_args(glore_args)) or None
    config.update({k: _jsonable(k, v) for k, v in kwargs.items()})
    _jsonable("glore_args", config["glore_args"])
    model.model_config = config
    if pretrained is not None:
        load_pretrained(model, pretrained)
    return model


# ----------------------------------------------------------------------------------------------------------------
# Weights.


def load_state_dict_file(source: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state dict from a local file (``.safetensors`` or a ``torch.save`` file) or an http(s) URL.

    ``torch.save`` files and URLs are read with ``weights_only=True``. A checkpoint dict holding the weights under
    ``"model"``, ``"state_dict"`` or ``"model_state_dict"`` is unwrapped, and a ``module.`` prefix (from
    DataParallel) is removed.
    """
    src = os.fspath(source)
    if src.startswith(("http://", "https://")):
        state: Any = torch.hub.load_state_dict_from_url(src, map_location="cpu", weights_only=True)
    elif not os.path.isfile(src):
        raise FileNotFoundError(f"pretrained: no such file or directory {src!r} (expected a checkpoint or a URL)")
    elif src.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(src)
    else:
        state = torch.load(src, map_location="cpu", weights_only=True)
    if isinstance(state, Mapping):
        for key in ("model", "state_dict", "model_state_dict"):
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"pretrained: {src!r} does not hold a state dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def _unit_prefixes(model: nn.Module) -> list[str]:
    return [name + "." for name, m in model.named_modules() if isinstance(m, GloRe | NonLocal)]


def _listing(title: str, items: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(items[:limit]) + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
    return f"\n  {title} ({len(items)}): {shown}"


def load_pretrained(
    model: nn.Module,
    source: str | os.PathLike[str] | Mapping[str, torch.Tensor],
    *,
    strict: bool = False,
    classifier: str = "fc",
) -> nn.Module:
    """Load a checkpoint into ``model``; GloRe units absent from it keep their identity init.

    Every other key must match by name and shape: a torchvision ResNet/ResNeXt checkpoint loads into the glore
    network of the same depth. When only the classifier differs in shape (another ``num_classes``), it is kept
    at its fresh init, with a warning, so ImageNet weights serve fine-tuning. BatchNorm ``num_batches_tracked``
    counters, absent from older torchvision checkpoints, may be missing.

    Args:
        model: the network.
        source: a state dict, a file path or an http(s) URL.
        strict: also require the units' keys (for checkpoints written by glore itself).
        classifier: the classifier module's name, whose shape may differ.

    Returns:
        ``model``.

    Raises:
        ValueError: missing keys, unexpected keys or shape mismatches, all listed.
    """
    state = dict(source) if isinstance(source, Mapping) else load_state_dict_file(source)
    own = model.state_dict()
    units = () if strict else tuple(_unit_prefixes(model))
    missing = [k for k in own if k not in state and not k.startswith(units) and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    mismatched, skipped = [], []
    for key, value in state.items():
        if key in own and tuple(own[key].shape) != tuple(value.shape):
            if key.startswith(classifier + "."):
                skipped.append(key)
            else:
                mismatched.append(f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(own[key].shape)}")
    if missing or unexpected or mismatched:
        raise ValueError(
            f"pretrained weights do not fit {type(model).__name__}"
            + (_listing("missing keys", missing) if missing else "")
            + (_listing("unexpected keys", unexpected) if unexpected else "")
            + (_listing("shape mismatches", mismatched) if mismatched else "")
        )
    if skipped:
        warnings.warn(
            f"pretrained: the checkpoint's classifier ({', '.join(skipped)}) has another number of classes; "
            f"the model's classifier keeps its fresh init",
            UserWarning,
            stacklevel=2,
        )
    model.load_state_dict({k: v for k, v in state.items() if k not in skipped}, strict=False)
    return model
