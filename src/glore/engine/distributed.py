"""Several processes: torchrun's environment, process groups, DDP, samplers and reductions.

``torchrun --nproc_per_node=N -m glore train CONFIG`` starts N processes with ``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` set; ``init_distributed`` reads them and joins the group
(NCCL on CUDA, gloo on CPU). A plain ``glore train`` is a world of one and none of this is used.

Validation shards the dataset with ``ShardSampler``, which, unlike ``DistributedSampler``, never pads with
repeated samples: rank r takes samples r, r + N, r + 2N, ... so every sample is evaluated exactly once, and
summed counts give exact metrics.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sized
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

__all__ = [
    "DistInfo",
    "ShardSampler",
    "all_gather_object",
    "all_reduce_sum",
    "barrier",
    "broadcast_object",
    "cleanup_distributed",
    "init_distributed",
    "is_distributed",
    "is_main_process",
    "resolve_device",
    "sync_buffers",
    "unwrap_model",
    "wrap_model",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands.

    Attributes:
        rank: global rank (0 writes logs and checkpoints).
        local_rank: rank on this node (selects the CUDA device).
        world_size: number of processes.
        device: the device this process trains on.
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether more than one process takes part."""
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """The device for ``train.device`` (``"auto"``, ``"cpu"`` or ``"cuda"``) and this process's local rank."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("train.device: 'cuda' but CUDA is not available on this machine; use 'cpu' or 'auto'")
        return torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"train.device: expected 'auto', 'cpu' or 'cuda', got {name!r}")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}: expected an int, got {value!r}") from None


def init_distributed(device: str = "auto", timeout_s: float = 1800.0) -> DistInfo:
    """Join the process group that torchrun's environment describes, or return a world of one.

    The backend is NCCL when the device is CUDA, gloo otherwise. Each CUDA process uses GPU ``LOCAL_RANK``.

    Args:
        device: ``train.device``.
        timeout_s: collective timeout.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    torch_device = resolve_device(device, local_rank)
    if world_size > 1:
        if torch_device.type == "cuda":
            torch.cuda.set_device(torch_device)
        if not dist.is_initialized():
            backend = "nccl" if torch_device.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
        rank, world_size = dist.get_rank(), dist.get_world_size()
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world_size, device=torch_device)


def cleanup_distributed() -> None:
    """Leave the process group, if one was joined, once every process has arrived here (a process that tears
    down its connections while another still uses them makes gloo abort)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def is_distributed() -> bool:
    """Whether a process group of more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main_process() -> bool:
    """Whether this process is rank 0 (always true without a process group)."""
    return not is_distributed() or dist.get_rank() == 0


def barrier() -> None:
    """Wait for every process (no-op in a world of one)."""
    if is_distributed():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all processes, in place, and return it (unchanged in a world of one)."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_object(obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order (``[obj]`` in a world of one)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every process."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


class ShardSampler(Sampler[int]):
    """Deterministic, unpadded sharding for evaluation: rank r yields indices r, r + N, r + 2N, ...

    Shards differ in length by at most one, and their union is every index exactly once.

    Args:
        data_source: the dataset (only its length is used).
        num_replicas: number of processes; default the current world size.
        rank: this process's rank; default the current rank.
    """

    def __init__(self, data_source: Sized, num_replicas: int | None = None, rank: int | None = None) -> None:
        if num_replicas is None:
            num_replicas = dist.get_world_size() if is_distributed() else 1
        if rank is None:
            rank = dist.get_rank() if is_distributed() else 0
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank: expected 0..{num_replicas - 1} for num_replicas={num_replicas}, got {rank}")
        self.size = len(data_source)
        self.num_replicas = num_replicas
        self.rank = rank

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.size, self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, self.size, self.num_replicas))


def wrap_model(model: nn.Module, info: DistInfo, *, sync_bn: bool = False) -> nn.Module:
    """Wrap ``model`` (already on ``info.device``) in DistributedDataParallel when several processes train.

    Args:
        model: the network.
        info: this process's ``DistInfo``.
        sync_bn: convert BatchNorm layers to SyncBatchNorm first (CUDA only: PyTorch's SyncBatchNorm does not
            run on CPU tensors).

    Returns:
        The DDP-wrapped model, or ``model`` itself in a world of one.
    """
    if not info.distributed:
        return model
    if sync_bn:
        if info.device.type != "cuda":
            raise ValueError(
                "train.sync_bn: SyncBatchNorm needs CUDA devices; on CPU set train.sync_bn=false "
                "(each process then normalises with its own batch statistics)"
            )
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


@torch.no_grad()
def sync_buffers(model: nn.Module) -> None:
    """Make every process's buffers equal: floating-point buffers (BatchNorm running statistics) become their
    mean over the processes, the others (``num_batches_tracked``) take rank 0's value.

    Without it each process keeps the running statistics of its own last batches, so validation shards would
    be normalised differently, and differently from the checkpoint (rank 0's). No-op in a world of one.
    """
    if not is_distributed():
        return
    world = dist.get_world_size()
    for buffer in unwrap_model(model).buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
            buffer.div_(world)
        else:
            dist.broadcast(buffer, src=0)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain network inside DDP and ``torch.compile`` wrappers (whose state-dict keys have no prefix)."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod  # a torch.compile OptimizedModule
        else:
            return model
