"""What a training run is built from, in the order the ``Trainer`` builds it: the runtime (determinism, seeds), the
data loaders, and the network with its optimiser, schedule and grad scaler.

Each piece is a function of the config, the task and the process (``DistInfo``), so the loop's set-up reads as four
calls; the config itself was checked when it loaded (``glore.engine.config.check_config``).
"""

from __future__ import annotations

import math
import random
import signal
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..layers.helpers import to_channels_last
from .config import Config
from .distributed import DistInfo, ShardSampler, unwrap_model, wrap_model
from .optim import build_optimizer
from .sampling import CachedDataset, EpochSampler, SeededDataset
from .schedules import build_scheduler
from .task import Task

__all__ = [
    "AMP_DTYPES",
    "STOP_SIGNALS",
    "Loaders",
    "Optimisation",
    "build_loaders",
    "build_network",
    "build_optimisation",
    "configure_runtime",
    "eval_loader",
    "seed_everything",
]

AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}
# Signals that stop training gracefully: what SLURM (--signal), Kubernetes and torchrun send before a kill.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGUSR1") if hasattr(signal, name))


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure_runtime(config: Config, info: DistInfo) -> None:
    """Deterministic algorithms (``train.deterministic``) or cuDNN's autotuner, then the seeds: rank 0 seeds with
    ``train.seed`` itself, so one process and rank 0 of many build the same initial network."""
    if config.train.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif info.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    seed_everything(config.train.seed + info.rank)


def _ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers leave SIGTERM/SIGUSR1 to the training process (a signal sent to the whole process group
    would otherwise kill them and fail the step the training process is finishing)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def _loader_workers(config: Config) -> int:
    # Cached samples are ready in memory: worker processes would only add copies between processes.
    return 0 if config.data.cache else config.data.num_workers


def eval_loader(config: Config, task: Task, info: DistInfo, dataset: Dataset, *, persistent: bool = True) -> DataLoader:
    """A loader over this process's unpadded shard of ``dataset`` (workers kept across passes when
    ``persistent``)."""
    val_batch = config.data.val_batch_size or config.data.batch_size
    workers = _loader_workers(config)
    return DataLoader(
        SeededDataset(dataset, config.train.seed),
        batch_size=max(val_batch // info.world_size, 1),
        sampler=EpochSampler(ShardSampler(dataset, num_replicas=info.world_size, rank=info.rank)),
        num_workers=workers,
        persistent_workers=workers > 0 and persistent,
        collate_fn=task.collate,
        pin_memory=info.device.type == "cuda",
        worker_init_fn=_ignore_stop_signals,
        # Its own generator: validating must not draw from the global one (training would then depend on
        # how often it validates).
        generator=torch.Generator().manual_seed(config.train.seed),
    )


@dataclass
class Loaders:
    """The run's data: the datasets, the training sampler and loader, the validation loader, and the budget they
    give (``total_steps`` iterations over ``total_epochs`` epochs of ``steps_per_epoch``)."""

    train_set: Dataset
    val_set: Dataset | None
    train_sampler: EpochSampler
    train_loader: DataLoader
    val_loader: DataLoader | None
    per_process_batch: int
    steps_per_epoch: int
    total_steps: int
    total_epochs: int


def build_loaders(config: Config, task: Task, info: DistInfo) -> Loaders:
    """The task's datasets (cached in memory with ``data.cache``) and their loaders.

    Raises:
        ValueError: the global batch does not divide among the processes, or is larger than the training set.
    """
    cfg, t, world = config, config.train, info.world_size
    train_set, val_set = task.build_datasets()
    if cfg.data.cache:
        train_set = CachedDataset(train_set, cfg.data.num_workers)
        val_set = CachedDataset(val_set, cfg.data.num_workers) if val_set is not None else None
    if cfg.data.batch_size % world:
        raise ValueError(
            f"data.batch_size: the global batch {cfg.data.batch_size} must be divisible by the {world} processes"
        )
    per_process_batch = cfg.data.batch_size // world
    # The data order depends on (seed, epoch) and each sample's augmentation on (seed, epoch, index): a resumed run
    # sees the same data in the same order, whatever the loader workers do.
    train_sampler = EpochSampler(
        DistributedSampler(train_set, num_replicas=world, rank=info.rank, shuffle=True, seed=t.seed)
    )
    workers = _loader_workers(cfg)
    train_loader = DataLoader(
        SeededDataset(train_set, t.seed),
        batch_size=per_process_batch,
        sampler=train_sampler,
        num_workers=workers,
        collate_fn=task.collate,
        pin_memory=info.device.type == "cuda",
        drop_last=True,
        # Workers are started once: forking a new set every epoch, while threads of the last epoch's loader are
        # still exiting, can deadlock the new workers (CPython's fork is not thread-safe).
        persistent_workers=workers > 0,
        worker_init_fn=_ignore_stop_signals,
        generator=torch.Generator().manual_seed(t.seed),
    )
    steps_per_epoch = len(train_loader)
    if steps_per_epoch < 1:
        raise ValueError(
            f"data.batch_size: {cfg.data.batch_size} is larger than the training set "
            f"({len(train_set)} samples); no full batch fits in an epoch"
        )
    total_steps = t.iterations if t.iterations is not None else t.epochs * steps_per_epoch
    return Loaders(
        train_set=train_set,
        val_set=val_set,
        train_sampler=train_sampler,
        train_loader=train_loader,
        val_loader=eval_loader(cfg, task, info, val_set) if val_set is not None else None,
        per_process_batch=per_process_batch,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        total_epochs=math.ceil(total_steps / steps_per_epoch),
    )


def build_network(
    config: Config, task: Task, train_set: Dataset, info: DistInfo
) -> tuple[nn.Module, nn.Module, dict[str, Any] | None]:
    """The task's network on the device, channels-last when configured, wrapped for several processes.

    Returns:
        ``(model, forward_model, model_config)``: the (DDP-wrapped) network, what the training step calls (the
        ``torch.compile``d network with ``train.compile``) and the config that rebuilds it.
    """
    t = config.train
    model = task.build_model(train_set).to(info.device)
    if t.channels_last:  # channels_last for 2D kernels, channels_last_3d for the 5-D kernels of video networks
        model = to_channels_last(model)
    model_config = task.model_config(model)
    model = wrap_model(model, info, sync_bn=t.sync_bn)
    forward_model: nn.Module = torch.compile(model) if t.compile else model
    return model, forward_model, model_config


@dataclass
class Optimisation:
    """The optimiser, its per-iteration learning-rate schedule and the float16 grad scaler (disabled otherwise)."""

    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler


def build_optimisation(config: Config, model: nn.Module, loaders: Loaders, info: DistInfo) -> Optimisation:
    """``config.optim``'s optimiser over the parameters of ``model`` (unwrapped) and ``config.schedule`` stretched
    over the run's budget."""
    s = config.schedule
    optimizer = build_optimizer(unwrap_model(model), config)
    scheduler = build_scheduler(
        optimizer,
        name=s.name,
        epochs=loaders.total_epochs,
        steps_per_epoch=loaders.steps_per_epoch,
        total_steps=loaders.total_steps,
        warmup_epochs=s.warmup_epochs,
        warmup_iters=s.warmup_iters,
        warmup_start_factor=s.warmup_start_factor,
        step_size=s.step_size,
        milestones=s.milestones,
        gamma=s.gamma,
        power=s.power,
        min_lr=s.min_lr,
    )
    scaler = torch.amp.GradScaler(info.device.type, enabled=config.train.amp == "float16")
    return Optimisation(optimizer, scheduler, scaler)
