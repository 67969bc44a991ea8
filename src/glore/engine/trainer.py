"""One training loop for every task.

A ``Task`` supplies what differs between problems: the datasets, the network, the loss and the metrics.
The ``Trainer`` does the rest the same way for all of them: samplers and loaders, the optimiser and its
per-iteration schedule, mixed precision, channels-last, ``torch.compile``, DistributedDataParallel,
checkpoints that resume exactly, a stop on a non-finite loss, progress, logs and curves.

Classification is the task registered today (``TASKS["classification"]``); segmentation and video plug in by
registering another ``Task`` subclass.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from .checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from .config import Config, config_to_dict, save_config
from .distributed import (
    DistInfo,
    ShardSampler,
    all_gather_object,
    all_reduce_sum,
    init_distributed,
    sync_buffers,
    unwrap_model,
    wrap_model,
)
from .logger import RunLogger
from .schedules import build_scheduler

__all__ = [
    "ClassificationTask",
    "Meter",
    "NonFiniteLossError",
    "TASKS",
    "Task",
    "Trainer",
    "build_optimizer",
    "evaluate",
    "param_groups",
    "register_task",
    "train",
]

AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the message names the step, the learning rate and the last
    good checkpoint.

    Attributes:
        step: the global iteration (1-based) whose loss was not finite.
        epoch: the 1-based epoch.
        lr: the learning rate of that iteration.
        loss: the loss value.
        checkpoint: the last good checkpoint, or ``None`` when none was written yet.
    """

    def __init__(self, *, step: int, epoch: int, lr: float, loss: float, checkpoint: Path | None) -> None:
        self.step, self.epoch, self.lr, self.loss, self.checkpoint = step, epoch, lr, loss, checkpoint
        kept = (
            f"the last good checkpoint is kept: {checkpoint}"
            if checkpoint is not None
            else "no checkpoint had been written yet"
        )
        super().__init__(
            f"training stopped: the loss is {loss} at step {step} (epoch {epoch}) with learning rate {lr:.6g}; "
            f"{kept}. Lower optim.lr, add warm-up (schedule.warmup_epochs) or gradient clipping "
            "(optim.clip_grad_norm), then resume with --resume."
        )


class Meter(Protocol):
    """What a task's metrics object provides (``glore.metrics.ClassificationMeter`` is one)."""

    def update(self, outputs: Any, targets: Any) -> None:
        """Add a batch."""

    def reduce(self, device: torch.device | str = "cpu") -> None:
        """Sum the accumulated state over all processes."""

    def compute(self) -> dict[str, float]:
        """The metrics, including ``count`` (the samples seen)."""


class Task:
    """What a problem supplies to the ``Trainer``: datasets, network, loss, metrics and batch collation.

    Subclass it and register the subclass under a name (``register_task``) for ``config.task`` to select it.

    Args:
        config: the run's configuration.
    """

    def __init__(self, config: Config) -> None:
        self.config = config

    def build_dataset(self, split: str, *, train: bool) -> Dataset:
        """The dataset of ``split``, with training (``train``) or evaluation preprocessing."""
        raise NotImplementedError(f"{type(self).__name__}.build_dataset")

    def build_datasets(self) -> tuple[Dataset, Dataset | None]:
        """The training dataset and the validation dataset (``None`` when ``data.val_split`` is null)."""
        d = self.config.data
        train_set = self.build_dataset(d.train_split, train=True)
        val_set = self.build_dataset(d.val_split, train=False) if d.val_split else None
        return train_set, val_set

    def build_model(self, train_dataset: Dataset) -> nn.Module:
        """The network to train, built for ``train_dataset`` (e.g. its number of classes)."""
        raise NotImplementedError(f"{type(self).__name__}.build_model")

    def rebuild_model(self, model_config: dict[str, Any]) -> nn.Module:
        """The network described by a checkpoint's ``model_config`` (used by ``evaluate``)."""
        from glore.models import create_model

        return create_model(**{**model_config, "pretrained": None})

    def model_config(self, model: nn.Module) -> dict[str, Any] | None:
        """What to store as the checkpoint's ``model_config``: the network's own ``model_config``."""
        config = getattr(model, "model_config", None)
        return dict(config) if config is not None else None

    def loss(self, outputs: Any, targets: Any, *, train: bool) -> torch.Tensor:
        """The scalar loss of a batch (``train`` is false during validation)."""
        raise NotImplementedError(f"{type(self).__name__}.loss")

    def create_meter(self, dataset: Dataset) -> Meter:
        """A fresh metrics accumulator for ``dataset``."""
        raise NotImplementedError(f"{type(self).__name__}.create_meter")

    def collate(self, samples: list[Any]) -> Any:
        """Collate samples into ``Batch(inputs, targets, skipped)`` (default: ``glore.data.collate``)."""
        from glore.data import collate

        return collate(samples)


