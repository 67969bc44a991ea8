"""The training loop, the same for every task.

A ``Task`` (``glore.engine.task``) supplies what differs between problems: datasets, network, ``train_step``,
``eval_step`` and metrics. The ``Trainer`` does the rest: samplers and loaders, the optimiser and its
per-iteration schedule, mixed precision, channels-last, ``torch.compile``, DistributedDataParallel, checkpoints that
resume exactly (also in the middle of an epoch), an average of the weights (``train.ema``, validated and saved as the
run's network), a stop on a non-finite loss or gradient, progress, logs and curves. What a run is built from is in
``glore.engine.setup``, how it continues from a checkpoint in ``glore.engine.resume``.

A run's budget is ``train.epochs`` or ``train.iterations``. With epochs, the run validates every ``train.eval_every``
epochs and checkpoints after every epoch; with iterations, it validates and checkpoints every
``train.eval_every_iters`` iterations. Both validate and checkpoint at the end.

Faults: ``last.pt`` is also written every ``train.checkpoint_every_iters`` iterations and every
``train.checkpoint_every_minutes`` minutes, with the position inside the epoch (the partial sums of the epoch's
metrics included), the one before it kept as ``previous.pt``. SIGTERM or SIGUSR1 (a cluster's preemption notice)
lets every process finish its step, then writes such a checkpoint and raises ``TrainingStopped``. A checkpoint
point is one transaction: ``last.pt`` records the ``metrics.csv`` rows and the best checkpoint's step, so a run
killed between writing ``last.pt``, ``best.pt`` and the table is repaired by ``--resume``. One process at a time
trains in a run folder (``glore._io.lock_run_folder``).
"""

from __future__ import annotations

import contextlib
import functools
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_map
from torch.utils.data import DataLoader

from .._io import lock_run_folder, remove_stale_temporaries
from ..layers.helpers import channels_last_format, to_channels_last
from .checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from .config import Config, check_config, config_to_dict, save_config
from .distributed import DistInfo, all_gather_object, all_reduce_sum, init_distributed, sync_buffers, unwrap_model
from .ema import WeightEMA
from .logger import ProgressLine, RunLogger
from .optim import effective_lr
from .resume import (
    RESUME_FREE_KEYS,
    RESUME_LONGER_KEYS,
    check_config_changes,
    load_weights,
    read_resume_checkpoint,
    repair_best,
)
from .setup import (
    AMP_DTYPES,
    STOP_SIGNALS,
    build_loaders,
    build_network,
    build_optimisation,
    configure_runtime,
    eval_loader,
    seed_everything,
)
from .task import Task, build_task

__all__ = [
    "AMP_DTYPES",
    "NonFiniteLossError",
    "RESUME_FREE_KEYS",
    "RESUME_LONGER_KEYS",
    "STOP_SIGNALS",
    "Trainer",
    "TrainingStopped",
    "evaluate",
    "load_weights",
    "train",
]


class TrainingStopped(Exception):  # noqa: N818 - a stop on request, not an error
    """Training stopped on SIGTERM or SIGUSR1 after every process finished its step and a whole checkpoint of
    that step was written; ``--resume`` continues exactly there.

    Attributes:
        signum: the signal received.
        step: the iterations done (the checkpoint's step).
        checkpoint: the checkpoint written (``output.dir/last.pt``).
        exit_code: ``128 + signum`` (143 for SIGTERM, 138 for SIGUSR1), as a shell reports a process the
            signal ended.
    """

    def __init__(self, *, signum: int, step: int, total: int, checkpoint: Path | None) -> None:
        self.signum, self.step, self.checkpoint = int(signum), step, checkpoint
        self.exit_code = 128 + self.signum
        name = signal.Signals(self.signum).name
        super().__init__(
            f"stopped by {name} after iteration {step} of {total}; the checkpoint {str(checkpoint)!r} holds that step"
        )


class NonFiniteLossError(RuntimeError):
    """Training diverged: the loss, the gradients or the validation loss became NaN or infinite. The message
    names the step, the learning rate and the last good checkpoint, which is kept.

    Attributes:
        step: the global iteration (1-based) at which it was found.
        epoch: the 1-based epoch.
        lr: the learning rate of that iteration.
        loss: the offending value.
        checkpoint: the last good checkpoint, or ``None`` when none was written yet.
        what: ``"loss"``, ``"gradient norm"`` or ``"validation loss"``.
    """

    def __init__(
        self, *, step: int, epoch: int, lr: float, loss: float, checkpoint: Path | None, what: str = "loss"
    ) -> None:
        self.step, self.epoch, self.lr, self.loss, self.checkpoint, self.what = step, epoch, lr, loss, checkpoint, what
        kept = (
            f"the last good checkpoint is kept: {checkpoint}"
            if checkpoint is not None
            else "no checkpoint had been written yet"
        )
        then = "then resume with --resume" if checkpoint is not None else "then start the run again"
        super().__init__(
            f"training stopped: the {what} is {loss} at step {step} (epoch {epoch}) with learning rate {lr:.6g}; "
            f"{kept}. Lower optim.lr, add warm-up (schedule.warmup_epochs) or gradient clipping "
            f"(optim.clip_grad_norm), {then}."
        )


