"""Building networks: the networks' common interface (GloreNet), create_model and the default config a network
carries (``model.default_cfg``, read by ``resolve_data_config``).

The insertion spec lives in ``_spec``, the stage container in ``_stage``, checkpoints and save_pretrained in
``_weights``.
"""

from __future__ import annotations

import inspect
import json
import math
import numbers
import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._registry import IMAGENET_CFG, check_default_cfg, close_matches, get_default_cfg, get_model_entrypoint
from ._spec import GloreSpec, build_unit, check_glore_args, spec_to_config
from ._stage import Stage
from ._weights import load_pretrained, read_network_file, save_pretrained

__all__ = ["GloreNet", "create_model", "check_num_classes", "resolve_data_config"]


def check_num_classes(value: object) -> int:
    """``value`` as an int if it is a valid class count (0: no classifier), else raise naming ``num_classes``.

    Raises:
        TypeError: ``value`` is not an integer (bools and floats are refused).
        ValueError: ``value`` is negative.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"num_classes must be a non-negative integer (0: no classifier), got {value!r} of type "
            f"{type(value).__name__}"
        )
    if value < 0:
        raise ValueError(f"num_classes must be a non-negative integer (0: no classifier), got {value}")
    return int(value)


class GloreNet:
    """Mixin of glore's networks: the creation record, the unit factory and ``save_pretrained``.

    A network sets ``feature_info``, ``num_features`` and its stage modules (named after ``feature_info``'s
    ``module``); ``create_model`` sets ``model_config``.
    """

    feature_info: list[dict[str, Any]]
    num_features: int
    model_config: dict[str, Any]
    default_cfg: dict[str, Any]

    # The head is shared: a network defines forward_features and has avgpool, drop_rate, fc, num_features.
    # GloreNet comes before nn.Module among a network's bases, so these win over nn.Module's forward.

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier by a fresh one with ``num_classes`` outputs (0: none)."""
        num_classes = check_num_classes(num_classes)
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        if getattr(self, "model_config", None):
            self.model_config["num_classes"] = num_classes
        if getattr(self, "default_cfg", None):
            self.default_cfg["num_classes"] = num_classes

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

        ``create_model(pretrained=directory)`` rebuilds the same network with these weights; see
        :func:`glore.models._weights.save_pretrained`.

        Raises:
            RuntimeError: the network was not made by ``create_model`` (it has no ``model_config``).
        """
        return save_pretrained(self, directory)  # type: ignore[arg-type]


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


def create_model(
    name: str | None = None,
    *,
    num_classes: int | None = None,
    glore: GloreSpec = None,
    glore_args: Mapping[str, Any] | None = None,
    pretrained: str | os.PathLike[str] | None = None,
    default_cfg: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered network, optionally with GloRe units and pretrained weights.

    Args:
        name: a name from :func:`list_models`; may be left out when ``pretrained`` is a directory written by
            ``save_pretrained`` (its config names the network).
        num_classes: classifier outputs (0: no classifier, ``forward`` returns pooled features). None (not
            given): the network's own default (1000 for the ImageNet networks, 19 for the FCNs, 400 for the video
            networks), or with a ``save_pretrained`` directory the saved network's count.
        glore: where to insert GloRe units: ``"res3:2,res4:3"``, ``{"res4": 3}``, ``{"layer3": [1, 3, 5]}``.
        glore_args: the units' options: ``num_nodes``, ``num_state``, ``normalize``, ``gcn_layers``, ``order``.
        pretrained: a torchvision-style checkpoint (a local ``.pth``/``.safetensors`` file or an http(s) URL) loaded
            into the network with the units left at their identity init, or a file that names its network and is
            rebuilt from it (``name`` may then be left out): a ``save_pretrained`` directory, a ``.safetensors``
            file written by ``glore convert``, PaddleSeg's ``.pdparams`` or MindSpore's ``.ckpt`` (see
            :mod:`glore.models.convert`).
        default_cfg: keys that replace the registered default config's in ``model.default_cfg`` (weights trained
            with other preprocessing: ``{"mean": ..., "std": ...}``); stored in ``model_config``, so checkpoints
            and ``save_pretrained`` directories keep them.
        **kwargs: architecture options of the network's class (``preact=True``, ``widths=...``).

    Returns:
        The network, in training mode, with ``model_config`` and ``default_cfg`` set.

    Raises:
        ValueError: unknown model name (close matches listed), a bad spec, ``glore_args`` without units, a negative
            ``num_classes``, weights that cannot be read or downloaded or that do not fit (keys listed), a
            malformed ``default_cfg`` (the key named).
        TypeError: an unknown keyword argument (close matches listed), ``pretrained`` not a path or URL
            (``True``), ``num_classes`` not an integer.
        FileNotFoundError: ``pretrained`` names no file.
    """
    if num_classes is not None:
        num_classes = check_num_classes(num_classes)
    overlay = check_default_cfg(default_cfg) if default_cfg is not None else None
    if pretrained is not None and (isinstance(pretrained, bool) or not isinstance(pretrained, str | os.PathLike)):
        raise TypeError(
            f"pretrained must be a checkpoint file's path, an http(s) URL or a save_pretrained directory (glore "
            f"names no built-in weights, so True is not accepted), got {pretrained!r} of type "
            f"{type(pretrained).__name__}"
        )
    saved = read_network_file(pretrained) if pretrained is not None else None
    if saved is not None:
        config, state, what = saved
        config = dict(config)
        if name is not None and name != config.get("name"):
            raise ValueError(
                f"create_model: name {name!r} differs from the network saved in {str(pretrained)!r} "
                f"({config.get('name')!r}); leave name out to rebuild the saved network"
            )
        if glore is not None or glore_args is not None or kwargs:
            raise ValueError(
                f"create_model: {what} ({str(pretrained)!r}) fixes the architecture; do not pass glore, glore_args "
                f"or architecture kwargs with it (use attach() afterwards to add units)"
            )
        if overlay:
            config["default_cfg"] = {**(config.get("default_cfg") or {}), **overlay}
        model = create_model(**config)
        load_pretrained(model, state, strict=True)
        if num_classes is not None and num_classes != config.get("num_classes"):
            model.reset_classifier(num_classes)  # type: ignore[operator]
            if isinstance(getattr(model, "default_cfg", None), dict):
                model.default_cfg["num_classes"] = num_classes
        return model
    if name is None:
        raise TypeError("create_model needs a model name (see list_models()) or pretrained=<save_pretrained dir>")
    fn = get_model_entrypoint(name)
    _check_kwargs(name, fn, kwargs)
    if isinstance(glore_args, Mapping) and glore_args and not glore:
        raise ValueError(
            f"glore_args {dict(glore_args)} given but glore={glore!r} inserts no units for them to configure; give "
            f"a spec (glore='res4:1') or leave glore_args out"
        )
    given = {} if num_classes is None else {"num_classes": num_classes}
    model = fn(glore=glore, glore_args=glore_args, **given, **kwargs)
    config: dict[str, Any] = {"name": name, "num_classes": int(getattr(model, "num_classes", num_classes))}
    spec = model.glore_spec() if isinstance(model, GloreNet) else {}
    config["glore"] = spec_to_config(spec)
    config["glore_args"] = dict(check_glore_args(glore_args)) or None
    config.update({k: _jsonable(k, v) for k, v in kwargs.items()})
    _jsonable("glore_args", config["glore_args"])
    if overlay:
        config["default_cfg"] = {k: _jsonable(f"default_cfg.{k}", v) for k, v in overlay.items()}
    model.model_config = config
    model.default_cfg = {**get_default_cfg(name), "num_classes": config["num_classes"], **(overlay or {})}
    if pretrained is not None:
        load_pretrained(model, pretrained)
    return model