class ClassificationTask(Task):
    """Image classification: ``glore.data`` datasets, ``glore.models`` networks, cross-entropy with optional
    label smoothing, top-1/top-5/mean per-class accuracy."""

    def build_dataset(self, split: str, *, train: bool) -> Dataset:
        """A dataset from ``config.data`` through ``glore.data.create_dataset``."""
        from glore.data import create_dataset

        d = self.config.data
        kwargs = {**d.kwargs, **(d.train_kwargs if train else d.val_kwargs)}
        transform = None
        if d.transform == "standard":
            from glore.data.transforms import build_transform

            if len(d.crop_scale) != 2:
                raise ValueError(f"data.crop_scale: expected [min, max], got {d.crop_scale}")
            extra: dict[str, Any] = (
                {"color_jitter": d.color_jitter, "scale": tuple(d.crop_scale)}
                if train
                else {"resize_ratio": d.eval_crop_ratio}
            )
            transform = build_transform(train, d.image_size, mean=d.mean, std=d.std, **extra)
        return create_dataset(d.name, d.root, split, transform=transform, on_error=d.on_error, **kwargs)

    def build_model(self, train_dataset: Dataset) -> nn.Module:
        """``glore.models.create_model`` with ``config.model``; ``num_classes`` defaults to the dataset's."""
        from glore.models import create_model

        m = self.config.model
        dataset_classes = getattr(train_dataset, "num_classes", None)
        num_classes = m.num_classes if m.num_classes is not None else dataset_classes
        if num_classes is None:
            raise ValueError("model.num_classes: the dataset has no num_classes attribute; set it in the config")
        if dataset_classes is not None and num_classes != dataset_classes:
            raise ValueError(f"model.num_classes: {num_classes} does not match the dataset's {dataset_classes} classes")
        kwargs = dict(m.kwargs)
        if m.pretrained is not None:
            kwargs["pretrained"] = m.pretrained
        return create_model(m.name, num_classes=num_classes, glore=m.glore, glore_args=m.glore_args or None, **kwargs)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor, *, train: bool) -> torch.Tensor:
        """Cross-entropy in float32, with ``train.label_smoothing`` during training only."""
        smoothing = self.config.train.label_smoothing if train else 0.0
        return F.cross_entropy(outputs.float(), targets, label_smoothing=smoothing)

    def create_meter(self, dataset: Dataset) -> Meter:
        """A ``ClassificationMeter`` with top-1, mean per-class accuracy, and top-5 when there are more than five
        classes."""
        from glore.metrics import ClassificationMeter

        num_classes = getattr(dataset, "num_classes", None) or self.config.model.num_classes
        if num_classes is None:
            raise ValueError("model.num_classes: the dataset has no num_classes attribute; set it in the config")
        return ClassificationMeter(int(num_classes), ks=(1, 5) if num_classes > 5 else (1,))


TASKS: dict[str, type[Task]] = {"classification": ClassificationTask}


def register_task(name: str) -> Callable[[type[Task]], type[Task]]:
    """Class decorator that makes a ``Task`` subclass selectable as ``config.task = name``."""

    def decorate(cls: type[Task]) -> type[Task]:
        TASKS[name] = cls
        return cls

    return decorate


