"""Typed task settings: what a task declares about its ``config.task_args``, and the one check of them.

A task lists its options as data, one line each::

    settings = {
        "precise_bn": Setting(int, 0, "BatchNorm statistics re-estimated over this many batches (0: off)", ge=0),
        "mode": Setting(Literal["whole", "slide"], "whole", "inference over the whole image or sliding windows"),
    }

``load_config`` checks a recipe's ``task_args`` against the settings of the task it names (found through the task
registry) before anything runs, so a wrong value stops ``glore train`` and ``glore eval`` with one line naming the key
(``task_args.precise_bn: expected int >= 0, got str 'two'``). The task calls ``resolve_settings`` again when it is
built, which also fills in the defaults; ``settings_table`` and ``settings_markdown`` write the documentation of the
settings from the same declaration.

Types are annotations: ``bool`` (a YAML boolean only: ``maybe`` or ``1`` are refused), ``int`` (not a bool),
``float`` (an int is widened), ``str`` (non-empty), ``None``, ``Literal[...]`` (choices), ``list[T]`` (non-empty),
``tuple[T, U]`` (exactly that many items, stored as a list), ``dict`` (a mapping; with ``fields``, its own settings)
and unions of these (``float | tuple[int, int] | None``). The bounds ``ge``, ``gt`` and ``le`` hold for every number
in the value (each item of a list).
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union

from .config import ConfigError

__all__ = ["Setting", "describe", "resolve_settings", "settings_markdown", "settings_table"]

_FAIL = object()  # what _convert returns for a value that does not fit


@dataclass(frozen=True)
class Setting:
    """One option of a task's ``task_args``.

    Args:
        type: the annotation the value must fit (see the module docstring for the forms understood).
        default: the value when ``task_args`` leaves the key out (checked against ``type`` when declared).
        doc: what the option does, one sentence (the settings tables print it).
        ge: every number in the value is at least this.
        gt: every number in the value is greater than this.
        le: every number in the value is at most this.
        fields: for a ``dict`` type, the settings of that mapping (``{thresh: ..., min_kept: ...}``).
        check: a further test of a value that fits ``type``: returns what is wrong with it, or None.
        expected: how the error message words what is expected (default: written from ``type`` and the bounds).
    """

    type: Any
    default: Any
    doc: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    fields: Mapping[str, Setting] | None = None
    check: Callable[[Any], str | None] | None = None
    expected: str | None = None

    def __post_init__(self) -> None:
        if self.default is not None or not _allows_none(self.type):
            _check_one(self.default, self, "default")


def _allows_none(tp: Any) -> bool:
    return tp is type(None) or tp is None or (_is_union(tp) and type(None) in typing.get_args(tp))


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _bounds(s: Setting) -> str:
    if s.le is not None and (s.ge is not None or s.gt is not None):
        low = f"[{_num(s.ge)}" if s.ge is not None else f"({_num(s.gt)}"
        return f" in {low}, {_num(s.le)}]"
    parts = [f">= {_num(s.ge)}" if s.ge is not None else "", f"> {_num(s.gt)}" if s.gt is not None else ""]
    parts.append(f"<= {_num(s.le)}" if s.le is not None else "")
    text = " and ".join(p for p in parts if p)
    return f" {text}" if text else ""


def _num(x: float | None) -> str:
    return str(int(x)) if x is not None and float(x).is_integer() else str(x)


def describe(tp: Any, s: Setting | None = None) -> str:
    """What a value of annotation ``tp`` (with the bounds of ``s``) looks like, in words: ``int >= 0``."""
    s = s or Setting(Any, None, "")
    origin = typing.get_origin(tp)
    if tp is type(None) or tp is None:
        return "null"
    if tp is Any:
        return "any value"
    if tp is bool:
        return "bool (true or false)"
    if tp in (int, float):
        return tp.__name__ + _bounds(s)
    if tp is str:
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if _is_union(tp):
        options = [describe(a, s) for a in typing.get_args(tp)]
        return ", ".join(options[:-1]) + " or " + options[-1] if len(options) > 1 else options[0]
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return f"a non-empty list of {describe(item, s)}"
    if origin is tuple:
        items = [describe(a, s) for a in typing.get_args(tp)]
        return "[" + ", ".join(items) + "]"
    if tp is dict or origin is dict:
        return "a mapping {" + ", ".join(s.fields) + "}" if s.fields else "a mapping"
    return getattr(tp, "__name__", str(tp))


def _in_bounds(x: float, s: Setting) -> bool:
    return (
        math.isfinite(x) and (s.ge is None or x >= s.ge) and (s.gt is None or x > s.gt) and (s.le is None or x <= s.le)
    )


def _convert(value: Any, tp: Any, s: Setting, key: str) -> Any:
    """``value`` as annotation ``tp`` wants it (ints widened to floats, tuples as lists), or ``_FAIL``."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if tp is type(None) or tp is None:
        return None if value is None else _FAIL
    if _is_union(tp):
        for option in typing.get_args(tp):
            out = _convert(value, option, s, key)
            if out is not _FAIL:
                return out
        return _FAIL
    if origin is Literal:
        return value if any(type(value) is type(a) and value == a for a in typing.get_args(tp)) else _FAIL
    if tp is bool:
        return value if isinstance(value, bool) else _FAIL
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool) and _in_bounds(value, s)
        return value if ok else _FAIL
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and _in_bounds(float(value), s)
        return float(value) if ok else _FAIL
    if tp is str:
        return value if isinstance(value, str) and value else _FAIL
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, list | tuple) or not value:
            return _FAIL
        out = [_convert(v, item, s, key) for v in value]
        return _FAIL if any(v is _FAIL for v in out) else out
    if origin is tuple:
        items = typing.get_args(tp)
        if not isinstance(value, list | tuple) or len(value) != len(items):
            return _FAIL
        out = [_convert(v, t, s, key) for v, t in zip(value, items, strict=True)]
        return _FAIL if any(v is _FAIL for v in out) else out
    if tp is dict or origin is dict:
        if not isinstance(value, Mapping):
            return _FAIL
        # the mapping's own keys are checked one by one, so an error names the inner key
        return resolve_settings(value, s.fields, prefix=key) if s.fields is not None else dict(value)
    return value if isinstance(tp, type) and isinstance(value, tp) else _FAIL


