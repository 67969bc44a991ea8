"""Every registered network, with and without GloRe units: shapes, gradients, feature_info, export, key names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from glore.layers import GloRe
from glore.models import create_model, list_models

NUM_CLASSES = 7
# 32 px keep the deep networks cheap on a CPU (res5 is 1x1 there); feature_info at 224 px is checked on meta.
SIZE = 32
TORCHVISION_KEYS = json.loads((Path(__file__).parent / "torchvision_resnet_keys.json").read_text())
# The image classifiers; the segmentation (fcn_*) and video (*_3d) networks have their own tests.
CLASSIFIERS = [name for name in list_models() if not name.startswith("fcn_") and not name.endswith("_3d")]


def _channels(output: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[int, tuple[int, ...]]:
    # A DPN stage returns its (resid, dense) pair: its features are both, concatenated.
    if isinstance(output, tuple):
        return sum(t.shape[1] for t in output), tuple(output[0].shape[2:])
    return output.shape[1], tuple(output.shape[2:])


@pytest.mark.parametrize("with_units", [False, True], ids=["plain", "glore"])
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_forward_backward_and_features(name, with_units):
    torch.manual_seed(0)
    glore = "res3:1,res4:1" if with_units else None
    model = create_model(name, num_classes=NUM_CLASSES, glore=glore)
    units = [m for m in model.modules() if isinstance(m, GloRe)]
    assert len(units) == (2 if with_units else 0)
    for unit in units:
        # A zero norm weight (the identity init) blocks the gradient to the unit's inner parameters; open it.
        nn.init.constant_(unit.norm.weight, 0.5)
    seen = {}
    for info in model.feature_info:
        module = model.get_submodule(info["module"])
        module.register_forward_hook(lambda m, i, o, key=info["module"]: seen.__setitem__(key, _channels(o)))
    x = torch.randn(2, 3, SIZE, SIZE)
    out = model(x)
    assert out.shape == (2, NUM_CLASSES)
    assert torch.isfinite(out).all()
    nn.functional.cross_entropy(out, torch.tensor([1, 5])).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert no_grad == []
    for unit in units:
        assert unit.conv_state.weight.grad.abs().sum() > 0 and unit.conv_proj.weight.grad.abs().sum() > 0
    # feature_info matches what the stages really output.
    assert [info["stage"] for info in model.feature_info] == ["res2", "res3", "res4", "res5"]
    for info in model.feature_info:
        chs, spatial = seen[info["module"]]
        assert chs == info["num_chs"], info
        assert spatial == (SIZE // info["reduction"], SIZE // info["reduction"]), info
    assert model.num_features == model.feature_info[-1]["num_chs"]
    features = model.forward_features(x)
    assert features.shape[1] == model.num_features
    assert model.forward_head(features, pre_logits=True).shape == (2, model.num_features)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_feature_info_at_full_depth_on_meta(name):
    with torch.device("meta"):
        glore = "res3:1,res4:1" if name in ("resnet18", "resnet_small") else "res3:2,res4:3"
        model = create_model(name, glore=glore).eval()
        seen = {}
        for info in model.feature_info:
            module = model.get_submodule(info["module"])
            module.register_forward_hook(lambda m, i, o, key=info["module"]: seen.__setitem__(key, _channels(o)))
        assert model(torch.empty(1, 3, 224, 224)).shape == (1, 1000)
    for info in model.feature_info:
        assert seen[info["module"]] == (info["num_chs"], (224 // info["reduction"],) * 2), info


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnext50_32x4d"])
def test_state_dict_keys_equal_torchvision(name):
    with torch.device("meta"):
        model = create_model(name)
    ours = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert ours == [(k, shape) for k, shape in TORCHVISION_KEYS[name].items()]


def test_units_leave_torchvision_keys_unchanged():
    with torch.device("meta"):
        model = create_model("resnet50", glore="res3:2,res4:3")
    keys = model.state_dict().keys()
    assert [k for k in keys if ".glore" not in k] == list(TORCHVISION_KEYS["resnet50"])
    assert "layer3.glore1.conv_state.weight" in keys and "layer2.glore2.norm.weight" in keys


@pytest.mark.parametrize("name", ["resnet50", "seresnet50", "resnext101_32x4d", "resnet200"])
def test_preact_variant(name):
    with torch.device("meta"):
        post = create_model(name)
        pre = create_model(name, preact=True, glore="res4:1")
    assert pre.model_config["preact"] is True and isinstance(pre.final_norm, nn.BatchNorm2d)
    # The same convolutions: pre-activation moves norms, not weights.
    conv_shapes = sorted(tuple(m.weight.shape) for m in post.modules() if isinstance(m, nn.Conv2d))
    pre_shapes = sorted(
        tuple(m.weight.shape) for n, m in pre.named_modules() if isinstance(m, nn.Conv2d) and ".glore" not in n
    )
    assert conv_shapes == pre_shapes


def test_preact_block_order():
    model = create_model("resnet_small", preact=True, num_classes=3).eval()
    block = model.layer2[0]
    calls = []
    for name in ("bn1", "conv1", "bn2", "conv2", "downsample"):
        getattr(block, name).register_forward_hook(lambda m, i, o, name=name: calls.append(name))
    model(torch.randn(1, 3, 32, 32))
    assert calls == ["bn1", "downsample", "conv1", "bn2", "conv2"]
    # The shortcut projection takes the pre-activated input and has no norm of its own.
    assert [type(m) for m in block.downsample] == [nn.Conv2d]


def test_seresnet_has_a_gate_in_every_block():
    with torch.device("meta"):
        model = create_model("seresnet50")
    blocks = [b for stage in (model.layer1, model.layer2, model.layer3, model.layer4) for b in stage]
    assert len(blocks) == 16 and all(b.se is not None and b.se.rd_channels == b.bn3.num_features // 16 for b in blocks)


def test_resnext_and_dpn_use_grouped_convolutions():
    with torch.device("meta"):
        resnext = create_model("resnext101_32x4d")
        dpn = create_model("dpn98")
    assert resnext.layer3[0].conv2.groups == 32 and resnext.layer3[0].conv2.in_channels == 512
    assert dpn.layer3[1].conv2.conv.groups == 40
    assert [len(s) for s in (dpn.layer1, dpn.layer2, dpn.layer3, dpn.layer4)] == [3, 6, 20, 3]


def test_dpn_units_act_on_the_residual_path():
    model = create_model("dpn68", glore="res4:2", num_classes=3)
    unit = model.layer3.glore1
    assert unit.channels == 256  # bw of DPN-68's res4, not the 256 + dense channels of the concatenation
    resid, dense = torch.randn(2, 256, 4, 4), torch.randn(2, 96, 4, 4)
    out_resid, out_dense = unit.eval()((resid, dense))
    assert out_dense is dense and torch.equal(out_resid, resid)


def test_torch_export_of_a_glore_resnet():
    model = create_model("resnet_small", num_classes=5, glore="res3:1,res4:1").eval()
    for unit in model.modules():
        if isinstance(unit, GloRe):
            nn.init.constant_(unit.norm.weight, 0.3)  # let the units contribute, so the check sees them
    x = torch.randn(2, 3, 64, 64)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(exported.module()(x), expected)
        y = torch.randn(2, 3, 64, 64)
        torch.testing.assert_close(exported.module()(y), model(y))


@pytest.mark.slow
def test_torch_export_with_a_dynamic_batch():
    # order="auto" must not read the batch size: the exported program serves every batch size with one order.
    model = create_model("resnet50", glore="res3:2,res4:3", num_classes=10).eval()
    for unit in model.modules():
        if isinstance(unit, GloRe):
            nn.init.constant_(unit.norm.weight, 0.3)
    batch = torch.export.Dim("batch", min=1, max=64)
    exported = torch.export.export(model, (torch.randn(2, 3, 32, 32),), dynamic_shapes=({0: batch},))
    with torch.no_grad():
        for n in (1, 3):
            y = torch.randn(n, 3, 32, 32)
            torch.testing.assert_close(exported.module()(y), model(y))
