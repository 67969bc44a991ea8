"""The options that PaddleSeg's and MindSpore's GloRe networks need, each against its explicit arithmetic: "same"
padding, ResNet-D's stem and shortcut, whole-stage dilation, a pre-activation shortcut with its own norm, the GCN's
ReLU after its second product, the pre-activation GloRe unit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from glore.layers import GloRe
from glore.models import create_model
from glore.models.resnet import Conv2dSame, MaxPool2dSame


def test_same_padding_puts_the_odd_pixel_at_the_bottom_right():
    conv = Conv2dSame(3, 4, 3, stride=2, bias=False)
    x = torch.randn(2, 3, 8, 10)
    # even sizes: (ceil(8/2) - 1) * 2 + 3 - 8 = 1 pixel of padding, all at the end
    torch.testing.assert_close(conv(x), F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, stride=2))
    odd = torch.randn(2, 3, 9, 11)  # odd sizes: 2 pixels, one each side, as symmetric padding 1
    torch.testing.assert_close(conv(odd), F.conv2d(odd, conv.weight, stride=2, padding=1))
    pool = MaxPool2dSame(3, 2)
    y = torch.randn(1, 2, 8, 8)
    torch.testing.assert_close(pool(y), F.max_pool2d(F.pad(y, (0, 1, 0, 1), value=float("-inf")), 3, 2))
    assert pool(y).shape[-2:] == (4, 4) and conv(x).shape[-2:] == (4, 5)


def test_same_padding_pool_only_changes_the_stem_pool():
    pool_only = create_model("resnet50", same_padding="pool", num_classes=0)
    assert isinstance(pool_only.maxpool, MaxPool2dSame) and not isinstance(pool_only.conv1, Conv2dSame)
    assert not any(isinstance(m, Conv2dSame) for m in pool_only.modules())
    every = create_model("resnet50d", same_padding="all", num_classes=0)
    assert isinstance(every.conv1[0], Conv2dSame) and isinstance(every.layer2[0].conv2, Conv2dSame)
    assert not isinstance(every.layer2[1].conv2, Conv2dSame)  # stride 1: symmetric padding is the same
    with pytest.raises(ValueError, match="same_padding must be one of"):
        create_model("resnet50", same_padding="yes")


def test_resnet_d_has_timms_layout_and_pools_before_projecting():
    model = create_model("resnet50d").eval()
    keys = model.state_dict()
    for key in ("conv1.0.weight", "conv1.1.running_var", "conv1.3.weight", "conv1.4.weight", "conv1.6.weight"):
        assert key in keys, key
    assert keys["conv1.6.weight"].shape == (64, 32, 3, 3) and keys["bn1.weight"].shape == (64,)
    assert "layer2.0.downsample.1.weight" in keys and "layer2.0.downsample.2.running_mean" in keys
    assert sum(p.numel() for p in model.parameters()) == 25_576_264  # timm's resnet50d: 25.58M
    block = model.layer2[0]
    x = torch.randn(1, 256, 9, 9)  # odd: the 2x2 pool's last window is partial (ceil mode, padding not counted)
    pooled = F.avg_pool2d(x, 2, 2, ceil_mode=True, count_include_pad=False)
    with torch.no_grad():
        want = block.downsample[2](F.conv2d(pooled, block.downsample[1].weight))
        torch.testing.assert_close(block.downsample(x), want)
    assert isinstance(model.layer1[0].downsample[0], torch.nn.Identity)  # stride 1: no pool


def test_dilate_first_block_dilates_the_whole_stage():
    default = create_model("resnet50d", output_stride=8, num_classes=0)
    whole = create_model("resnet50d", output_stride=8, dilate_first_block=True, num_classes=0)
    assert default.layer3[0].conv2.dilation == (1, 1) and default.layer4[0].conv2.dilation == (2, 2)
    assert whole.layer3[0].conv2.dilation == (2, 2) and whole.layer4[0].conv2.dilation == (4, 4)
    assert whole.layer3[0].conv2.padding == (2, 2) and whole.layer4[1].conv2.dilation == (4, 4)
    assert isinstance(whole.layer3[0].downsample[0], torch.nn.Identity)  # no stride: no pool in the shortcut


def test_shortcut_norm_projects_the_block_input_through_its_own_norm():
    model = create_model("resnet50", preact=True, shortcut_norm=True, norm_eps=1e-4, num_classes=0).eval()
    block = model.layer2[0]
    assert isinstance(block.downsample[0], torch.nn.BatchNorm2d) and block.downsample[0].eps == 1e-4
    with torch.no_grad():
        for m in (block.bn1, block.downsample[0]):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
        x = torch.randn(1, 256, 8, 8)
        shortcut = block.downsample[2](F.relu(block.downsample[0](x)))
        pre = F.relu(block.bn1(x))
        branch = block.conv3(F.relu(block.bn3(block.conv2(F.relu(block.bn2(block.conv1(pre)))))))
        torch.testing.assert_close(block(x), branch + shortcut)
    with pytest.raises(ValueError, match="shortcut_norm=True needs preact=True"):
        create_model("resnet50", shortcut_norm=True)


def _bn(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(x, module.running_mean, module.running_var, module.weight, module.bias, False, 0, module.eps)


def _random_unit(**kwargs) -> GloRe:
    unit = GloRe(16, 4, 8, normalize=False, zero_init=False, **kwargs)
    with torch.no_grad():
        for m in unit.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return unit.eval()


@pytest.mark.parametrize("order", ["direct", "reassociated"])
def test_gcn_act_after_puts_the_relu_after_the_state_wise_product(order):
    unit = _random_unit(gcn_act="after", order=order)
    x = torch.randn(2, 16, 5, 6)
    flat = x.flatten(2)
    with torch.no_grad():
        proj = torch.einsum("kc,ncl->nkl", unit.conv_proj.weight[..., 0], flat) + unit.conv_proj.bias[:, None]
        state = torch.einsum("sc,ncl->nsl", unit.conv_state.weight[..., 0], flat) + unit.conv_state.bias[:, None]
        nodes = state @ proj.transpose(1, 2)  # (n, S, N)
        gcn = unit.gcn[0]
        h = nodes + nodes @ gcn.node_conv.weight[..., 0].t() + gcn.node_conv.bias
        z = F.relu(gcn.state_conv.weight[..., 0] @ h)  # PaddleSeg's GCN: relu(W_g H)
        want = flat + _bn(unit.norm, unit.conv_extend.weight[..., 0] @ (z @ proj))
        torch.testing.assert_close(unit(x).flatten(2), want, rtol=1e-4, atol=1e-4)
        fused = unit.fuse()(x)  # W_g cannot be folded past the ReLU; the norm still is
        assert not isinstance(unit.gcn[0].state_conv, torch.nn.Identity)
        torch.testing.assert_close(fused.flatten(2), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("order", ["direct", "reassociated"])
def test_preact_unit_is_the_papers_mxnet_unit(order):
    unit = _random_unit(preact=True, order=order)
    assert unit.conv_state.bias is None and unit.conv_proj.bias is None and isinstance(unit.norm, torch.nn.Identity)
    x = torch.randn(2, 16, 5, 6)
    flat = x.flatten(2)
    with torch.no_grad():
        x_state = F.relu(_bn(unit.norm_state, flat))
        x_proj = F.relu(_bn(unit.norm_proj, flat))
        proj = torch.einsum("kc,ncl->nkl", unit.conv_proj.weight[..., 0], x_proj)
        nodes = torch.einsum("sc,ncl->nsl", unit.conv_state.weight[..., 0], x_state) @ proj.transpose(1, 2)
        gcn = unit.gcn[0]
        z = gcn.state_conv.weight[..., 0] @ F.relu(
            nodes + nodes @ gcn.node_conv.weight[..., 0].t() + gcn.node_conv.bias
        )
        want = flat + unit.conv_extend.weight[..., 0] @ F.relu(_bn(unit.norm_extend, z @ proj))
        torch.testing.assert_close(unit(x).flatten(2), want, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(unit.residual(x).flatten(2), want - flat, rtol=1e-4, atol=1e-4)
    with pytest.raises(RuntimeError, match="pre-activation unit"):
        unit.fuse()


def test_a_new_preact_unit_is_the_identity_and_trains():
    unit = GloRe(16, preact=True)
    assert not unit.conv_extend.weight.any() and unit.norm_extend.weight.all()  # W_e is zero, not the norm
    x = torch.randn(2, 16, 4, 4, requires_grad=True)
    out = unit(x)
    assert torch.equal(out, x)
    out.square().sum().backward()
    assert unit.conv_extend.weight.grad.abs().sum() > 0  # a zero norm before the ReLU would block this


def test_unknown_gcn_act_is_refused_naming_it():
    with pytest.raises(ValueError, match="gcn_act must be one of"):
        GloRe(16, gcn_act="before")
