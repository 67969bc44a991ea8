"""The model registry: a dict from name to builder function, filled by ``@register_model``, and each model's
default config (timm's ``pretrained_cfg`` idea): the input and preprocessing the network expects.

A default config is a JSON-serialisable dict:

==================  =====================================================================================
key                 meaning
==================  =====================================================================================
task                the task the network is made for: ``classification``, ``segmentation`` or ``video``
input_size          one input without the batch: (C, H, W), or (C, T, H, W) for a video network
mean, std           per-channel normalisation of pixels in [0, 1]
crop_pct            evaluation: the centre crop's share of the resized shorter side (0.875: 256 -> 224)
interpolation       resampling of the evaluation resize: ``bilinear``, ``bicubic`` or ``nearest``
num_classes         classifier outputs of the registered default
frame_interval      video: frames between two sampled frames (T frames every ``frame_interval``)
eval_mode           segmentation: ``whole`` (one pass over the image) or ``slide`` (sliding windows)
eval_crop           segmentation, ``slide``: the window (height, width)
eval_stride         segmentation, ``slide``: the windows' stride (height, width)
==================  =====================================================================================

A builder registered without one gets ``IMAGENET_CFG`` (ImageNet classification at 224 x 224).
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

from torch import nn

__all__ = [
    "DEFAULT_CFG_KEYS",
    "IMAGENET_CFG",
    "check_default_cfg",
    "close_matches",
    "get_default_cfg",
    "get_model_entrypoint",
    "is_model",
    "list_models",
    "register_model",
]

_ModelFn = TypeVar("_ModelFn", bound=Callable[..., nn.Module])

# name -> builder; filled at import time by the @register_model decorators of the family modules.
_MODEL_ENTRYPOINTS: dict[str, Callable[..., nn.Module]] = {}
# name -> its default config (checked, with IMAGENET_CFG's keys filled in).
_DEFAULT_CFGS: dict[str, dict[str, Any]] = {}

# The default config of a builder registered without one: an ImageNet classifier (torchvision's preprocessing:
# resize the shorter side to 256, centre crop 224, ImageNet mean and std).
IMAGENET_CFG: dict[str, Any] = {
    "task": "classification",
    "input_size": (3, 224, 224),
    "mean": (0.485, 0.456, 0.406),
    "std": (0.229, 0.224, 0.225),
    "crop_pct": 0.875,
    "interpolation": "bilinear",
    "num_classes": 1000,
}

DEFAULT_CFG_KEYS = (
    "task",
    "input_size",
    "mean",
    "std",
    "crop_pct",
    "interpolation",
    "num_classes",
    "frame_interval",
    "eval_mode",
    "eval_crop",
    "eval_stride",
)
_INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


def _positive_ints(key: str, value: Any, lengths: tuple[int, ...], what: str) -> tuple[int, ...]:
    ok = (
        isinstance(value, list | tuple)
        and len(value) in lengths
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in value)
    )
    if not ok:
        raise ValueError(f"default_cfg.{key}: expected {what}, got {value!r}")
    return tuple(int(v) for v in value)


def check_default_cfg(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``cfg`` checked key by key, as a new dict with tuples for its sequences (keys it lacks stay absent).

    Raises:
        ValueError: an unknown key (close matches named) or a value of the wrong form; the message names
            ``default_cfg.<key>``.
    """
    if not isinstance(cfg, Mapping):
        raise ValueError(f"default_cfg: expected a mapping of {', '.join(DEFAULT_CFG_KEYS)}, got {cfg!r}")
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        if key not in DEFAULT_CFG_KEYS:
            hint = close_matches(str(key), DEFAULT_CFG_KEYS)
            raise ValueError(f"default_cfg.{key}: unknown key{hint}; valid: {', '.join(DEFAULT_CFG_KEYS)}")
        if key in ("task", "interpolation", "eval_mode"):
            choices = {"interpolation": _INTERPOLATIONS, "eval_mode": ("whole", "slide")}.get(key)
            if not isinstance(value, str) or (choices is not None and value not in choices):
                expected = " or ".join(repr(c) for c in choices) if choices else "a task name"
                raise ValueError(f"default_cfg.{key}: expected {expected}, got {value!r}")
            out[key] = value
        elif key == "input_size":
            out[key] = _positive_ints(key, value, (3, 4), "(C, H, W) or (C, T, H, W) of positive ints")
        elif key in ("mean", "std"):
            ok = isinstance(value, list | tuple) and len(value) in (1, 3)
            ok = ok and all(isinstance(v, numbers.Real) and math.isfinite(v) for v in value)
            if not ok or (key == "std" and any(v <= 0 for v in value)):
                kind = "positive" if key == "std" else "finite"
                raise ValueError(f"default_cfg.{key}: expected 1 or 3 {kind} numbers, got {value!r}")
            out[key] = tuple(float(v) for v in value)
        elif key == "crop_pct":
            if not (isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 < value <= 1):
                raise ValueError(f"default_cfg.crop_pct: expected a fraction in (0, 1], got {value!r}")
            out[key] = float(value)
        elif key in ("num_classes", "frame_interval"):
            low = 0 if key == "num_classes" else 1
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"default_cfg.{key}: expected an integer >= {low}, got {value!r}")
            out[key] = int(value)
        else:  # eval_crop, eval_stride
            out[key] = _positive_ints(key, value, (2,), "(height, width) of positive ints")
    if "input_size" in out and "mean" in out and len(out["mean"]) not in (1, out["input_size"][0]):
        raise ValueError(
            f"default_cfg.mean: {len(out['mean'])} values for {out['input_size'][0]} input channels (input_size)"
        )
    return out