def build_task(config: Config) -> Task:
    """The task that ``config.task`` names."""
    if config.task not in TASKS:
        raise ValueError(f"task: expected one of {', '.join(sorted(TASKS))}, got {config.task!r}")
    return TASKS[config.task](config)


def param_groups(model: nn.Module, weight_decay: float, *, decay_norm_and_bias: bool = True) -> list[dict[str, Any]]:
    """Parameter groups for an optimiser; with ``decay_norm_and_bias=False``, parameters with fewer than two
    dims (norm weights and biases) go in a group without weight decay.

    Args:
        model: the network.
        weight_decay: weight decay of the decayed group.
        decay_norm_and_bias: whether norms and biases are decayed too.
    """
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if decay_norm_and_bias:
        return [{"params": [p for _, p in params], "weight_decay": weight_decay}]
    decay = [p for _, p in params if p.ndim > 1]
    no_decay = [p for _, p in params if p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, config: Config) -> torch.optim.Optimizer:
    """SGD (with momentum, optionally Nesterov) or AdamW from ``config.optim``."""
    o = config.optim
    if o.lr <= 0:
        raise ValueError(f"optim.lr: expected a positive learning rate, got {o.lr}")
    if o.weight_decay < 0:
        raise ValueError(f"optim.weight_decay: expected >= 0, got {o.weight_decay}")
    groups = param_groups(model, o.weight_decay, decay_norm_and_bias=o.decay_norm_and_bias)
    if o.name == "sgd":
        if o.nesterov and o.momentum <= 0:
            raise ValueError(f"optim.nesterov: Nesterov momentum needs optim.momentum > 0, got {o.momentum}")
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov)
    if o.name == "adamw":
        if len(o.betas) != 2:
            raise ValueError(f"optim.betas: expected two values, got {o.betas}")
        return torch.optim.AdamW(groups, lr=o.lr, betas=(o.betas[0], o.betas[1]), eps=o.eps)
    raise ValueError(f"optim.name: expected 'sgd' or 'adamw', got {o.name!r}")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _Batch:
    """Unpacks whatever the collate function returns into (inputs, targets, skipped)."""

    @staticmethod
    def unpack(batch: Any) -> tuple[Any, Any, int]:
        if hasattr(batch, "inputs") and hasattr(batch, "targets"):
            return batch.inputs, batch.targets, int(getattr(batch, "skipped", 0))
        if isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
            return batch[0], batch[1], int(batch[2]) if len(batch) == 3 else 0
        raise TypeError(f"collate: expected Batch(inputs, targets, skipped), got {type(batch).__name__}")


class CachedDataset(Dataset):
    """Every sample of ``dataset`` computed once (with ``num_workers`` loader processes) and kept in memory.

    Args:
        dataset: a dataset whose samples do not change between epochs.
        num_workers: processes that compute the samples.
    """

    def __init__(self, dataset: Dataset, num_workers: int = 0) -> None:
        from torch.utils._pytree import tree_map

        self.dataset = dataset
        # Its own generator: the workers' seeds must not be drawn from (and shift) the global one.
        generator = torch.Generator().manual_seed(0)
        loader = DataLoader(
            dataset, batch_size=None, num_workers=num_workers, collate_fn=_identity, generator=generator
        )
        # Tensors from worker processes live in shared memory, one segment each: copy them out, so that
        # thousands of cached samples do not hold thousands of segments (and file descriptors) open.
        self.samples = [tree_map(lambda v: v.clone() if isinstance(v, torch.Tensor) else v, s) for s in loader]

    def __getattr__(self, name: str) -> Any:
        # num_classes, classes ... of the wrapped dataset
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Any:
        return self.samples[index]


