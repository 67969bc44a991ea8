"""The insertion spec: where GloRe units go in a network, and the options of the units put there.

The spec uses the paper's stage names res2..res5, which are torchvision's ``layer1..layer4``; both spellings are
accepted and the paper's is printed (DESIGN.md, "Names"). With m units in a stage of D blocks, unit k goes after
block ``ceil((k - 1/2) * D / m)``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from ..layers import PRODUCT_ORDERS, GloRe, NonLocal
from ._registry import close_matches

__all__ = [
    "STAGES",
    "STAGE_MODULES",
    "TORCHVISION_NAMES",
    "GloreSpec",
    "canonical_stage",
    "unit_positions",
    "parse_glore_spec",
    "spec_to_config",
    "check_glore_args",
    "build_unit",
]

# The paper's stage names, in order, and torchvision's names for the same stages.
STAGES = ("res2", "res3", "res4", "res5")
TORCHVISION_NAMES = {"layer1": "res2", "layer2": "res3", "layer3": "res4", "layer4": "res5"}
STAGE_MODULES = {v: k for k, v in TORCHVISION_NAMES.items()}

GloreSpec = str | Mapping[str, int | Sequence[int]] | None

# Options of the inserted units that glore_args may set: the JSON-serialisable ones. ``block`` picks the unit:
# "glore" (default) or "nonlocal" (the baseline the paper compares with, at the same positions).
# ``zero_init=False`` is allowed for ablations only, with a warning: such a unit changes the network it enters.
GLORE_ARGS = (
    "block",
    "num_nodes",
    "num_state",
    "normalize",
    "gcn_layers",
    "order",
    "zero_init",
    "gcn_act",
    "preact",
)
NONLOCAL_ARGS = ("block", "zero_init")
UNIT_BLOCKS = ("glore", "nonlocal")


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
