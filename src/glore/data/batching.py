"""Batching: ``collate`` stacks samples (pytrees of tensors and numbers, with a meta dict) into a ``Batch`` and counts
the unreadable ones (``None``) it drops."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

__all__ = ["Batch", "collate"]


class Batch(NamedTuple):
    """A collated batch.

    Attributes:
        inputs: the stacked inputs, or any pytree of stacked tensors (e.g. images (n, C, H, W)); an empty tensor of
            shape (0,) when every sample was skipped.
        targets: the stacked targets, or any pytree of them (class labels: int64 of shape (n,)).
        meta: per-sample metadata by key (``{"id": [...], "size": [...]}``): a list of the samples' values for each
            key the samples' meta dicts have; ``{}`` when samples carry none.
        skipped: how many samples of this batch could not be read and were dropped (``on_error="skip"``).
    """

    inputs: Any
    targets: Any
    meta: dict[str, list[Any]]
    skipped: int


def _stack(values: list[Any]) -> Any:
    """Stack a list of same-structured values: tensors, numbers, or dicts/lists/tuples of them."""
    first = values[0]
    if isinstance(first, torch.Tensor):
        return torch.stack(values)
    if isinstance(first, numbers.Integral):
        return torch.as_tensor(values, dtype=torch.long)
    if isinstance(first, numbers.Real):
        return torch.as_tensor(values, dtype=torch.float32)
    if isinstance(first, dict):
        return {key: _stack([v[key] for v in values]) for key in first}
    if isinstance(first, list | tuple):
        return type(first)(_stack(list(parts)) for parts in zip(*values, strict=True))
    raise TypeError(f"collate: cannot stack values of type {type(first).__name__}; expected tensors or numbers")


def collate(batch: Sequence[tuple[Any, ...] | None]) -> Batch:
    """Stack ``(input, target)`` or ``(input, target, meta)`` samples into a ``Batch``, dropping the ``None`` of
    unreadable samples.

    Inputs and targets may be tensors, numbers or nested dicts/lists/tuples of them (stacked leaf by leaf); ``meta``
    is a dict whose values are kept as per-sample lists. Use it as every DataLoader's ``collate_fn``; summing
    ``Batch.skipped`` over an epoch gives the number of samples skipped in it.

    Args:
        batch: the samples the DataLoader gathered; ``None`` for a sample skipped under ``on_error="skip"``.

    Returns:
        ``Batch(inputs, targets, meta, skipped)``.
    """
    kept = [sample for sample in batch if sample is not None]
    skipped = len(batch) - len(kept)
    if not kept:
        return Batch(torch.empty(0), torch.empty(0, dtype=torch.long), {}, skipped)
    if any(not isinstance(s, tuple | list) or len(s) not in (2, 3) for s in kept):
        raise TypeError("collate: expected samples (input, target) or (input, target, meta)")
    inputs = _stack([sample[0] for sample in kept])
    targets = _stack([sample[1] for sample in kept])
    meta: dict[str, list[Any]] = {}
    if len(kept[0]) == 3:
        for key in kept[0][2]:
            meta[key] = [sample[2].get(key) for sample in kept]
    return Batch(inputs, targets, meta, skipped)
