"""Squeeze-and-Excitation: shapes over any number of spatial dims and the gate's formula."""

from __future__ import annotations

import pytest
import torch

from glore.layers import SqueezeExcite


@pytest.mark.parametrize("spatial", [(7,), (3, 5), (2, 3, 4)])
def test_matches_formula(spatial: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    se = SqueezeExcite(32).double()
    x = torch.randn(2, 32, *spatial, dtype=torch.float64)
    out = se(x)
    assert out.shape == x.shape
    mean = x.reshape(2, 32, -1).mean(-1)  # (n, C)
    hidden = torch.relu(mean @ se.fc1.weight[..., 0].T + se.fc1.bias)  # (n, rd)
    gate = torch.sigmoid(hidden @ se.fc2.weight[..., 0].T + se.fc2.bias)  # (n, C)
    expected = x * gate.reshape(2, 32, *([1] * len(spatial)))
    assert ((out - expected).abs().max() / expected.abs().max()).item() < 1e-12


def test_widths() -> None:
    assert SqueezeExcite(256).rd_channels == 16
    assert SqueezeExcite(64).rd_channels == 8  # 64/16 = 4, rounded up to the divisor
    assert SqueezeExcite(64, rd_ratio=0.25).rd_channels == 16
    assert SqueezeExcite(64, rd_channels=5).rd_channels == 5


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"rd_ratio must be in \(0, 1\], got 0"):
        SqueezeExcite(64, rd_ratio=0)
    with pytest.raises(ValueError, match="channels must be a positive integer, got -1"):
        SqueezeExcite(-1)
    with pytest.raises(TypeError, match="rd_channels must be a positive integer"):
        SqueezeExcite(64, rd_channels=2.0)
    with pytest.raises(ValueError, match=r"SqueezeExcite input x must have 64 channels"):
        SqueezeExcite(64)(torch.randn(1, 32, 2, 2))
