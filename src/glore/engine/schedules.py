"""Learning-rate schedules evaluated per iteration: step, multistep, cosine, poly, constant, each with an
optional linear warm-up.

The rate used for iteration ``t`` (0-based, counted over the whole run) is
``base_lr * warmup(t) * main(t)`` for ``step``, ``multistep`` and ``constant``, where the decay points are
absolute epochs (the ImageNet convention: decay at epochs 30, 60, 90 whatever the warm-up), and for
``cosine`` and ``poly`` the decay runs from the end of the warm-up to the last iteration, towards ``min_lr``.
``warmup(t)`` rises linearly from ``warmup_start_factor`` to 1 over the warm-up iterations.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

__all__ = ["SCHEDULES", "IterationScheduler", "build_scheduler", "lr_factor"]

SCHEDULES = ("constant", "step", "multistep", "cosine", "poly")


def lr_factor(
    step: int,
    *,
    name: str,
    total_steps: int,
    warmup_steps: int = 0,
    warmup_start_factor: float = 0.01,
    step_size: int = 1,
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
    power: float = 0.9,
    min_factor: float = 0.0,
) -> float:
    """Multiplier of the base learning rate at iteration ``step``.

    Args:
        step: the 0-based iteration.
        name: one of ``SCHEDULES``.
        total_steps: iterations in the whole run.
        warmup_steps: iterations of linear warm-up.
        warmup_start_factor: the multiplier at iteration 0 of the warm-up.
        step_size: ``step``: iterations between decays.
        milestones: ``multistep``: iterations at which the rate is multiplied by ``gamma``.
        gamma: decay factor of ``step`` and ``multistep``.
        power: exponent of ``poly``.
        min_factor: ``min_lr / base_lr``, the floor of ``cosine`` and ``poly``.

    Returns:
        The factor, in ``[0, 1]`` for the usual settings.
    """
    if name not in SCHEDULES:
        raise ValueError(f"schedule name: expected one of {', '.join(SCHEDULES)}, got {name!r}")
    if total_steps < 1:
        raise ValueError(f"total_steps: expected a positive int, got {total_steps}")
    if warmup_steps < 0 or warmup_steps > total_steps:
        raise ValueError(f"warmup_steps: expected 0..total_steps ({total_steps}), got {warmup_steps}")
    warm = 1.0
    if step < warmup_steps:
        warm = warmup_start_factor + (1.0 - warmup_start_factor) * step / warmup_steps
    if name == "constant":
        main = 1.0
    elif name == "step":
        if step_size < 1:
            raise ValueError(f"step_size: expected at least one iteration, got {step_size}")
        main = gamma ** (step // step_size)
    elif name == "multistep":
        main = gamma ** bisect.bisect_right(sorted(milestones), step)
    else:
        span = max(total_steps - warmup_steps, 1)
        progress = min(max(step - warmup_steps, 0) / span, 1.0)
        if name == "cosine":
            decay = 0.5 * (1.0 + math.cos(math.pi * progress))
        else:
            decay = (1.0 - progress) ** power
        main = min_factor + (1.0 - min_factor) * decay
    return warm * main


class IterationScheduler(LRScheduler):
    """An ``LRScheduler`` stepped once per iteration, whose rate is ``base_lr * lr_factor(t, ...)``.

    Its ``state_dict`` holds only numbers, so it round-trips through ``torch.load(weights_only=True)``.

    Args:
        optimizer: the optimiser whose groups' ``initial_lr`` is the base rate.
        name: one of ``SCHEDULES``.
        total_steps: iterations in the whole run.
        warmup_steps: iterations of linear warm-up.
        warmup_start_factor: the warm-up's first multiplier.
        step_size: ``step``: iterations between decays.
        milestones: ``multistep``: iterations of decay.
        gamma: decay factor.
        power: ``poly`` exponent.
        min_lr: the floor of ``cosine`` and ``poly``, in absolute units.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        *,
        name: str,
        total_steps: int,
        warmup_steps: int = 0,
        warmup_start_factor: float = 0.01,
        step_size: int = 1,
        milestones: Sequence[int] = (),
        gamma: float = 0.1,
        power: float = 0.9,
        min_lr: float = 0.0,
    ) -> None:
        self.name = name
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.warmup_start_factor = float(warmup_start_factor)
        self.step_size = int(step_size)
        self.milestones = [int(m) for m in milestones]
        self.gamma = float(gamma)
        self.power = float(power)
        self.min_lr = float(min_lr)
        # Validate once, before the base class computes the first rate.
        lr_factor(0, **self._factor_kwargs(1.0))
        super().__init__(optimizer)

    def _factor_kwargs(self, base_lr: float) -> dict:
        return {
            "name": self.name,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "warmup_start_factor": self.warmup_start_factor,
            "step_size": self.step_size,
            "milestones": self.milestones,
            "gamma": self.gamma,
            "power": self.power,
            "min_factor": self.min_lr / base_lr if base_lr > 0 else 0.0,
        }

    def state_dict(self) -> dict:
        """The iteration counters (the schedule itself comes from the configuration)."""
        return {"last_epoch": self.last_epoch, "_step_count": self._step_count}

    def load_state_dict(self, state_dict: dict) -> None:
        """Continue at the saved iteration, with this scheduler's settings (a resumed run that was given more
        epochs stretches its schedule), and set the optimiser's rates for that iteration."""
        self.last_epoch = int(state_dict["last_epoch"])
        self._step_count = int(state_dict.get("_step_count", self.last_epoch + 1))
        self._last_lr = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, self._last_lr, strict=True):
            group["lr"] = lr

    def get_lr(self) -> list[float]:  # type: ignore[override]
        """Rates of every parameter group at iteration ``last_epoch`` (which counts iterations here)."""
        return [base * lr_factor(self.last_epoch, **self._factor_kwargs(base)) for base in self.base_lrs]


