"""channels-last memory formats chosen per tensor rank: 2D, 3D and mixed networks in one call."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from glore.layers import channels_last_format, to_channels_last
from glore.models import create_model


def test_format_follows_the_rank():
    assert channels_last_format(torch.empty(1, 2, 3, 4)) is torch.channels_last
    assert channels_last_format(torch.empty(1, 2, 3, 4, 5)) is torch.channels_last_3d
    assert channels_last_format(torch.empty(2, 3)) is None


def test_a_mixed_network_takes_each_tensor_in_its_format_and_keeps_its_parameters():
    torch.manual_seed(0)
    net = nn.ModuleDict({"c2": nn.Conv2d(3, 4, 3), "c3": nn.Conv3d(3, 4, 3), "bn": nn.BatchNorm3d(4)})
    before = {name: p for name, p in net.named_parameters()}
    reference = {k: v.clone() for k, v in net.state_dict().items()}
    # the plain Module.to path refuses one of the two ranks
    with pytest.raises(RuntimeError):
        nn.ModuleDict({"c2": nn.Conv2d(3, 4, 3), "c3": nn.Conv3d(3, 4, 3)}).to(memory_format=torch.channels_last)
    assert to_channels_last(net) is net
    assert net["c2"].weight.is_contiguous(memory_format=torch.channels_last)
    assert net["c3"].weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert all(p is before[name] for name, p in net.named_parameters())
    assert all(torch.equal(v, reference[k]) for k, v in net.state_dict().items())


def test_a_video_network_in_channels_last_3d_computes_what_it_did():
    torch.manual_seed(0)
    model = create_model("resnet_small_3d", num_classes=3, glore="res4:1").eval()
    clip = torch.randn(2, 3, 4, 32, 32)  # (n, C, T, H, W)
    with torch.no_grad():
        expected = model(clip)
        to_channels_last(model)
        got = model(clip.contiguous(memory_format=torch.channels_last_3d))
    kernels = [p for p in model.parameters() if p.dim() == 5]
    assert kernels and all(p.is_contiguous(memory_format=torch.channels_last_3d) for p in kernels)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