def _check_one(value: Any, s: Setting, key: str) -> Any:
    out = _convert(value, s.type, s, key)
    if out is _FAIL:
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise ConfigError(f"{key}: expected {s.expected or describe(s.type, s)}, got {type(value).__name__} {shown}")
    problem = s.check(out) if s.check is not None and out is not None else None
    if problem:
        raise ConfigError(f"{key}: {problem}, got {value!r}")
    return out


def resolve_settings(
    given: Mapping[str, Any] | None,
    settings: Mapping[str, Setting],
    *,
    prefix: str = "task_args",
    defaults: bool = True,
) -> dict[str, Any]:
    """Check ``given`` (a task's ``task_args``) against ``settings`` and return it completed with the defaults.

    Args:
        given: the values a recipe sets.
        settings: the task's declared settings.
        prefix: the dotted key the values live under, for messages.
        defaults: fill in the defaults of the keys ``given`` leaves out (else return only the given ones, checked and
            converted: what ``load_config`` keeps in the config).

    Returns:
        The checked values, ints widened to floats and tuples made lists where the settings say so.

    Raises:
        ConfigError: an unknown key (the valid ones listed) or a value that does not fit, named ``prefix.key``.
    """
    given = given or {}
    if not isinstance(given, Mapping):
        raise ConfigError(f"{prefix}: expected a mapping of {', '.join(settings) or 'nothing'}, got {given!r}")
    unknown = [k for k in given if k not in settings]
    if unknown:
        valid = ", ".join(settings) if settings else "none (this task has no options)"
        raise ConfigError(f"{prefix}.{unknown[0]}: unknown option; valid: {valid}")
    out = {k: _copy(s.default) for k, s in settings.items()} if defaults else {}
    for k, value in given.items():
        out[k] = _check_one(value, settings[k], f"{prefix}.{k}")
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value


def _default_text(s: Setting) -> str:
    import json

    if s.default is None:
        return "null"
    if isinstance(s.default, bool):
        return "true" if s.default else "false"
    if isinstance(s.default, str):
        return s.default
    return json.dumps(s.default).replace('"', "")


def _rows(settings: Mapping[str, Setting]) -> list[tuple[str, str, str, str]]:
    return [
        (k, describe(s.type, s) if s.expected is None else s.expected, _default_text(s), s.doc)
        for k, s in settings.items()
    ]


def settings_table(settings: Mapping[str, Setting], *, width: int = 116) -> str:
    """The settings as a reStructuredText table (key, type, default, meaning), for a task module's docstring."""
    import textwrap

    rows = [("key", "type", "default", "meaning"), *_rows(settings)]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    last = max(width - sum(widths) - 6, 44)
    rule = "  ".join("=" * w for w in [*widths, last])
    lines = [rule]
    for n, row in enumerate(rows):
        wrapped = textwrap.wrap(row[3], last) or [""]
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + wrapped[0])
        lines += [" " * (sum(widths) + 6) + more for more in wrapped[1:]]
        if n == 0:
            lines.append(rule)
    lines.append(rule)
    return "\n".join(line.rstrip() for line in lines)


def settings_markdown(settings: Mapping[str, Setting]) -> str:
    """The settings as a Markdown table (key, type, default, meaning), for the documentation."""
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{k}` | {t} | `{d}` | {doc.replace('``', '`')} |" for k, t, d, doc in _rows(settings)]
    return "\n".join(lines)
