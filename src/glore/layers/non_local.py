"""The embedded-Gaussian non-local block (Wang et al., "Non-local Neural Networks", CVPR 2018).

The block the GloRe paper compares against: every position attends to every other position, so its cost
grows with L², where GloRe's grows with L.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .helpers import check_feature_input, check_positive_int, reset_residual_block

__all__ = ["NonLocal"]


class NonLocal(nn.Module):
    """Embedded-Gaussian non-local block for inputs with 1 to 3 spatial dims.

    ``out = X + BN(W_z y)`` with ``y_i = sum_j softmax_j(theta(x_i)ᵀ phi(x_j)) g(x_j)``; theta, phi, g are
    1x1 convolutions to ``inter_channels``. The output norm's weight starts at zero, so a new block is the
    identity.

    Args:
        channels: C, the input and output channels.
        inter_channels: the embedding width; C/2 by default.
        zero_init: start the output norm's weight at zero.
        subsample: max-pool phi and g by 2 over the spatial dims (height and width only for video), which
            divides the attention cost by 4.
        norm_layer: normalisation class for the (n, C, L) branch output.
    """

    def __init__(
        self,
        channels: int,
        inter_channels: int | None = None,
        *,
        zero_init: bool = True,
        subsample: bool = False,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm1d,
    ) -> None:
        super().__init__()
        self.channels = check_positive_int("channels", channels)
        self.inter_channels = check_positive_int("inter_channels", inter_channels or max(1, channels // 2))
        self.zero_init = bool(zero_init)
        self.subsample = bool(subsample)
        self.theta = nn.Conv1d(channels, self.inter_channels, kernel_size=1)
        self.phi = nn.Conv1d(channels, self.inter_channels, kernel_size=1)
        self.g = nn.Conv1d(channels, self.inter_channels, kernel_size=1)
        self.conv_out = nn.Conv1d(self.inter_channels, channels, kernel_size=1, bias=False)
        self.norm = norm_layer(channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise every parameter; with ``zero_init`` the block starts as the identity."""
        reset_residual_block(self, self.norm, self.conv_out.weight, self.zero_init)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        spatial_dims = x.dim() - 2
        if spatial_dims == 1:
            return F.max_pool1d(x, kernel_size=2, ceil_mode=True)
        if spatial_dims == 2:
            return F.max_pool2d(x, kernel_size=2, ceil_mode=True)
        if spatial_dims == 3:
            return F.max_pool3d(x, kernel_size=(1, 2, 2), ceil_mode=True)
        raise ValueError(f"NonLocal(subsample=True) supports 1 to 3 spatial dims, got input shape {tuple(x.shape)}")

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """What the block adds to its input, shaped like the input."""
        check_feature_input(type(self).__name__, x, self.channels, self.theta.weight.dtype)
        x_flat = x.flatten(2)  # (n, C, L)
        context = (self._pool(x) if self.subsample else x).flatten(2)  # (n, C, L')
        # Attention as (n, 1, L, i) queries against (n, 1, L', i) keys and values; scale 1 is the embedded
        # Gaussian softmax(theta^T phi) without the transformer's 1/sqrt(i).
        query = self.theta(x_flat).transpose(1, 2).unsqueeze(1)  # (n, i, L) -> (n, 1, L, i)
        key = self.phi(context).transpose(1, 2).unsqueeze(1)  # (n, i, L') -> (n, 1, L', i)
        value = self.g(context).transpose(1, 2).unsqueeze(1)  # (n, i, L') -> (n, 1, L', i)
        # softmax((n, 1, L, i) x (n, 1, i, L')) x (n, 1, L', i) -> (n, 1, L, i)
        y = F.scaled_dot_product_attention(query, key, value, scale=1.0)
        y = y.squeeze(1).transpose(1, 2)  # (n, 1, L, i) -> (n, i, L)
        # (C, i) x (n, i, L) -> (n, C, L) -> (n, C, *spatial)
        return self.norm(self.conv_out(y)).reshape(x.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (n, C, *spatial) with 1 to 3 spatial dims. Returns: the same shape."""
        return x + self.residual(x)