def resolve_data_config(
    model: nn.Module | None = None, *, config: Mapping[str, Any] | None = None, name: str | None = None
) -> dict[str, Any]:
    """The input a network expects: its default config with ``config``'s keys replacing the network's.

    The network's ``default_cfg`` (set by ``create_model``) is read; a network built otherwise gets the registered
    config of its ``model_config`` name, or of ``name``, else ``IMAGENET_CFG``. The result also has ``num_frames``
    (a video network's T, from ``input_size``) and ``resize_size``: the shorter side before the centre crop,
    ``floor(side / crop_pct + 0.5)`` (256 for 224 at 0.875).

    Args:
        model: a network (may be None with ``name``).
        config: explicit values that win (keys of the default config: ``input_size``, ``mean``, ...).
        name: a registered model name, used when ``model`` carries no config.

    Returns:
        A new dict of the default config's keys, plus ``num_frames`` for video and ``resize_size``.

    Raises:
        ValueError: ``config`` has an unknown key or a malformed value (named).
    """
    cfg = getattr(model, "default_cfg", None)
    if not cfg:
        registered = name or (getattr(model, "model_config", None) or {}).get("name")
        cfg = get_default_cfg(registered) if registered else dict(IMAGENET_CFG)
    resolved: dict[str, Any] = {**cfg, **check_default_cfg(config or {})}
    size = resolved["input_size"]
    if len(size) == 4:  # (C, T, H, W)
        resolved["num_frames"] = size[1]
    resolved["resize_size"] = int(math.floor(min(size[-2:]) / resolved["crop_pct"] + 0.5))
    return resolved
