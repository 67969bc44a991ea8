"""The embedded-Gaussian non-local block, checked against an explicit softmax written in einsum."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from glore.layers import NonLocal

SPATIAL = {1: (9,), 2: (5, 6), 3: (2, 5, 3)}


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=gen, dtype=param.dtype) * 0.5)
        module.norm.running_mean.copy_(torch.randn(module.norm.running_mean.shape, generator=gen))
        module.norm.running_var.copy_(torch.rand(module.norm.running_var.shape, generator=gen) + 0.5)
    return module


def pool_ref(x: torch.Tensor) -> torch.Tensor:
    """Max-pool by 2 over height and width (the last two dims), or the one dim of a sequence, ceil mode."""
    if x.dim() == 3:
        return F.max_pool1d(x, 2, ceil_mode=True)
    if x.dim() == 4:
        return F.max_pool2d(x, 2, ceil_mode=True)
    n, c, t = x.shape[:3]
    # (n, C, T, H, W) -> (n*T, C, H, W): frames pooled one by one
    frames = F.max_pool2d(x.transpose(1, 2).reshape(n * t, c, *x.shape[3:]), 2, ceil_mode=True)
    return frames.reshape(n, t, c, *frames.shape[2:]).transpose(1, 2)


def non_local_ref(block: NonLocal, x: torch.Tensor) -> torch.Tensor:
    """``x + BN(W_z softmax(theta(x)ᵀ phi(x')) g(x'))`` with an explicit softmax; x' is x, pooled when subsampled."""
    n, c = x.shape[:2]
    xf = x.reshape(n, c, -1)  # (n, C, L)
    ctx = (pool_ref(x) if block.subsample else x).reshape(n, c, -1)  # (n, C, L')

    def embed(conv: nn.Conv1d, t: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ic,bcl->bil", conv.weight[..., 0], t) + conv.bias[None, :, None]

    theta, phi, g = embed(block.theta, xf), embed(block.phi, ctx), embed(block.g, ctx)
    logits = torch.einsum("bil,bim->blm", theta, phi)  # (n, L, L')
    weights = torch.exp(logits - logits.amax(-1, keepdim=True))
    weights = weights / weights.sum(-1, keepdim=True)
    y = torch.einsum("blm,bim->bil", weights, g)  # (n, i, L)
    z = torch.einsum("ci,bil->bcl", block.conv_out.weight[..., 0], y)
    norm = block.norm
    z = (z - norm.running_mean[None, :, None]) / torch.sqrt(norm.running_var[None, :, None] + norm.eps)
    z = z * norm.weight[None, :, None] + norm.bias[None, :, None]
    return (xf + z).reshape(x.shape)


@pytest.mark.parametrize("dims", (1, 2, 3))
@pytest.mark.parametrize("training", (True, False))
def test_fresh_block_is_exactly_identity(dims: int, training: bool) -> None:
    block = NonLocal(8).train(training)
    x = torch.randn(2, 8, *SPATIAL[dims])
    assert torch.equal(block(x), x)


@pytest.mark.parametrize("dims", (1, 2, 3))
@pytest.mark.parametrize("subsample", (False, True))
def test_matches_softmax_reference(dims: int, subsample: bool) -> None:
    block = randomize(NonLocal(8, 6, subsample=subsample)).double().eval()
    x = torch.randn(2, 8, *SPATIAL[dims], dtype=torch.float64)
    out = block(x)
    assert out.shape == x.shape
    expected = non_local_ref(block, x)
    assert ((out - expected).abs().max() / expected.abs().max()).item() < 1e-12


def test_subsample_pools_height_and_width_of_video() -> None:
    block = NonLocal(4, subsample=True)
    x = torch.randn(1, 4, 3, 5, 7)
    assert block._pool(x).shape == (1, 4, 3, 3, 4)
    assert block(x).shape == x.shape


def test_inter_channels_default_and_gradients() -> None:
    block = NonLocal(16)
    assert block.inter_channels == 8
    nn.init.ones_(block.norm.weight)
    x = torch.randn(2, 16, 4, 4, requires_grad=True)
    block(x).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters())


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="channels must be a positive integer, got 0"):
        NonLocal(0)
    with pytest.raises(TypeError, match="inter_channels must be a positive integer"):
        NonLocal(8, 2.5)
    with pytest.raises(ValueError, match=r"NonLocal input x must have 8 channels"):
        NonLocal(8)(torch.randn(1, 4, 3, 3))
    with pytest.raises(TypeError, match=r"NonLocal input x must be a floating-point tensor"):
        NonLocal(8)(torch.ones(1, 8, 3, 3, dtype=torch.int32))
    with pytest.raises(ValueError, match=r"supports 1 to 3 spatial dims"):
        NonLocal(4, subsample=True)(torch.randn(1, 4, 2, 2, 2, 2))


def test_non_local_macs_count_every_product() -> None:
    from glore.tools.bench import non_local_macs

    n, c, i, h, w = 2, 16, 8, 5, 6
    length = h * w
    # theta, phi, g: i x C over L positions; logits and weighted sum: L x L x i each; output conv: C x i over L.
    expected = n * (3 * i * c * length + 2 * length * length * i + c * i * length)
    assert non_local_macs((n, c, h, w), i) == expected
    context = 3 * 3  # 5x6 pooled by 2 with ceil mode
    pooled = n * (i * c * length + 2 * i * c * context + 2 * length * context * i + c * i * length)
    assert non_local_macs((n, c, h, w), i, subsample=True) == pooled
    assert non_local_macs((1, c, 2, h, w), i, subsample=True) == (
        i * c * 2 * length + 2 * i * c * 2 * context + 2 * 2 * length * 2 * context * i + c * i * 2 * length
    )
