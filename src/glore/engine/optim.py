"""The optimiser of a run: parameter groups (optionally without weight decay on norms and biases, with per-parameter
learning-rate multipliers and weight decays by name), SGD or AdamW.

``optim.param_rules`` say, by regular expressions on parameter names, which parameters get another learning rate
(``lr_mult``) or weight decay; the engine knows no network, so a recipe (or the task that writes it) names the
parameters. The official GloRe video recipe, for instance::

    param_rules:
      - {match: '\\.bias$', weight_decay: 0.0}                     # decay every weight but the biases
      - {match: '^layer[1-4]\\.\\d+\\.(bn2|conv2)\\.', lr_mult: 0.5}  # half the lr on the (1, 3, 3) convolutions
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .config import Config, ParamRule

__all__ = ["build_optimizer", "effective_lr", "param_groups"]


def _rule(rule: ParamRule | Mapping[str, Any], index: int) -> tuple[re.Pattern[str], float, float | None]:
    get = rule.get if isinstance(rule, Mapping) else lambda key, default=None: getattr(rule, key, default)
    where = f"optim.param_rules[{index}]"
    if isinstance(rule, Mapping):
        unknown = sorted(set(rule) - {"match", "lr_mult", "weight_decay"})
        if unknown:
            raise ValueError(f"{where}.{unknown[0]}: unknown key; valid: match, lr_mult, weight_decay")
    pattern, lr_mult, decay = get("match", ""), get("lr_mult", 1.0), get("weight_decay", None)
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"{where}.match: expected a regular expression matching parameter names, got {pattern!r}")
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise ValueError(f"{where}.match: {pattern!r} is not a regular expression ({error})") from None
    if isinstance(lr_mult, bool) or not isinstance(lr_mult, int | float) or lr_mult < 0:
        raise ValueError(f"{where}.lr_mult: expected a number >= 0, got {lr_mult!r}")
    if decay is not None and (isinstance(decay, bool) or not isinstance(decay, int | float) or decay < 0):
        raise ValueError(f"{where}.weight_decay: expected a number >= 0 or null, got {decay!r}")
    return compiled, float(lr_mult), None if decay is None else float(decay)


def param_groups(
    model: nn.Module,
    weight_decay: float,
    *,
    decay_norm_and_bias: bool = True,
    rules: Sequence[ParamRule | Mapping[str, Any]] = (),
    lr: float | None = None,
) -> list[dict[str, Any]]:
    """Parameter groups for an optimiser.

    Every trainable parameter starts with ``weight_decay`` (0 for parameters with fewer than two dims, norm weights
    and biases, when ``decay_norm_and_bias`` is false) and a learning-rate multiplier of 1; then each rule whose
    ``match`` is found in the parameter's name (``re.search``) sets its ``lr_mult`` and, when not None, its weight
    decay, later rules overriding earlier ones. Parameters with the same settings share a group; the group of
    multiplier 1 and the full weight decay comes first (the one a log of ``param_groups[0]["lr"]`` reads).

    Args:
        model: the network.
        weight_decay: weight decay of the decayed parameters.
        decay_norm_and_bias: whether norms and biases are decayed too.
        rules: ``ParamRule``s (or mappings with ``match``, ``lr_mult``, ``weight_decay``).
        lr: the base learning rate; when given, each group gets ``lr * lr_mult`` as its ``"lr"``.

    Returns:
        Groups ``{"params", "weight_decay", "lr_mult"[, "lr"]}``.

    Raises:
        ValueError: a malformed rule, or a rule that matches no parameter (named ``optim.param_rules[i]``).
    """
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    compiled = [_rule(rule, i) for i, rule in enumerate(rules)]
    settings: list[tuple[float, float]] = []
    hits = [0] * len(compiled)
    for name, p in params:
        mult, decay = 1.0, weight_decay if decay_norm_and_bias or p.ndim > 1 else 0.0
        for i, (pattern, rule_mult, rule_decay) in enumerate(compiled):
            if pattern.search(name):
                hits[i] += 1
                mult = rule_mult
                decay = decay if rule_decay is None else rule_decay
        settings.append((mult, decay))
    for i, count in enumerate(hits):
        if count == 0:
            raise ValueError(
                f"optim.param_rules[{i}].match: {compiled[i][0].pattern!r} matches no parameter of the network "
                f"(names look like {params[0][0]!r})"
            )
    keys = list(dict.fromkeys(settings))  # first-seen order, then the plain group first
    keys.sort(key=lambda k: k != (1.0, weight_decay))
    groups = []
    for mult, decay in keys:
        group: dict[str, Any] = {
            "params": [p for (_, p), s in zip(params, settings, strict=True) if s == (mult, decay)],
            "weight_decay": decay,
            "lr_mult": mult,
        }
        if lr is not None:
            group["lr"] = lr * mult
        groups.append(group)
    return groups


def effective_lr(config: Config) -> float:
    """``optim.lr``, scaled linearly to ``data.batch_size`` when ``optim.lr_base_batch_size`` names the batch it
    was set for (a recipe's 0.1 for 256 images is 0.025 at 64)."""
    o = config.optim
    if o.lr_base_batch_size is None:
        return o.lr
    return o.lr * config.data.batch_size / o.lr_base_batch_size


def build_optimizer(model: nn.Module, config: Config) -> torch.optim.Optimizer:
    """SGD (with momentum, optionally Nesterov) or AdamW from ``config.optim``, its groups from ``param_groups``,
    at the learning rate of ``effective_lr``."""
    o = config.optim
    if o.lr <= 0:
        raise ValueError(f"optim.lr: expected a positive learning rate, got {o.lr}")
    lr = effective_lr(config)
    if o.weight_decay < 0:
        raise ValueError(f"optim.weight_decay: expected >= 0, got {o.weight_decay}")
    groups = param_groups(model, o.weight_decay, decay_norm_and_bias=o.decay_norm_and_bias, rules=o.param_rules, lr=lr)
    if o.name == "sgd":
        if o.nesterov and o.momentum <= 0:
            raise ValueError(f"optim.nesterov: Nesterov momentum needs optim.momentum > 0, got {o.momentum}")
        return torch.optim.SGD(groups, lr=lr, momentum=o.momentum, nesterov=o.nesterov)
    if o.name == "adamw":
        if len(o.betas) != 2:
            raise ValueError(f"optim.betas: expected two values, got {o.betas}")
        return torch.optim.AdamW(groups, lr=lr, betas=(o.betas[0], o.betas[1]), eps=o.eps)
    raise ValueError(f"optim.name: expected 'sgd' or 'adamw', got {o.name!r}")