def build_scheduler(
    optimizer: Optimizer,
    *,
    name: str,
    epochs: int,
    steps_per_epoch: int,
    total_steps: int | None = None,
    warmup_epochs: float = 0.0,
    warmup_iters: int | None = None,
    warmup_start_factor: float = 0.01,
    step_size: float = 30.0,
    milestones: Sequence[float] = (),
    gamma: float = 0.1,
    power: float = 0.9,
    min_lr: float = 0.0,
) -> IterationScheduler:
    """Build an ``IterationScheduler`` from epoch-based settings (a ``ScheduleConfig``'s fields).

    Args:
        optimizer: the optimiser.
        name: one of ``SCHEDULES``.
        epochs: epochs in the run.
        steps_per_epoch: optimiser steps per epoch.
        total_steps: the run's iterations when its budget is counted in iterations (default
            ``epochs * steps_per_epoch``); the epoch-valued settings still count epochs of ``steps_per_epoch``.
        warmup_epochs: warm-up length in epochs (fractions allowed).
        warmup_iters: warm-up length in iterations instead of ``warmup_epochs`` (``None``: use epochs).
        warmup_start_factor: the warm-up's first multiplier.
        step_size: ``step``: epochs between decays.
        milestones: ``multistep``: epochs of decay.
        gamma: decay factor.
        power: ``poly`` exponent.
        min_lr: floor of ``cosine`` and ``poly``.
    """
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch: expected a positive int, got {steps_per_epoch} (is the dataset empty?)")
    if epochs < 1:
        raise ValueError(f"epochs: expected a positive int, got {epochs}")
    if warmup_epochs < 0 or warmup_epochs > epochs:
        raise ValueError(f"schedule.warmup_epochs: expected 0..{epochs} (train.epochs), got {warmup_epochs}")
    total = total_steps if total_steps is not None else epochs * steps_per_epoch
    if warmup_iters is None:
        warmup_steps = min(round(warmup_epochs * steps_per_epoch), total)
    elif warmup_epochs:
        raise ValueError(
            f"schedule.warmup_iters: {warmup_iters} given with schedule.warmup_epochs {warmup_epochs}; set one of them"
        )
    elif not isinstance(warmup_iters, int) or isinstance(warmup_iters, bool) or not 0 <= warmup_iters <= total:
        raise ValueError(
            f"schedule.warmup_iters: expected an int in 0..{total} (the run's iterations), got {warmup_iters!r}"
        )
    else:
        warmup_steps = warmup_iters
    return IterationScheduler(
        optimizer,
        name=name,
        total_steps=total,
        warmup_steps=warmup_steps,
        warmup_start_factor=warmup_start_factor,
        step_size=max(round(step_size * steps_per_epoch), 1),
        milestones=[round(m * steps_per_epoch) for m in milestones],
        gamma=gamma,
        power=power,
        min_lr=min_lr,
    )
