"""The one collective the meters need: sum (or max) their counters over every process of a torchrun job.

It lives beside the meters, not in the engine, so that ``glore.metrics`` depends on torch alone and a meter can be
used (and reduced) outside glore's training loop.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["is_distributed", "all_reduce_"]

_OPS = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_(*tensors: torch.Tensor, op: str = "sum") -> None:
    """Reduce each tensor over every process, in place (nothing happens in a world of one). Call it on every
    process, with tensors on the device of the process group's backend (CUDA for NCCL, CPU for gloo).

    Args:
        tensors: the counters to reduce.
        op: ``"sum"`` or ``"max"``.
    """
    if op not in _OPS:
        raise ValueError(f"op: expected one of {sorted(_OPS)}, got {op!r}")
    if not is_distributed():
        return
    for tensor in tensors:
        dist.all_reduce(tensor, op=_OPS[op])
