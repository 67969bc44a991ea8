"""The optimiser of a run: parameter groups (optionally without weight decay on norms and biases), SGD or AdamW."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .config import Config

__all__ = ["build_optimizer", "param_groups"]


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
