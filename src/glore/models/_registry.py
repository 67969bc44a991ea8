"""The model registry: a dict from name to builder function, filled by ``@register_model``."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

__all__ = ["register_model", "list_models", "get_model_entrypoint", "is_model", "close_matches"]

_ModelFn = TypeVar("_ModelFn", bound=Callable[..., nn.Module])

# name -> builder; filled at import time by the @register_model decorators of the family modules.
_MODEL_ENTRYPOINTS: dict[str, Callable[..., nn.Module]] = {}


def close_matches(word: str, candidates: list[str] | tuple[str, ...], n: int = 3) -> str:
    """A short phrase naming the candidates closest to ``word``, for error messages ("" when none is close)."""
    matches = difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.5)
    return f" (did you mean {', '.join(repr(m) for m in matches)}?)" if matches else ""


def register_model(fn: _ModelFn) -> _ModelFn:
    """Register a model builder under its function name.

    Args:
        fn: a function taking keyword arguments only and returning the network.

    Returns:
        ``fn`` unchanged, so the decorator can stack.

    Raises:
        ValueError: a model of the same name is already registered.
    """
    name = fn.__name__
    if name in _MODEL_ENTRYPOINTS:
        raise ValueError(f"a model named {name!r} is already registered (by {_MODEL_ENTRYPOINTS[name].__module__})")
    _MODEL_ENTRYPOINTS[name] = fn
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