class EpochSampler(Sampler[tuple[int, int]]):
    """Wraps a sampler so that it yields ``(epoch, index)``: the epoch travels with each index to the loader's
    workers, which may be started once for the whole run (persistent workers).

    Args:
        sampler: yields dataset indices; its ``set_epoch`` is called too when it has one.
    """

    def __init__(self, sampler: Sampler[int]) -> None:
        self.sampler = sampler
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch`` for the next pass (and reshuffle the wrapped sampler)."""
        self.epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        return ((epoch, int(index)) for index in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)  # type: ignore[arg-type]


class SeededDataset(Dataset):
    """Computes sample ``index`` of epoch ``epoch`` with python's, numpy's and torch's generators seeded from
    ``(seed, epoch, index)``.

    Random augmentation is then a function of the sample and the epoch alone: the same whatever the number of
    loader workers or processes, whether workers persist across epochs, and after resuming. In the main process
    (``num_workers=0``) the global generator states are restored afterwards, so the training loop's own random
    draws (dropout) do not depend on the data.

    Args:
        dataset: the wrapped dataset (its attributes, such as ``num_classes``, are passed through).
        seed: the run's seed.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = int(seed)

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def sample_seed(self, epoch: int, index: int) -> int:
        """The seed of sample ``index`` in ``epoch`` (63 bits)."""
        return (((self.seed * 1_000_003) ^ (epoch * 998_244_353)) * 2_654_435_761 + index) % (2**63 - 1)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        seed = self.sample_seed(epoch, index)
        in_worker = torch.utils.data.get_worker_info() is not None
        saved = None if in_worker else (random.getstate(), np.random.get_state(), torch.get_rng_state())
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        try:
            return self.dataset[index]
        finally:
            if saved is not None:
                random.setstate(saved[0])
                np.random.set_state(saved[1])
                torch.set_rng_state(saved[2])


def _identity(sample: Any) -> Any:
    return sample


def _batch_len(inputs: Any) -> int:
    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0]) if inputs.dim() > 0 else 0
    return len(inputs)