def get_default_cfg(name: str) -> dict[str, Any]:
    """A copy of the default config registered for model ``name`` (see the module docstring for its keys).

    Raises:
        ValueError: no model is registered under ``name``.
    """
    get_model_entrypoint(name)
    return copy.deepcopy(_DEFAULT_CFGS[name])


def close_matches(word: str, candidates: list[str] | tuple[str, ...], n: int = 3) -> str:
    """A short phrase naming the candidates closest to ``word``, for error messages ("" when none is close)."""
    matches = difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.5)
    return f" (did you mean {', '.join(repr(m) for m in matches)}?)" if matches else ""


@overload
def register_model(fn: _ModelFn, *, default_cfg: Mapping[str, Any] | None = None) -> _ModelFn: ...


@overload
def register_model(
    fn: None = None, *, default_cfg: Mapping[str, Any] | None = None
) -> Callable[[_ModelFn], _ModelFn]: ...


def register_model(
    fn: _ModelFn | None = None, *, default_cfg: Mapping[str, Any] | None = None
) -> _ModelFn | Callable[[_ModelFn], _ModelFn]:
    """Register a model builder under its function name, with its default config.

    Used bare (``@register_model``: the ImageNet default config) or with the network's own
    (``@register_model(default_cfg={"input_size": (3, 32, 32), ...})``; keys it leaves out come from
    ``IMAGENET_CFG``).

    Args:
        fn: a function taking keyword arguments only and returning the network.
        default_cfg: what the network expects as input (see the module docstring).

    Returns:
        ``fn`` unchanged, so the decorator can stack (or, without ``fn``, the decorator).

    Raises:
        ValueError: a model of the same name is already registered, or ``default_cfg`` is malformed.
    """
    if fn is None:
        return lambda f: register_model(f, default_cfg=default_cfg)
    name = fn.__name__
    if name in _MODEL_ENTRYPOINTS:
        raise ValueError(f"a model named {name!r} is already registered (by {_MODEL_ENTRYPOINTS[name].__module__})")
    cfg = check_default_cfg({**IMAGENET_CFG, **(default_cfg or {})})
    _MODEL_ENTRYPOINTS[name] = fn
    _DEFAULT_CFGS[name] = cfg
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered models matching a shell-style ``pattern`` (``"resnet*"``)."""
    return sorted(name for name in _MODEL_ENTRYPOINTS if fnmatch.fnmatchcase(name, pattern))


def is_model(name: str) -> bool:
    """Whether ``name`` is a registered model."""
    return name in _MODEL_ENTRYPOINTS


def get_model_entrypoint(name: Any) -> Callable[..., nn.Module]:
    """The builder registered as ``name``.

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: no model is registered under ``name``; the message lists close matches.
    """
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, got {name!r} of type {type(name).__name__}")
    try:
        return _MODEL_ENTRYPOINTS[name]
    except KeyError:
        hint = close_matches(name, list(_MODEL_ENTRYPOINTS))
        raise ValueError(f"unknown model name {name!r}{hint}; list_models() gives the registered names") from None
