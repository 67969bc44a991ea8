"""An exponential moving average of the weights (``train.ema``), as ImageNet recipes keep one (timm's ``ModelEma``,
the ``torchvision`` reference scripts' ``--model-ema``): after every ``every``-th optimiser step,
``ema = decay * ema + (1 - decay) * weights`` for every parameter and every floating-point buffer (so BatchNorm's
running statistics follow the averaged weights); integer buffers (``num_batches_tracked``) are copied.

Built on ``torch.optim.swa_utils.AveragedModel`` (``use_buffers=True``) with a ``multi_avg_fn`` of our own: the
floating-point tensors move with one ``torch._foreach_lerp_`` per device and dtype, as
``swa_utils.get_ema_multi_avg_fn`` does, but the integer buffers are copied (``get_ema_multi_avg_fn`` would average
them in float and truncate), and the decay may warm up. The number of updates is kept on the host, so an update never
waits for the device.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from .config import EMAConfig

__all__ = ["WeightEMA", "ema_decay"]


def ema_decay(decay: float, updates: int, *, warmup: bool = False) -> float:
    """The decay of the update that follows ``updates`` updates: ``decay``, or with ``warmup``
    ``min(decay, (1 + updates) / (10 + updates))``."""
    return min(decay, (1.0 + updates) / (10.0 + updates)) if warmup else decay


class WeightEMA:
    """The moving average of ``model``'s weights and buffers, on the same device and in the same memory format.

    Args:
        model: the trained network (unwrapped: the average is a plain module, also under DistributedDataParallel).
        decay: the decay per update, in [0, 1).
        every: update after every this many optimiser steps.
        warmup: warm the decay up (``ema_decay``).
    """

    def __init__(self, model: nn.Module, *, decay: float, every: int = 1, warmup: bool = False) -> None:
        self.decay, self.every, self.warmup = float(decay), int(every), bool(warmup)
        self.updates = 0
        self._averaged = AveragedModel(model, multi_avg_fn=self._average, use_buffers=True)
        self._averaged.requires_grad_(False)

    @classmethod
    def from_config(cls, model: nn.Module, config: EMAConfig | None) -> WeightEMA | None:
        """The average ``train.ema`` asks for, or ``None`` when it is null."""
        if config is None:
            return None
        return cls(model, decay=config.decay, every=config.every, warmup=config.warmup)

    @property
    def module(self) -> nn.Module:
        """The averaged network (what validation and the checkpoint's ``model`` use)."""
        return self._averaged.module

    @torch.no_grad()
    def _average(self, averaged: list[torch.Tensor], current: list[torch.Tensor], _: Any) -> None:
        # One call per (device, dtype) group of AveragedModel.update_parameters; the first update copies instead.
        if averaged[0].is_floating_point():
            weight = 1.0 - ema_decay(self.decay, self.updates, warmup=self.warmup)
            torch._foreach_lerp_(averaged, current, weight)
        else:
            torch._foreach_copy_(averaged, current)

    def step(self, model: nn.Module, step: int) -> None:
        """Update with ``model``'s weights after optimiser step ``step`` (1-based) when it is an ``every``-th."""
        if step % self.every:
            return
        self._averaged.update_parameters(model)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        """``{"model": the averaged network's state dict, "updates": int}``."""
        return {"model": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        self.module.load_state_dict(state["model"])
        self.updates = int(state["updates"])
        self._averaged.n_averaged.fill_(self.updates)
