"""Squeeze-and-Excitation (Hu et al., CVPR 2018), the channel gate of the SE-ResNets."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .helpers import check_feature_input, check_positive_int, make_divisible

__all__ = ["SqueezeExcite"]


class SqueezeExcite(nn.Module):
    """Gate each channel by a function of the global average of all channels.

    ``out = X * gate(W_2 act(W_1 mean(X)))`` over any number of spatial dims.

    Args:
        channels: C, the input and output channels.
        rd_ratio: the bottleneck width as a fraction of C (1/16 in SENet).
        rd_channels: the bottleneck width, overriding ``rd_ratio``.
        rd_divisor: the bottleneck width computed from ``rd_ratio`` is rounded to a multiple of this.
        act_layer: the nonlinearity inside the bottleneck.
        gate_layer: the gate's nonlinearity.
    """

    def __init__(
        self,
        channels: int,
        rd_ratio: float = 1 / 16,
        *,
        rd_channels: int | None = None,
        rd_divisor: int = 8,
        act_layer: Callable[[], nn.Module] = nn.ReLU,
        gate_layer: Callable[[], nn.Module] = nn.Sigmoid,
    ) -> None:
        super().__init__()
        self.channels = check_positive_int("channels", channels)
        if rd_channels is None:
            if not 0 < rd_ratio <= 1:
                raise ValueError(f"rd_ratio must be in (0, 1], got {rd_ratio}")
            rd_channels = make_divisible(channels * rd_ratio, rd_divisor, round_limit=0.0)
        self.rd_channels = check_positive_int("rd_channels", rd_channels)
        self.fc1 = nn.Conv1d(channels, self.rd_channels, kernel_size=1)
        self.act = act_layer()
        self.fc2 = nn.Conv1d(self.rd_channels, channels, kernel_size=1)
        self.gate = gate_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (n, C, *spatial). Returns: the same shape."""
        check_feature_input(type(self).__name__, x, self.channels, self.fc1.weight.dtype)
        # (n, C, *spatial) -> (n, C, 1)
        squeezed = x.flatten(2).mean(-1, keepdim=True)
        # (n, C, 1) -> (n, rd, 1) -> (n, C, 1) -> (n, C, 1, ..., 1)
        gate = self.gate(self.fc2(self.act(self.fc1(squeezed))))
        return x * gate.reshape(*gate.shape[:2], *([1] * (x.dim() - 2)))