class Trainer:
    """Trains and validates ``task`` as ``config`` describes.

    Args:
        config: the run's configuration.
        task: what to train; default the task ``config.task`` names.
        resume: continue from ``output.dir/last.pt`` (``True``) or from the given checkpoint path.
    """

    def __init__(self, config: Config, task: Task | None = None, *, resume: bool | str | Path = False) -> None:
        self.config = config
        self.task = task if task is not None else build_task(config)
        self.resume = resume
        self.info: DistInfo | None = None
        self.run_dir = Path(config.output.dir)

    # -- set-up -------------------------------------------------------------------------------------------------

    def _init_runtime(self) -> DistInfo:
        """Join the process group (under torchrun) and pick the device and the autocast dtype."""
        self.info = init_distributed(self.config.train.device)
        self.device = self.info.device
        self.amp_dtype = AMP_DTYPES.get(self.config.train.amp)
        return self.info

    def _loader_workers(self) -> int:
        # Cached samples are ready in memory: worker processes would only add copies between processes.
        return 0 if self.config.data.cache else self.config.data.num_workers

    def _eval_loader(self, dataset: Dataset, *, persistent: bool = True) -> DataLoader:
        """A loader over this process's unpadded shard of ``dataset`` (workers kept across passes when
        ``persistent``)."""
        cfg, info = self.config, self.info
        val_batch = cfg.data.val_batch_size or cfg.data.batch_size
        workers = self._loader_workers()
        return DataLoader(
            SeededDataset(dataset, cfg.train.seed),
            batch_size=max(val_batch // info.world_size, 1),
            sampler=EpochSampler(ShardSampler(dataset, num_replicas=info.world_size, rank=info.rank)),
            num_workers=workers,
            persistent_workers=workers > 0 and persistent,
            collate_fn=self.task.collate,
            pin_memory=info.device.type == "cuda",
            # Its own generator: validating must not draw from the global one (training would then depend on
            # how often it validates).
            generator=torch.Generator().manual_seed(cfg.train.seed),
        )

    def _setup(self) -> None:
        cfg = self.config
        t = cfg.train
        if t.epochs < 1:
            raise ValueError(f"train.epochs: expected a positive int, got {t.epochs}")
        info = self._init_runtime()
        if t.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        elif info.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        # Rank 0 seeds with ``seed`` itself, so one process and rank 0 of many build the same initial network.
        _seed_everything(t.seed + info.rank)

        train_set, val_set = self.task.build_datasets()
        if cfg.data.cache:
            if cfg.data.transform != "none":
                raise ValueError(
                    "data.cache: caching keeps each sample as first computed, which would freeze random training "
                    "augmentation; use it with data.transform=none (generated data such as relational)"
                )
            train_set = CachedDataset(train_set, cfg.data.num_workers)
            val_set = CachedDataset(val_set, cfg.data.num_workers) if val_set is not None else None
        self.train_set, self.val_set = train_set, val_set
        world = info.world_size
        if cfg.data.batch_size % world:
            raise ValueError(
                f"data.batch_size: the global batch {cfg.data.batch_size} must be divisible by the {world} processes"
            )
        per_process = cfg.data.batch_size // world
        # The data order depends on (seed, epoch) and each sample's augmentation on (seed, epoch, index): a
        # resumed run sees the same data in the same order, whatever the loader workers do.
        self.train_sampler = EpochSampler(
            DistributedSampler(train_set, num_replicas=world, rank=info.rank, shuffle=True, seed=t.seed)
        )
        workers = self._loader_workers()
        self.train_loader = DataLoader(
            SeededDataset(train_set, t.seed),
            batch_size=per_process,
            sampler=self.train_sampler,
            num_workers=workers,
            collate_fn=self.task.collate,
            pin_memory=info.device.type == "cuda",
            drop_last=True,
            # Workers are started once: forking a new set every epoch, while threads of the last epoch's loader
            # are still exiting, can deadlock the new workers (CPython's fork is not thread-safe).
            persistent_workers=workers > 0,
            generator=torch.Generator().manual_seed(t.seed),
        )
        self.steps_per_epoch = len(self.train_loader)
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"data.batch_size: {cfg.data.batch_size} is larger than the training set "
                f"({len(train_set)} samples); no full batch fits in an epoch"
            )
        self.val_loader = self._eval_loader(val_set) if val_set is not None else None

        model = self.task.build_model(train_set).to(info.device)
        if t.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model_config = self.task.model_config(model)
        self.model = wrap_model(model, info, sync_bn=t.sync_bn)
        self.forward_model: nn.Module = torch.compile(self.model) if t.compile else self.model

        self.optimizer = build_optimizer(unwrap_model(self.model), cfg)
        s = cfg.schedule
        self.scheduler = build_scheduler(
            self.optimizer,
            name=s.name,
            epochs=t.epochs,
            steps_per_epoch=self.steps_per_epoch,
            warmup_epochs=s.warmup_epochs,
            warmup_start_factor=s.warmup_start_factor,
            step_size=s.step_size,
            milestones=s.milestones,
            gamma=s.gamma,
            power=s.power,
            min_lr=s.min_lr,
        )
        self.scaler = torch.amp.GradScaler(info.device.type, enabled=t.amp == "float16")
        self.start_epoch = 0
        self.best_metric = -math.inf
        self.last_metrics: dict[str, Any] = {}
        self.last_good: Path | None = None
        if self.resume:
            self._load_resume_state()
        resuming = self.start_epoch > 0
        self.logger = RunLogger(
            self.run_dir,
            enabled=info.is_main,
            progress=t.progress,
            log_every=t.log_every,
            tensorboard=cfg.output.tensorboard,
            plots=cfg.output.plots,
            resume_epoch=self.start_epoch if resuming else None,
            resume_step=self.start_epoch * self.steps_per_epoch if resuming else None,
        )
        if info.is_main:
            save_config(cfg, self.run_dir / "config.yaml")

    def _load_resume_state(self) -> None:
        path = Path(self.resume) if not isinstance(self.resume, bool) else self.run_dir / "last.pt"
        if not path.is_file():
            raise FileNotFoundError(f"resume: no checkpoint at {str(path)!r} to resume from")
        state = load_checkpoint(path, map_location=self.device)
        unwrap_model(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.start_epoch = int(state["epoch"])
        self.best_metric = float(state.get("best_metric", -math.inf))
        self.last_metrics = {"epoch": self.start_epoch, **state.get("metrics", {}), "best_metric": self.best_metric}
        self.last_good = path
        rng = state.get("rng")
        if isinstance(rng, list) and len(rng) == self.info.world_size:
            restore_rng_state(rng[self.info.rank])
        else:  # a different number of processes: the data order is still exact, random augmentations are not
            _seed_everything(self.config.train.seed + self.info.rank + 7919 * self.start_epoch)

    # -- the loop -----------------------------------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _to_device(self, inputs: torch.Tensor) -> torch.Tensor:
        inputs = inputs.to(self.device, non_blocking=True)
        if self.config.train.channels_last and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return inputs

    def _batches(self, loader: DataLoader) -> Iterator[tuple[Any, Any, int]]:
        for batch in loader:
            yield _Batch.unpack(batch)

    def train_one_epoch(self, epoch: int) -> dict[str, float]:
        """Train one epoch (``epoch`` 0-based) and return its training metrics."""
        cfg, info = self.config, self.info
        self.train_sampler.set_epoch(epoch)
        self.forward_model.train()
        meter = self.task.create_meter(self.train_set)
        loss_sum = torch.zeros((), dtype=torch.float64)
        samples, skipped = 0, 0
        progress = self.logger.epoch_progress(epoch + 1, cfg.train.epochs, self.steps_per_epoch)
        start = time.perf_counter()
        params = [p for p in unwrap_model(self.model).parameters() if p.requires_grad]
        try:
            for i, (inputs, targets, n_skipped) in enumerate(self._batches(self.train_loader)):
                skipped += n_skipped
                n = _batch_len(inputs)
                if n == 0:
                    if info.distributed:
                        raise RuntimeError(
                            "every sample of a training batch was skipped (data.on_error='skip'); with several "
                            "processes a step cannot be left out on one of them: fix or remove the unreadable files"
                        )
                    continue
                global_step = epoch * self.steps_per_epoch + i + 1
                lr = self.optimizer.param_groups[0]["lr"]
                inputs = self._to_device(inputs)
                targets = targets.to(self.device, non_blocking=True)
                with self._autocast():
                    outputs = self.forward_model(inputs)
                    loss = self.task.loss(outputs, targets, train=True)
                # The mean loss over all processes: one collective per step, and the same verdict everywhere.
                loss_value = all_reduce_sum(loss.detach().float().reshape(1).clone()).item() / info.world_size
                if not math.isfinite(loss_value):
                    raise NonFiniteLossError(
                        step=global_step, epoch=epoch + 1, lr=lr, loss=loss_value, checkpoint=self.last_good
                    )
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                if cfg.optim.clip_grad_norm is not None:
                    self.scaler.unscale_(self.optimizer)
                    nn.utils.clip_grad_norm_(params, cfg.optim.clip_grad_norm)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.scheduler.step()

                meter.update(outputs.detach().float(), targets)
                loss_sum += loss_value * n
                samples += n
                elapsed = time.perf_counter() - start
                images_per_s = samples * info.world_size / max(elapsed, 1e-9)
                progress.update(i + 1, loss_value, lr, images_per_s)
                if global_step % cfg.train.log_every == 0:
                    self.logger.log_step(
                        epoch + 1, global_step, {"loss": loss_value, "lr": lr, "images_per_s": images_per_s}
                    )
        finally:
            progress.close()
        elapsed = time.perf_counter() - start
        meter.reduce(self.device)
        totals = all_reduce_sum(torch.tensor([float(loss_sum), samples, skipped], dtype=torch.float64))
        metrics = {f"train_{k}": v for k, v in meter.compute().items() if k != "count"}
        total_samples = float(totals[1])
        return {
            "train_loss": float(totals[0]) / max(total_samples, 1.0),
            **metrics,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_images_per_s": total_samples / max(elapsed, 1e-9),
            "train_skipped": float(totals[2]),
            "epoch_time_s": elapsed,
        }

    @torch.no_grad()
    def validate(self, model: nn.Module | None = None, loader: DataLoader | None = None) -> dict[str, float]:
        """Evaluate on the validation set: every sample once, whatever the number of processes.

        Returns:
            ``val_loss``, the task's metrics prefixed ``val_`` (including ``val_count``) and ``val_skipped``.
        """
        loader = loader if loader is not None else self.val_loader
        if loader is None:
            return {}
        model = model if model is not None else unwrap_model(self.model)
        was_training = model.training
        model.eval()
        meter = self.task.create_meter(loader.dataset)
        loss_sum, samples, skipped = 0.0, 0, 0
        for inputs, targets, n_skipped in self._batches(loader):
            skipped += n_skipped
            n = _batch_len(inputs)
            if n == 0:
                continue
            inputs = self._to_device(inputs)
            targets = targets.to(self.device, non_blocking=True)
            with self._autocast():
                outputs = model(inputs)
                loss = self.task.loss(outputs, targets, train=False)
            meter.update(outputs.float(), targets)
            loss_sum += float(loss) * n
            samples += n
        model.train(was_training)
        meter.reduce(self.device)
        totals = all_reduce_sum(torch.tensor([loss_sum, samples, skipped], dtype=torch.float64))
        out = {"val_loss": float(totals[0]) / max(float(totals[1]), 1.0)}
        out.update({f"val_{k}": v for k, v in meter.compute().items()})
        out["val_skipped"] = float(totals[2])
        return out

    def _checkpoint(self, epoch: int, metrics: dict[str, float]) -> None:
        """Save ``last.pt`` (and ``best.pt`` when the tracked metric improved) after ``epoch`` epochs."""
        cfg = self.config
        rng_states = all_gather_object(capture_rng_state())
        # The best checkpoint is chosen on validation metrics; without a validation set, on training metrics.
        # An epoch that skipped validation (train.eval_every) cannot improve it.
        prefix = "val_" if self.val_loader is not None else "train_"
        improved = False
        if any(k.startswith(prefix) for k in metrics):
            key = prefix + cfg.output.best_metric
            if key not in metrics:
                names = sorted(k[len(prefix) :] for k in metrics if k.startswith(prefix))
                raise ValueError(
                    f"output.best_metric: {cfg.output.best_metric!r} is not a metric of this task; "
                    f"available: {', '.join(names)}"
                )
            value = metrics[key]
            improved = math.isfinite(value) and value > self.best_metric
        if improved:
            self.best_metric = value
        if not self.info.is_main:
            return
        state = {
            "model": unwrap_model(self.model).state_dict(),
            "model_config": self.model_config,
            "config": config_to_dict(cfg),
            "epoch": epoch,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_states,
            "best_metric": self.best_metric,
            "metrics": metrics,
        }
        self.last_good = save_checkpoint(state, self.run_dir / "last.pt")
        if improved:
            save_checkpoint(state, self.run_dir / "best.pt")

    def fit(self) -> dict[str, Any]:
        """Train for ``train.epochs`` epochs (from the resumed epoch) and return the last epoch's metrics."""
        self._setup()
        cfg = self.config
        epochs = cfg.train.epochs
        try:
            if self.start_epoch >= epochs:
                self.logger.info(f"nothing to do: the checkpoint has already trained {self.start_epoch} epochs")
                return dict(self.last_metrics)
            if self.start_epoch:
                self.logger.info(f"resuming after epoch {self.start_epoch} from {self.last_good}")
            for epoch in range(self.start_epoch, epochs):
                metrics: dict[str, Any] = self.train_one_epoch(epoch)
                # Validation shards and the checkpoint must all see the same BatchNorm statistics.
                sync_buffers(self.model)
                if (epoch + 1) % cfg.train.eval_every == 0 or epoch + 1 == epochs:
                    metrics.update(self.validate())
                global_step = (epoch + 1) * self.steps_per_epoch
                self._checkpoint(epoch + 1, metrics)
                metrics["best_metric"] = self.best_metric
                self.logger.log_epoch(epoch + 1, global_step, metrics)
                self.logger.info(_epoch_summary(epoch + 1, epochs, metrics))
                self.last_metrics = {"epoch": epoch + 1, **metrics}
            if cfg.output.report and self.info.is_main and self.model_config is not None:
                self._write_report()
        finally:
            self.logger.close()
        return dict(self.last_metrics)

    def _write_report(self) -> None:
        """``report.md`` of the finished run; a failure to draw it is reported, never fatal to the run."""
        from glore.tools.report import write_run_report  # tools build on the engine, not the other way round

        try:
            path = write_run_report(self.run_dir)
        except Exception as error:  # noqa: BLE001 - the trained checkpoint matters more than its report
            self.logger.info(f"report.md not written: {type(error).__name__}: {error}")
        else:
            self.logger.info(f"report: {path}")


def _epoch_summary(epoch: int, epochs: int, m: dict[str, Any]) -> str:
    parts = [f"epoch {epoch}/{epochs}", f"train loss {m['train_loss']:.4f}"]
    if "train_top1" in m:
        parts.append(f"top1 {m['train_top1']:.4f}")
    if "val_loss" in m:
        parts.append(f"| val loss {m['val_loss']:.4f}")
        for key in ("val_top1", "val_top5", "val_mean_class_acc"):
            if key in m:
                parts.append(f"{key[4:]} {m[key]:.4f}")
        parts.append(f"({int(m.get('val_count', 0))} samples)")
    parts.append(f"| {m['train_images_per_s']:.1f} img/s, {m['epoch_time_s']:.1f}s")
    skipped = int(m.get("train_skipped", 0) + m.get("val_skipped", 0))
    if skipped:
        parts.append(f"| skipped {int(m.get('train_skipped', 0))} train, {int(m.get('val_skipped', 0))} val samples")
    return " ".join(parts)


def train(config: Config, task: Task | None = None, *, resume: bool | str | Path = False) -> dict[str, Any]:
    """Train as ``config`` describes; see ``Trainer``.

    Args:
        config: the run's configuration.
        task: what to train; default the task ``config.task`` names.
        resume: continue from ``output.dir/last.pt`` (``True``) or from a given checkpoint.

    Returns:
        The last epoch's metrics (``train_loss``, ``val_top1``, ``val_count`` ...).

    Raises:
        NonFiniteLossError: the loss became NaN or infinite (the last good checkpoint is kept).
    """
    return Trainer(config, task, resume=resume).fit()


def evaluate(config: Config, checkpoint: str | Path, task: Task | None = None) -> dict[str, float]:
    """Evaluate a checkpoint on the validation split that ``config.data`` describes.

    The network is rebuilt from the checkpoint's ``model_config``; every validation sample counts once, also
    under torchrun.

    Args:
        config: the configuration (its data section chooses the dataset and split).
        checkpoint: a checkpoint written by ``train``.
        task: default the task ``config.task`` names.

    Returns:
        ``val_loss``, ``val_top1``, ``val_top5``, ``val_mean_class_acc``, ``val_count``, ``val_skipped``.
    """
    if not config.data.val_split:
        raise ValueError("data.val_split: evaluation needs a split to evaluate, got null")
    trainer = Trainer(config, task)
    info = trainer._init_runtime()
    state = load_checkpoint(checkpoint, map_location=info.device)
    if state.get("model_config") is None:
        raise ValueError(f"checkpoint {str(checkpoint)!r}: no model_config to rebuild the network from")
    model = trainer.task.rebuild_model(dict(state["model_config"]))
    model.load_state_dict(state["model"])
    model = model.to(info.device)
    if config.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    val_set = trainer.task.build_dataset(config.data.val_split, train=False)
    return trainer.validate(model, trainer._eval_loader(val_set, persistent=False))
