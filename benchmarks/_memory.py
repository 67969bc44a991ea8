"""Memory measures shared by the benchmarks (imported as a sibling module: run them as ``python benchmarks/X.py``)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def saved_for_backward_mb(module: nn.Module, forward: Callable[[], torch.Tensor]) -> float:
    """MB of the tensors a training forward of ``module`` saves for backward (unique storages, parameters
    excluded): a deterministic measure of training memory, unlike an allocator's peak.

    Args:
        module: the network; put in training mode.
        forward: runs the training forward and returns the loss (not backpropagated).
    """
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    module.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = forward()
    del loss
    return sum(storages.values()) / 2**20