def _meter_state(meter: Any) -> Any:
    """A training meter's running state: its ``state_dict()``, or else its tensor attributes."""
    if meter is None:
        return None
    if hasattr(meter, "state_dict"):
        return meter.state_dict()
    return {k: v.detach().cpu().clone() for k, v in vars(meter).items() if isinstance(v, torch.Tensor)}


def _restore_meter(meter: Any, state: Any) -> None:
    if meter is None or state is None:
        return
    if hasattr(meter, "load_state_dict"):
        meter.load_state_dict(state)
        return
    for key, value in state.items():
        current = getattr(meter, key)
        setattr(meter, key, value.to(current.device))


def _fmt(value: float) -> str:
    return f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else str(value)


class EpochBatches:
    """What a task's ``before_checkpoint`` gets: called, an iterator over one epoch's training batches (this
    process's shard); ``len()`` says how many batches that is, so a task can plan on fewer than it asked for."""

    def __init__(self, batches: Callable[[], Iterator[Any]], count: int) -> None:
        self._batches, self._count = batches, count

    def __call__(self) -> Iterator[Any]:
        return self._batches()

    def __len__(self) -> int:
        return self._count


class Trainer:
    """Trains and validates ``task`` as ``config`` describes.

    Args:
        config: the run's configuration.
        task: what to train; default the task ``config.task`` names.
        resume: continue from ``output.dir/last.pt`` (``True``) or from the given checkpoint path.
    """

    def __init__(
        self,
        config: Config,
        task: Task | None = None,
        *,
        resume: bool | str | Path = False,
        allow_changes: bool = False,
    ) -> None:
        self.config = config
        self.task = task if task is not None else build_task(config)
        self.resume = resume
        self.allow_changes = allow_changes
        self.info: DistInfo | None = None
        self.run_dir = Path(config.output.dir)
        self.best_name = config.output.best_metric or self.task.primary_metric
        self.best_direction = self.task.metric_direction(self.best_name)

    # -- set-up -------------------------------------------------------------------------------------------------

    def _init_runtime(self) -> DistInfo:
        """Join the process group (under torchrun) and pick the device and the autocast dtype."""
        if self.info is not None:
            return self.info
        self.info = init_distributed(self.config.train.device)
        self.device = self.info.device
        self.amp_dtype = AMP_DTYPES.get(self.config.train.amp)
        return self.info

    def _setup(self) -> None:
        """Build the run (``glore.engine.setup``): the runtime, the data, the network, its optimisation and the
        average of its weights; then continue from the checkpoint when resuming, and open the logs."""
        cfg, info = self.config, self._init_runtime()
        configure_runtime(cfg, info)
        d = build_loaders(cfg, self.task, info)
        self.train_set, self.val_set, self.train_sampler = d.train_set, d.val_set, d.train_sampler
        self.train_loader, self.val_loader, self.per_process_batch = d.train_loader, d.val_loader, d.per_process_batch
        self.steps_per_epoch, self.total_steps, self.total_epochs = d.steps_per_epoch, d.total_steps, d.total_epochs
        self.model, self.forward_model, self.model_config = build_network(cfg, self.task, self.train_set, info)
        o = build_optimisation(cfg, self.model, d, info)
        self.optimizer, self.scheduler, self.scaler = o.optimizer, o.scheduler, o.scaler
        self.ema = WeightEMA.from_config(unwrap_model(self.model), cfg.train.ema)

        self.start_step = 0
        self.best_metric = -math.inf if self.best_direction == "max" else math.inf
        self.best_step: int | None = None
        self.last_metrics: dict[str, Any] = {}
        self.last_good: Path | None = None
        self.history: list[dict[str, Any]] | None = []  # the metrics.csv rows, recorded in every checkpoint
        self._resume_partial: dict[str, Any] | None = None
        self._last_is_bad = False  # last.pt could not be read: the next checkpoint must not keep it as previous.pt
        self._notes: list[str] = []
        o = self.config.optim
        if o.lr_base_batch_size is not None and o.lr_base_batch_size != self.config.data.batch_size:
            self._notes.append(
                f"optim.lr {o.lr:g} is set for a batch of {o.lr_base_batch_size} (optim.lr_base_batch_size): "
                f"{effective_lr(self.config):g} at data.batch_size {self.config.data.batch_size}"
            )
        if self.resume:
            self._load_resume_state()
        self._open_logger()

    def _open_logger(self) -> None:
        """The run's logs (rank 0 writes), continued from the checkpoint's table when resuming."""
        cfg, info = self.config, self.info
        resuming = self.start_step > 0
        self.logger = RunLogger(
            self.run_dir,
            enabled=info.is_main,
            progress=cfg.train.progress,
            log_every=cfg.train.log_every,
            tensorboard=cfg.output.tensorboard,
            plots=cfg.output.plots,
            resume_epoch=self._epoch_value(self.start_step) if resuming else None,
            resume_step=self.start_step if resuming else None,
            history=self.history if resuming else None,
            curve_metric=self.task.primary_metric,
        )
        if self.history is None:  # a checkpoint of an older glore: the table as the loop's own rows from here
            self.history = [dict(r) for r in _read_rows(self.run_dir / "metrics.csv")] if info.is_main else []
        for note in self._notes:
            self.logger.info(note)
        if info.is_main:
            save_config(cfg, self.run_dir / "config.yaml")

    def _epoch_value(self, step: int) -> float | int:
        """Epochs done after ``step`` iterations: an int at epoch boundaries, else a fraction."""
        whole, part = divmod(step, self.steps_per_epoch)
        return whole if part == 0 else step / self.steps_per_epoch

    def _load_resume_state(self) -> None:
        """Continue from the checkpoint (``glore.engine.resume``): the weights and their average, the optimiser,
        schedule and scaler, the step, the best metric and the table, every process's generators, and inside an
        epoch its running sums."""
        path, state, fallback = read_resume_checkpoint(self.resume, self.run_dir, self.device)
        if fallback is not None:
            self._last_is_bad = True
            self._notes.append(fallback)
        saved_optim = ((state.get("config") or {}).get("optim") or {}).get("name")
        if saved_optim is not None and saved_optim != self.config.optim.name:
            raise ValueError(
                f"optim.name: the checkpoint {str(path)!r} was trained with {saved_optim!r}, this config says "
                f"{self.config.optim.name!r}; resume with the same optimiser (or start a new run from its weights)"
            )
        self._load_weights(state, path)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except ValueError as error:
            raise ValueError(f"resume: the optimiser state of {str(path)!r} does not fit this config: {error}") from (
                None
            )
        saved = state.get("config") or {}
        self._notes += check_config_changes(saved, self.config, path, allow_changes=self.allow_changes)
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.start_step = int(state.get("step", int(state["epoch"]) * self.steps_per_epoch))
        if state.get("best_metric") is not None:
            self.best_metric = float(state["best_metric"])
        self.best_step = state.get("best_step")
        self.history = [dict(r) for r in state["history"]] if "history" in state else None
        self.last_metrics = {
            "epoch": state["epoch"],
            "step": self.start_step,
            **state.get("metrics", {}),
            "best_metric": self.best_metric,
        }
        self.last_good = path
        rng = state.get("rng")
        if isinstance(rng, list) and len(rng) == self.info.world_size:
            restore_rng_state(rng[self.info.rank])
        else:  # a different number of processes: the data order is still exact, random augmentations are not
            seed_everything(self.config.train.seed + self.info.rank + 7919 * self.start_step)
        partial = state.get("partial")
        if isinstance(partial, list) and len(partial) == self.info.world_size:
            # A checkpoint inside an epoch: this process's running sums and, under torchrun, its own BatchNorm
            # statistics (which differ between processes until the epoch's end averages them).
            own = partial[self.info.rank]
            if own is not None:
                _copy_buffers(unwrap_model(self.model), own.get("buffers"))
                if self.ema is not None:
                    _copy_buffers(self.ema.module, own.get("ema_buffers"))
                self._resume_partial = own
        elif partial:
            self._notes.append(
                f"resume: the checkpoint was written inside an epoch by {len(partial)} processes, not "
                f"{self.info.world_size}: this epoch's training metrics cover the iterations from here only"
            )
        if self.info.is_main and isinstance(self.resume, bool):
            note = repair_best(self.run_dir, path, state, step=self.start_step, best_step=self.best_step)
            if note is not None:
                self._notes.append(note)

    def _load_weights(self, state: dict[str, Any], path: Path) -> None:
        """The trained network's weights and, with ``train.ema``, their average. With an average, a checkpoint's
        ``model`` is the average (the network that was evaluated) and ``trained_model`` the trained network."""
        trained = state.get("trained_model", state["model"])
        load_weights(unwrap_model(self.model), trained, path)
        if self.ema is None:
            return
        if "trained_model" in state and state.get("ema") is not None:
            self.ema.load_state_dict({"model": state["model"], "updates": state["ema"]["updates"]})
        else:  # train.ema switched on at resume (--allow-changes): the first update copies the resumed weights
            self._notes.append(f"resume: {str(path)!r} holds no average of the weights; train.ema starts here")

    # -- the loop -----------------------------------------------------------------------------------------------

    def fit(self) -> dict[str, Any]:
        """Train to the budget (from the resumed step) and return the metrics of the last checkpoint.

        Rank 0 holds the run folder's lock throughout, and removes temporary files a killed run left there.

        Raises:
            NonFiniteLossError: the loss, the gradients or the validation loss became non-finite; the last good
                checkpoint is kept.
            TrainingStopped: SIGTERM or SIGUSR1 arrived; a whole checkpoint of the step reached was written.
            glore._io.RunFolderLockedError: another process trains in ``output.dir``.
            glore._io.WriteError: a file could not be written (no space, the file-size limit, permission).
        """
        check_config(self.config)  # again: a config may be edited after it loaded
        info = self._init_runtime()
        with contextlib.ExitStack() as stack:
            if info.is_main:
                stack.enter_context(lock_run_folder(self.run_dir))
                removed = remove_stale_temporaries(self.run_dir)
            stack.enter_context(self._signal_handlers())
            self._setup()
            if info.is_main and removed:
                self.logger.info(
                    f"removed {len(removed)} temporary file(s) a stopped run left in {str(self.run_dir)!r}: "
                    + ", ".join(p.name for p in removed)
                )
            return self._fit()

    def _fit(self) -> dict[str, Any]:
        """The loop: train to the next checkpoint point (an epoch's end or a validation point), let the task refine
        the network, average the BatchNorm statistics over processes, validate, then record the row and save it as
        one transaction; stop there when a process received a stop signal."""
        spe, total = self.steps_per_epoch, self.total_steps
        self.last_full_metrics: dict[str, Any] = {
            k: v for k, v in self.last_metrics.items() if k not in ("epoch", "step", "best_metric")
        }
        try:
            if self.start_step >= total:
                self.logger.info(f"nothing to do: the checkpoint has already trained {self.start_step} iterations")
                return dict(self.last_metrics)
            if self.start_step:
                self.logger.info(f"resuming after iteration {self.start_step} from {self.last_good}")
            step = self.start_step
            while step < total:
                epoch_end = (step // spe + 1) * spe
                stop = min(epoch_end, total)
                for candidate in range(step + 1, stop + 1):  # the next evaluation point within this epoch
                    if self._is_checkpoint_point(candidate):
                        stop = candidate
                        break
                metrics, step = self._train_until(step, stop)
                if not self._is_checkpoint_point(step):
                    continue
                # A task may refine the network before it is checkpointed and validated (precise BatchNorm).
                epoch_batches = EpochBatches(functools.partial(self._batches, step // spe, 0), spe)
                self.task.before_checkpoint(
                    unwrap_model(self.model), epoch_batches, self._device_batch, step=self._extra_step
                )
                # Validation shards and the checkpoint must all see the same BatchNorm statistics.
                sync_buffers(self.model)
                if self.ema is not None:
                    sync_buffers(self.ema.module)
                if self._is_eval_point(step):
                    metrics.update(self._validate_networks())
                    val_loss = metrics.get("val_loss")
                    if val_loss is not None and not math.isfinite(val_loss):
                        raise NonFiniteLossError(
                            step=step,
                            epoch=math.ceil(step / spe),
                            lr=self.optimizer.param_groups[0]["lr"],
                            loss=val_loss,
                            checkpoint=self.last_good,
                            what="validation loss",
                        )
                # One transaction: last.pt records this row of metrics.csv and the best step, so whatever of
                # best.pt, the table and the curves a kill leaves unwritten, --resume writes from it.
                improved = self._update_best(metrics, step)
                epoch_value = self._epoch_value(step)
                row = {"epoch": epoch_value, "step": step, **metrics, "best_metric": self.best_metric}
                self.history.append(row)
                self._save(step, metrics, improved=improved)
                self.last_full_metrics = dict(metrics)
                metrics["best_metric"] = self.best_metric
                self.logger.log_epoch(epoch_value, step, {"step": step, **metrics})
                self.logger.info(self._summary(step, metrics))
                self.last_metrics = {"epoch": epoch_value, "step": step, **metrics}
                if step < total and self._agree_stop():
                    raise self._stopped(step)
        finally:
            self.logger.close()
        return dict(self.last_metrics)

    def _agree_stop(self) -> bool:
        """Whether any process received a stop signal (a collective: every process calls it at the same point)."""
        if not self._stop_agreed:
            flag = torch.tensor([float(self._stop_signum is not None)], device=self.device)
            self._stop_agreed = float(all_reduce_sum(flag)[0]) > 0
        return self._stop_agreed

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _to_device(self, tree: Any) -> Any:
        """Move every tensor of ``tree`` to the device; 4-D and 5-D inputs become channels-last when configured."""
        channels_last = self.config.train.channels_last

        def move(value: Any) -> Any:
            if not isinstance(value, torch.Tensor):
                return value
            value = value.to(self.device, non_blocking=True)
            fmt = channels_last_format(value) if channels_last and value.is_floating_point() else None
            if fmt is not None:
                value = value.contiguous(memory_format=fmt)
            return value

        return tree_map(move, tree)

    def _device_batch(self, batch: Any) -> Any:
        return batch._replace(inputs=self._to_device(batch.inputs), targets=self._to_device(batch.targets))

    def _is_eval_point(self, step: int) -> bool:
        t = self.config.train
        if step == self.total_steps:
            return True
        if t.iterations is not None:
            return t.eval_every_iters is not None and step % t.eval_every_iters == 0
        return step % self.steps_per_epoch == 0 and (step // self.steps_per_epoch) % t.eval_every == 0

    def _is_checkpoint_point(self, step: int) -> bool:
        if self.config.train.iterations is None and step % self.steps_per_epoch == 0:
            return True
        return self._is_eval_point(step)

    def _batches(self, epoch: int, offset: int) -> Iterator[Any]:
        """The training batches of ``epoch`` (0-based) after its first ``offset``."""
        self.train_sampler.set_epoch(epoch, skip=offset * self.per_process_batch)
        yield from self.train_loader

    def _step(self, batch: Any, params: list[nn.Parameter], step: int, epoch: int) -> tuple[float, Any]:
        """One optimiser step; returns the loss (mean over processes) and the task's outputs."""
        cfg, info = self.config, self.info
        lr = self.optimizer.param_groups[0]["lr"]
        with self._autocast():
            loss, outputs = self.task.train_step(self.forward_model, batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        grads = [p.grad for p in params if p.grad is not None]
        if cfg.optim.clip_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            grad_norm = nn.utils.clip_grad_norm_(params, cfg.optim.clip_grad_norm)
        elif grads and not self.scaler.is_enabled():
            grad_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        else:  # the float16 grad scaler skips steps with non-finite gradients itself
            grad_norm = torch.zeros((), device=loss.device)
        # One collective and one host synchronisation per step: the same verdict on every process, on the loss and
        # on whether to stop (a signal reached any process) or checkpoint (rank 0's clock says it is time).
        flags = torch.tensor([float(self._stop_signum is not None), float(self._checkpoint_time_due())])
        packed = torch.cat(
            [
                torch.stack([loss.detach().float().reshape(()), grad_norm.detach().float().to(loss.device)]),
                flags.to(loss.device),
            ]
        )
        loss_value, norm_value, stop, due = (all_reduce_sum(packed) / info.world_size).tolist()
        self._stop_agreed = self._stop_agreed or stop > 0
        self._save_due = due > 0
        checked = [("loss", loss_value)]
        if not self.scaler.is_enabled():  # the float16 scaler skips a step with non-finite gradients and rescales
            checked.append(("gradient norm", norm_value))
        for what, value in checked:
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    step=step, epoch=epoch + 1, lr=lr, loss=value, checkpoint=self.last_good, what=what
                )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.step(unwrap_model(self.model), step)
        return loss_value, outputs

    def _extra_step(self, batch: Any, params: list[nn.Parameter] | None = None) -> float:
        """One more training step on a host ``batch`` outside the schedule, for a task's ``before_checkpoint``: the
        loop's forward (autocast, the distributed model) and backward, then the optimiser at the current learning
        rate, which it does not advance, on ``params`` alone when given (the others' gradients are dropped, so the
        optimiser leaves them, their momentum and weight decay untouched). Returns the loss (this process's)."""
        batch = self._device_batch(batch)
        self.forward_model.train()
        with self._autocast():
            loss, _ = self.task.train_step(self.forward_model, batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if params is not None:
            kept = {id(p) for p in params}
            for group in self.optimizer.param_groups:
                for p in group["params"]:
                    if id(p) not in kept:
                        p.grad = None
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach())

    def _train_until(self, step: int, stop: int) -> tuple[dict[str, float], int]:
        """Train from global step ``step`` up to ``stop`` (an epoch end or an evaluation point)."""
        cfg, info = self.config, self.info
        spe = self.steps_per_epoch
        epoch, offset = divmod(step, spe)
        self.forward_model.train()
        meter = self.task.create_meter(self.train_set, train=True) if self.task.train_metrics else None
        loss_sum = torch.zeros((), dtype=torch.float64)
        samples, skipped, timed_samples = 0, 0, 0
        elapsed_before, timed_before = 0.0, 0.0
        resumed, self._resume_partial = self._resume_partial, None
        if resumed is not None and step == self.start_step:  # the sums of this epoch's iterations before the stop
            loss_sum = resumed["loss_sum"].clone()
            samples, skipped, timed_samples = resumed["samples"], resumed["skipped"], resumed["timed_samples"]
            elapsed_before, timed_before = resumed["elapsed"], resumed["timed"]
            _restore_meter(meter, resumed["meter"])
        progress = self.logger.epoch_progress(epoch + 1, self.total_epochs, min(spe, self.total_steps - epoch * spe))
        progress.skip(offset)
        start = time.perf_counter()
        timer_start: float | None = None
        params = [p for p in unwrap_model(self.model).parameters() if p.requires_grad]
        try:
            for batch in self._batches(epoch, offset):
                skipped += batch.skipped
                n = self.task.batch_size(batch)
                if n == 0:
                    if info.distributed:
                        raise RuntimeError(
                            "every sample of a training batch was skipped (data.on_error='skip'); with several "
                            "processes a step cannot be left out on one of them: fix or remove the unreadable files"
                        )
                    continue
                step += 1
                lr = self.optimizer.param_groups[0]["lr"]
                batch = self._device_batch(batch)
                loss_value, outputs = self._step(batch, params, step, epoch)
                if meter is not None:
                    meter.update(tree_map(_detach_float, outputs), batch.targets, batch.meta)
                loss_sum += loss_value * n
                samples += n
                # Throughput leaves out the first batch: worker start-up and data generation, not the model.
                if timer_start is None:
                    timer_start = time.perf_counter()
                else:
                    timed_samples += n
                elapsed = time.perf_counter() - timer_start
                images_per_s = timed_samples * info.world_size / elapsed if timed_samples else float("nan")
                progress.update(step - epoch * spe, loss_value, lr, images_per_s)
                if step % cfg.train.log_every == 0:
                    self.logger.log_step(epoch + 1, step, {"loss": loss_value, "lr": lr, "images_per_s": images_per_s})
                every = cfg.train.checkpoint_every_iters
                full_point = step >= stop and self._is_checkpoint_point(step)
                if not full_point and (self._stop_agreed or self._save_due or (every and step % every == 0)):
                    # A checkpoint inside the epoch (or the validation interval), with the running sums.
                    timed = time.perf_counter() - timer_start if timer_start is not None else 0.0
                    partial = None
                    if step < stop:
                        partial = {
                            "loss_sum": loss_sum.clone(),
                            "samples": samples,
                            "skipped": skipped,
                            "timed_samples": timed_samples,
                            "elapsed": elapsed_before + time.perf_counter() - start,
                            "timed": timed_before + timed,
                            "meter": _meter_state(meter),
                        }
                    self._save(step, self.last_full_metrics, improved=False, inside=True, partial=partial)
                    if self._stop_agreed:
                        raise self._stopped(step)
                if step >= stop:
                    break
        finally:
            progress.close()
        elapsed = elapsed_before + time.perf_counter() - start
        timed = timed_before + (time.perf_counter() - timer_start if timer_start is not None else 0.0)
        totals = all_reduce_sum(torch.tensor([float(loss_sum), samples, skipped, timed_samples], dtype=torch.float64))
        metrics: dict[str, float] = {"train_loss": float(totals[0]) / max(float(totals[1]), 1.0)}
        if meter is not None:
            meter.reduce(self.device)
            metrics.update({f"train_{k}": v for k, v in meter.compute().items() if k != "count"})
        metrics.update(
            {
                "lr": self.optimizer.param_groups[0]["lr"],
                "train_images_per_s": float(totals[3]) / timed if timed > 0 and totals[3] > 0 else float("nan"),
                "train_skipped": float(totals[2]),
                "epoch_time_s": elapsed,
            }
        )
        return metrics, step

    @torch.no_grad()
    def validate(self, model: nn.Module | None = None, loader: DataLoader | None = None) -> dict[str, float]:
        """Evaluate on the validation set through the task's ``eval_step``: every sample once, whatever the number
        of processes.

        Returns:
            ``val_loss`` (when the task can score its predictions), the task's metrics prefixed ``val_``
            (including ``val_count``) and ``val_skipped``.
        """
        loader = loader if loader is not None else self.val_loader
        if loader is None:
            return {}
        model = model if model is not None else unwrap_model(self.model)
        was_training = model.training
        model.eval()
        meter = self.task.create_meter(loader.dataset)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        samples, skipped, scored = 0, 0, True
        progress = self._eval_progress(len(loader))
        try:
            for i, batch in enumerate(loader):
                skipped += batch.skipped
                n = self.task.batch_size(batch)
                if n == 0:
                    progress.update(i + 1)
                    continue
                batch = self._device_batch(batch)
                with self._autocast():
                    preds = self.task.eval_step(model, batch)
                    loss = self.task.eval_loss(preds, batch)
                preds = tree_map(_detach_float, preds)
                meter.update(preds, batch.targets, batch.meta)
                if loss is None:
                    scored = False
                else:
                    loss_sum += loss.detach().double() * n
                samples += n
                progress.update(i + 1)
        finally:
            progress.close()
        model.train(was_training)
        meter.reduce(self.device)
        totals = all_reduce_sum(
            torch.stack([loss_sum.cpu(), torch.tensor(float(samples)), torch.tensor(float(skipped))])
        )
        out: dict[str, float] = {}
        if scored:
            out["val_loss"] = float(totals[0]) / max(float(totals[1]), 1.0)
        out.update({f"val_{k}": v for k, v in meter.compute().items()})
        out["val_skipped"] = float(totals[2])
        return out

    def _validate_networks(self) -> dict[str, float]:
        """Validation at a checkpoint point: with ``train.ema``, ``val_*`` are the average's metrics and, with
        ``train.ema.validate_raw``, ``raw_val_*`` the trained network's."""
        if self.ema is None:
            return self.validate()
        metrics = self.validate(self.ema.module)
        if self.config.train.ema.validate_raw:
            metrics.update({f"raw_{k}": v for k, v in self.validate().items()})
        return metrics

    def _eval_progress(self, total: int) -> ProgressLine:
        """The progress display of a validation pass: the run's, or for ``evaluate`` one on rank 0 alone (a bar on
        a terminal, one line at the end otherwise)."""
        if hasattr(self, "logger"):
            return self.logger.eval_progress(total)
        mode = self.config.train.progress
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "plain"
        if self.info is None or not self.info.is_main:
            mode = "off"
        return ProgressLine(0, 0, total, mode=mode, every=self.config.train.log_every, label="evaluation")

    def _update_best(self, metrics: dict[str, float], step: int) -> bool:
        """Whether the checkpoint of ``step`` improves the tracked metric (and record it if so)."""
        # The best checkpoint is chosen on validation metrics; without a validation set, on training metrics.
        # A checkpoint that skipped validation (train.eval_every) cannot improve it.
        prefix = "val_" if self.val_loader is not None else "train_"
        if not any(k.startswith(prefix) for k in metrics):
            return False
        key = prefix + self.best_name
        if key not in metrics:
            names = sorted(k[len(prefix) :] for k in metrics if k.startswith(prefix))
            raise ValueError(
                f"output.best_metric: {self.best_name!r} is not a metric of this run; available: {', '.join(names)}"
            )
        value = metrics[key]
        better = value > self.best_metric if self.best_direction == "max" else value < self.best_metric
        if math.isfinite(value) and better:
            self.best_metric, self.best_step = value, step
            return True
        return False

    def _save(
        self,
        step: int,
        metrics: dict[str, float],
        *,
        improved: bool,
        inside: bool = False,
        partial: dict[str, Any] | None = None,
    ) -> None:
        """Save ``last.pt`` after ``step`` iterations (the one before kept as ``previous.pt``), then ``best.pt``
        when it improved. Collective: every process calls it at the same step.

        Args:
            step: the iterations done.
            metrics: the metrics of the checkpoint point (of the last one, for a checkpoint inside an epoch).
            improved: also write ``best.pt``.
            inside: a checkpoint between checkpoint points (periodic, or on a stop signal).
            partial: with ``inside``, this process's running sums of the epoch; ``None`` at an epoch's end.
        """
        cfg = self.config
        rng_states = all_gather_object(capture_rng_state())
        partial_states = None
        network = unwrap_model(self.model)
        if partial is not None:
            if self.info.distributed:  # each process's own BatchNorm statistics, until the epoch's end syncs them
                partial = {**partial, "buffers": _float_buffers(network)}
                if self.ema is not None:
                    partial["ema_buffers"] = _float_buffers(self.ema.module)
            partial_states = all_gather_object(partial)
        elif inside:
            partial_states = [None] * self.info.world_size  # an epoch's end between checkpoint points: no sums
        self._last_save = time.monotonic()
        if not self.info.is_main:
            return
        state = {
            # the network that was evaluated: with train.ema the average (trained_model holds the trained one)
            "model": (self.ema.module if self.ema is not None else network).state_dict(),
            "model_config": self.model_config,
            "config": config_to_dict(cfg),
            "task": cfg.task,
            "epoch": step // self.steps_per_epoch,
            "step": step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_states,
            "best_metric": self.best_metric if math.isfinite(self.best_metric) else None,
            "best_step": self.best_step,
            "metrics": metrics,
            # metrics.csv as of this checkpoint: --resume rewrites the table from it
            "history": self.history,
            "partial": partial_states,
            # class names, for `glore predict` (the data may not be at hand where the network is used)
            "classes": [str(c) for c in getattr(self.train_set, "classes", None) or []],
        }
        if self.ema is not None:
            state["trained_model"] = network.state_dict()
            state["ema"] = {"updates": self.ema.updates}
        previous = None if self._last_is_bad else self.run_dir / "previous.pt"
        self.last_good = save_checkpoint(state, self.run_dir / "last.pt", previous=previous)
        self._last_is_bad = False
        if improved:
            save_checkpoint(state, self.run_dir / "best.pt")

    def _checkpoint_time_due(self) -> bool:
        minutes = self.config.train.checkpoint_every_minutes
        if minutes is None or not self.info.is_main:
            return False
        return time.monotonic() - self._last_save >= 60.0 * minutes

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        if self._stop_signum is None:
            self._stop_signum = signum

    @contextlib.contextmanager
    def _signal_handlers(self) -> Iterator[None]:
        """SIGTERM/SIGUSR1 ask for a graceful stop; SIGXFSZ is ignored, so a write past the file-size limit fails
        with an error that names the file instead of killing the process."""
        self._stop_signum: int | None = None
        self._stop_agreed = False
        self._save_due = False
        self._last_save = time.monotonic()
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self._on_stop_signal) for sig in STOP_SIGNALS}
        if hasattr(signal, "SIGXFSZ"):
            previous[signal.SIGXFSZ] = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stopped(self, step: int) -> TrainingStopped:
        signum = self._stop_signum if self._stop_signum is not None else signal.SIGTERM
        name = signal.Signals(signum).name
        where = f"after iteration {step}/{self.total_steps}"
        self.logger.info(f"{name} received: stopped {where}; checkpoint written: {self.last_good}")
        return TrainingStopped(signum=signum, step=step, total=self.total_steps, checkpoint=self.run_dir / "last.pt")

    def _summary(self, step: int, m: dict[str, Any]) -> str:
        """One line for the log after a checkpoint point, with the task's declared metrics."""
        if self.config.train.iterations is None:
            parts = [f"epoch {step // self.steps_per_epoch}/{self.total_epochs}"]
        else:
            parts = [f"iteration {step}/{self.total_steps}"]
        parts.append(f"train loss {_fmt(m['train_loss'])}")
        names = list(self.task.metrics)
        parts += [f"{name} {_fmt(m['train_' + name])}" for name in names[:1] if "train_" + name in m]
        if any(k.startswith("val_") for k in m):
            parts.append("| val")
            if "val_loss" in m:
                parts.append(f"loss {_fmt(m['val_loss'])}")
            parts += [f"{name} {_fmt(m['val_' + name])}" for name in names if "val_" + name in m]
            parts.append(f"({int(m.get('val_count', 0))} samples)")
        parts.append(f"| {_fmt(m['train_images_per_s'])} samples/s, {m['epoch_time_s']:.1f}s")
        skipped = int(m.get("train_skipped", 0) + m.get("val_skipped", 0))
        if skipped:
            parts.append(
                f"| skipped {int(m.get('train_skipped', 0))} train, {int(m.get('val_skipped', 0))} val samples"
            )
        return " ".join(parts)


def _float_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of ``model``'s floating-point buffers (BatchNorm statistics), on the CPU."""
    return {name: b.detach().cpu().clone() for name, b in model.named_buffers() if b.is_floating_point()}


def _copy_buffers(model: nn.Module, values: dict[str, torch.Tensor] | None) -> None:
    buffers = dict(model.named_buffers())
    for name, value in (values or {}).items():
        buffers[name].copy_(value)


def _read_rows(path: Path) -> list[dict[str, Any]]:
    from .logger import read_csv

    return read_csv(path) if path.is_file() else []


def _detach_float(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.detach().float()
    return value.detach() if isinstance(value, torch.Tensor) else value


def train(
    config: Config, task: Task | None = None, *, resume: bool | str | Path = False, allow_changes: bool = False
) -> dict[str, Any]:
    """Train as ``config`` describes; see ``Trainer``.

    Args:
        config: the run's configuration.
        task: what to train; default the task ``config.task`` names.
        resume: continue from ``output.dir/last.pt`` (``True``; ``previous.pt`` when ``last.pt`` is missing or
            corrupt) or from a given checkpoint.
        allow_changes: resume even though the config changes what the checkpoint was trained with (data, model,
            optimiser, schedule, seed ...); a longer schedule and the keys of ``RESUME_FREE_KEYS`` are always
            allowed.

    Returns:
        The metrics of the last checkpoint (``train_loss``, ``val_top1``, ``val_count`` ...).

    Raises:
        NonFiniteLossError: the training diverged (the last good checkpoint is kept).
        TrainingStopped: SIGTERM or SIGUSR1 stopped it after a whole checkpoint was written.
    """
    return Trainer(config, task, resume=resume, allow_changes=allow_changes).fit()


def evaluate(config: Config, checkpoint: str | Path, task: Task | None = None) -> dict[str, float]:
    """Evaluate a checkpoint on the split ``config.data.val_split`` names, through the task's ``eval_step``.

    The network is rebuilt from the checkpoint's ``model_config``; every sample counts once, also under torchrun.

    Args:
        config: the configuration (its data section chooses the dataset and split).
        checkpoint: a checkpoint written by ``train``.
        task: default the task ``config.task`` names.

    Returns:
        ``val_loss``, the task's metrics and ``val_count``, ``val_skipped``, all prefixed ``val_``.
    """
    if not config.data.val_split:
        raise ValueError("data.val_split: evaluation needs a split to evaluate, got null")
    trainer = Trainer(config, task)
    info = trainer._init_runtime()
    state = load_checkpoint(checkpoint, map_location=info.device)
    if state.get("model_config") is None:
        raise ValueError(f"checkpoint {str(checkpoint)!r}: no model_config to rebuild the network from")
    model = trainer.task.rebuild_model(dict(state["model_config"]))
    load_weights(model, state["model"], checkpoint)
    model = model.to(info.device)
    if config.train.channels_last:
        model = to_channels_last(model)
    val_set = trainer.task.build_dataset(config.data.val_split, train=False)
    return trainer.validate(model, eval_loader(config, trainer.task, info, val_set, persistent=False))
