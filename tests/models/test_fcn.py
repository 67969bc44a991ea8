"""FCN segmentation networks: identity of a fresh context head, shapes, the aux contract, gradients, round trips,
torchvision-layout backbone weights, and the layout checked against torchvision's published FCN figures."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from glore.layers import GloRe, NonLocal
from glore.models import create_model, list_models
from glore.models.fcn import FCN
from glore.tools.profile import profile_model

TORCHVISION_KEYS = json.loads((Path(__file__).parent / "torchvision_resnet_keys.json").read_text())


def _small(**kwargs) -> FCN:
    return create_model("fcn_resnet_small", **{"num_classes": 5, **kwargs})


def test_registered() -> None:
    assert {"fcn_resnet50", "fcn_resnet101", "fcn_resnet_small"} <= set(list_models("fcn_*"))


@pytest.mark.parametrize("head", ["glore", "nonlocal"])
@pytest.mark.parametrize("backbone_units", [None, "res4:1"])
def test_fresh_context_head_is_identity(head: str, backbone_units: str | None) -> None:
    torch.manual_seed(0)
    plain = _small(head="fcn", dropout=0.0, glore=backbone_units)
    model = _small(head=head, dropout=0.0, glore=backbone_units)
    missing, unexpected = model.load_state_dict(plain.state_dict(), strict=False)
    assert unexpected == [] and missing and all(k.startswith("head.unit.") for k in missing)
    unit_type = GloRe if head == "glore" else NonLocal
    assert isinstance(model.head.unit, unit_type) and isinstance(plain.head.unit, nn.Identity)
    x = torch.randn(2, 3, 64, 96)
    for train in (True, False):
        plain.train(train)
        model.train(train)
        a, b = plain(x), model(x)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (head, train, key)
    # The unit does change the output once its output norm is not zero.
    nn.init.ones_(model.head.unit.norm.weight)
    assert not torch.equal(plain(x)["out"], model(x)["out"])


@pytest.mark.parametrize("output_stride", [4, 8, 16])
def test_small_shapes(output_stride: int) -> None:
    model = _small(output_stride=output_stride).eval()
    x = torch.randn(2, 3, 128, 96)
    res4, res5 = model.forward_stages(x)
    assert res5.shape == (2, 256, 128 // output_stride, 96 // output_stride)
    # resnet_small's res4 is at 1/8 undilated: dilated only for output stride 4.
    assert res4.shape == (2, 128, 128 // min(output_stride, 8), 96 // min(output_stride, 8))
    assert model.forward_head(res5).shape == (2, 5, *res5.shape[-2:])
    assert model.forward_head(res5, pre_logits=True).shape == (2, 64, *res5.shape[-2:])
    assert model(x)["out"].shape == (2, 5, 128, 96)


@pytest.mark.parametrize(("name", "output_stride"), [("fcn_resnet50", 8), ("fcn_resnet50", 16), ("fcn_resnet101", 8)])
def test_large_shapes_on_meta(name: str, output_stride: int) -> None:
    with torch.device("meta"):
        model = create_model(name, num_classes=19, output_stride=output_stride)
        x = torch.empty(2, 3, 512, 1024)
        res4, res5 = model.forward_stages(x)
        out = model(x)
    assert res5.shape == (2, 2048, 512 // output_stride, 1024 // output_stride)
    assert res4.shape == (2, 1024, 512 // output_stride, 1024 // output_stride)  # res4 is dilated only at 8
    assert out["out"].shape == out["aux"].shape == (2, 19, 512, 1024)
    assert model.feature_info[3]["reduction"] == output_stride and model.output_stride == output_stride


def test_aux_contract() -> None:
    model = _small()
    x = torch.randn(1, 3, 64, 64)
    assert set(model.train()(x)) == {"out", "aux"}
    assert set(model.train()(x, aux=False)) == {"out"}
    assert set(model.eval()(x)) == {"out"}
    both = model.eval()(x, aux=True)
    assert set(both) == {"out", "aux"} and both["aux"].shape == (1, 5, 64, 64)
    no_aux = _small(aux=False)
    assert no_aux.aux_head is None and set(no_aux.train()(x)) == {"out"}
    with pytest.raises(ValueError, match="aux=False"):
        no_aux(x, aux=True)


def test_logits_are_bilinear_upsampling_of_the_heads() -> None:
    model = _small().eval()
    x = torch.randn(1, 3, 80, 64)
    res4, res5 = model.forward_stages(x)
    out = model(x, aux=True)
    expected = F.interpolate(model.head(res5), size=(80, 64), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out["out"], expected)
    expected = F.interpolate(model.aux_head(res4), size=(80, 64), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out["aux"], expected)


@pytest.mark.parametrize("head", ["glore", "nonlocal", "fcn"])
def test_gradients_reach_every_parameter(head: str) -> None:
    torch.manual_seed(0)
    model = _small(head=head, glore="res4:1")
    for m in model.modules():  # open the zero-initialised units so their inner weights get gradients too
        if isinstance(m, GloRe | NonLocal):
            nn.init.constant_(m.norm.weight, 0.5)
    x = torch.randn(2, 3, 64, 64)
    target = torch.randint(0, 5, (2, 64, 64))
    target[0, :8] = 255
    out = model(x)
    loss = F.cross_entropy(out["out"], target, ignore_index=255) + 0.4 * F.cross_entropy(
        out["aux"], target, ignore_index=255
    )
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_model_config_round_trip_and_save_pretrained(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _small(head="nonlocal", output_stride=16, glore="res4:1", unit_args={"zero_init": True}, dropout=0.2)
    config = model.model_config
    assert config["name"] == "fcn_resnet_small" and config["glore"] == {"res4": [1]}
    json.dumps(config)
    again = create_model(**config)
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    assert isinstance(again.head.unit, NonLocal) and again.output_stride == 16 and again.head.dropout.p == 0.2
    model.save_pretrained(tmp_path / "fcn")
    loaded = create_model(pretrained=str(tmp_path / "fcn")).eval()
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(loaded(x)["out"], model.eval()(x)["out"], rtol=0, atol=0)
    assert loaded.model_config == config
    # Another class count: fresh classifiers for both heads.
    other = create_model(pretrained=str(tmp_path / "fcn"), num_classes=3)
    assert other(x, aux=True)["aux"].shape == (1, 3, 64, 64) and other.model_config["num_classes"] == 3


def _fake_torchvision_checkpoint(name: str, path: Path) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    state = {}
    for key, shape in TORCHVISION_KEYS[name].items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        else:
            state[key] = torch.randn(shape, generator=generator)
    torch.save(state, path)
    return state


def test_pretrained_backbone_loads_torchvision_layout(tmp_path: Path) -> None:
    state = _fake_torchvision_checkpoint("resnet50", tmp_path / "resnet50.pth")
    model = create_model(
        "fcn_resnet50", num_classes=19, glore="res4:1", pretrained_backbone=str(tmp_path / "resnet50.pth")
    )
    backbone = model.backbone.state_dict()
    for key, value in state.items():
        if key.startswith("fc."):
            assert key not in backbone
        else:
            assert torch.equal(backbone[key], value), key
    unit = model.backbone.layer3.glore1
    assert torch.equal(unit.norm.weight, torch.zeros_like(unit.norm.weight))  # backbone unit left at identity
    # Weights are not architecture: the source is not in model_config, so a checkpoint rebuilds anywhere.
    assert "pretrained_backbone" not in model.model_config
    assert create_model(**model.model_config).backbone.state_dict().keys() == backbone.keys()


def test_pretrained_backbone_errors(tmp_path: Path) -> None:
    _fake_torchvision_checkpoint("resnet18", tmp_path / "resnet18.pth")
    with pytest.raises(ValueError, match=r"shape mismatches|missing keys"):
        _small(backbone="resnet50", pretrained_backbone=str(tmp_path / "resnet18.pth"))
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        _small(pretrained_backbone=str(tmp_path / "nope.pth"))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"head": "psp"}, ValueError, r"head must be one of \('glore', 'fcn', 'nonlocal'\), got 'psp'"),
        ({"output_stride": 32}, ValueError, r"output_stride must be one of \(4, 8, 16\)"),
        ({"backbone": "dpn68"}, ValueError, "backbone must be a ResNet-family network"),
        ({"backbone": "resnet5O"}, ValueError, "unknown model name 'resnet5O'"),
        ({"unit_args": {"nodes": 3}}, TypeError, "unit_args: unknown option 'nodes'"),
        ({"head": "fcn", "unit_args": {"normalize": False}}, TypeError, "head='fcn' has no unit"),
        ({"dropout": 1.5}, ValueError, r"dropout must be a probability in \[0, 1\), got 1.5"),
        ({"head_channels": 0}, ValueError, "head_channels must be a positive int, got 0"),
        ({"backbone_args": {"output_stride": 8}}, ValueError, "backbone_args may not set 'output_stride'"),
        ({"head_chanels": 8}, TypeError, "did you mean 'head_channels'"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    with torch.device("meta"), pytest.raises(error, match=match):
        _small(**kwargs)


def test_unit_args_reach_the_head_unit() -> None:
    model = _small(unit_args={"normalize": False, "order": "direct", "gcn_layers": 2}, num_nodes=8, num_state=12)
    unit = model.head.unit
    assert (unit.normalize, unit.order, unit.gcn_layers, unit.num_nodes, unit.num_state) == (False, "direct", 2, 8, 12)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _small(unit_args={"zero_init": False})
    assert any("zero_init=False" in str(w.message) for w in caught)


def test_paddleseg_head_layout_parameter_count() -> None:
    with torch.device("meta"):
        model = create_model("fcn_resnet50", num_classes=19)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # 1x1 2048->512 (no bias) + BN; classifier 512->19 with bias.
    assert count(model.head) - count(model.head.unit) == 2048 * 512 + 2 * 512 + 512 * 19 + 19
    # GloRe(512, 64 nodes, 128 state): W_s, W_b with biases, A_g with bias, W_g, W_e, the output BN.
    s, n, c = 128, 64, 512
    assert count(model.head.unit) == (c * s + s) + (c * n + n) + (n * n + n) + s * s + s * c + 2 * c
    # Aux: 3x3 1024->256 (no bias) + BN; classifier 256->19 with bias.
    assert count(model.aux_head) == 1024 * 256 * 9 + 2 * 256 + 256 * 19 + 19


def test_layout_matches_torchvisions_published_fcn_figures() -> None:
    # torchvision's fcn_resnet50 / fcn_resnet101 (COCO_WITH_VOC_LABELS_V1 metadata): 35,322,218 / 54,314,346
    # parameters and 152.717 / 232.738 GFLOPs at 520x520, for a head whose first conv is 3x3 (glore's is PaddleSeg's
    # 1x1), 21 classes and the aux head: the same dilated backbone at output stride 8 and the same aux head.
    for name, params, gflops in (("fcn_resnet50", 35_322_218, 152.717), ("fcn_resnet101", 54_314_346, 232.738)):
        with torch.device("meta"):
            model = create_model(name, num_classes=21, head="fcn")
            model.head.conv[0] = nn.Conv2d(2048, 512, 3, padding=1, bias=False)
        assert sum(p.numel() for p in model.parameters()) == params
        prof = profile_model(model, (520, 520))
        assert round(prof.total_macs / 1e9, 3) == gflops


def test_profile_parts() -> None:
    model = _small(glore="res4:1")
    prof = profile_model(model, (64, 128))
    assert list(prof.params) == ["stem", "res2", "res3", "res4", "res5", "head", "unit", "aux"]
    assert prof.total_params == sum(p.numel() for p in model.parameters())
    assert prof.params["unit"] == sum(p.numel() for p in model.head.unit.parameters())
    assert prof.params["aux"] == sum(p.numel() for p in model.aux_head.parameters())
    # The head's unit on its (1, 64, 8, 16) input, in the order it picks; both units counted as GloRe units.
    unit = model.head.unit
    shape = (1, 64, 8, 16)
    assert prof.macs["unit"] == unit.macs(shape)[unit.resolve_order(shape)]
    backbone_unit = model.backbone.layer3.glore1
    backbone_shape = (1, 128, 8, 16)  # res4 of resnet_small at 1/8
    assert (
        prof.glore_macs
        == prof.macs["unit"] + backbone_unit.macs(backbone_shape)[backbone_unit.resolve_order(backbone_shape)]
    )
    # Per position of the 8x16 maps: the head's 1x1 256->64 and classifier 64->5; the aux 3x3 128->32 and 32->5.
    assert prof.macs["head"] == 8 * 16 * (256 * 64 + 64 * 5)
    assert prof.macs["aux"] == 8 * 16 * (128 * 32 * 9 + 32 * 5)
