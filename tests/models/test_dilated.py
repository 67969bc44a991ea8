"""Dilated ResNets (output stride 8 and 16): torchvision's keys, the output stride, the dilation of every conv.

The strongest check is the a-trous identity: replacing a stride-2 convolution by a stride-1 one and dilating every
later 3x3 by 2 computes the same values at every second position. So, with the same weights and in eval mode, the
dilated network's last feature map sampled every 32/OS pixels must equal the undilated network's, which holds
only if every stride, dilation and padding sits where torchvision's ``replace_stride_with_dilation`` puts it (a first
block dilated like the rest, as mmsegmentation does without ``contract_dilation``, breaks it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from glore.models import create_model
from glore.models.resnet import stage_strides

TORCHVISION_KEYS = json.loads((Path(__file__).parent / "torchvision_resnet_keys.json").read_text())


def _shapes(model: nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnext50_32x4d"])
@pytest.mark.parametrize("output_stride", [8, 16])
def test_dilated_keys_are_torchvisions(name: str, output_stride: int) -> None:
    with torch.device("meta"):
        dilated = create_model(name, output_stride=output_stride)
        plain = create_model(name)
    assert _shapes(dilated) == TORCHVISION_KEYS[name]
    assert list(dilated.state_dict()) == list(plain.state_dict())


def test_stage_strides_table() -> None:
    # ImageNet stem (reduction 4): mmsegmentation's FCN-D8 dilations 1, 1, 2, 4 and D16's 1, 1, 1, 2.
    assert stage_strides(4, 8) == ((1, 2, 1, 1), (1, 1, 2, 4))
    assert stage_strides(4, 16) == ((1, 2, 2, 1), (1, 1, 1, 2))
    assert stage_strides(4, 32) == ((1, 2, 2, 2), (1, 1, 1, 1))
    assert stage_strides(4, None) == ((1, 2, 2, 2), (1, 1, 1, 1))
    # resnet_small's stem reduces by 2: output strides 4, 8, 16.
    assert stage_strides(2, 4) == ((1, 2, 1, 1), (1, 1, 2, 4))
    assert stage_strides(2, 8) == ((1, 2, 2, 1), (1, 1, 1, 2))


@pytest.mark.parametrize("bad", [4, 12, 64, 8.0, True, "8"])
def test_bad_output_stride(bad: object) -> None:
    with pytest.raises(ValueError, match=r"output_stride must be one of \(8, 16, 32\).*got"):
        with torch.device("meta"):
            create_model("resnet50", output_stride=bad)


def _conv_table(model: nn.Module, stage: str, conv: str) -> list[tuple[int, int]]:
    """(stride, dilation) of ``conv`` in each block of ``stage``."""
    return [(getattr(b, conv).stride[0], getattr(b, conv).dilation[0]) for b in getattr(model, stage)]


def test_bottleneck_dilations_per_conv() -> None:
    with torch.device("meta"):
        os8 = create_model("resnet50", output_stride=8)
        os16 = create_model("resnet50", output_stride=16)
    # torchvision's replace_stride_with_dilation=[False, True, True]: the first block of a dilated stage keeps
    # the previous stage's dilation in its 3x3 (stride 1), the other blocks get the stage's.
    assert _conv_table(os8, "layer2", "conv2") == [(2, 1), (1, 1), (1, 1), (1, 1)]
    assert _conv_table(os8, "layer3", "conv2") == [(1, 1)] + [(1, 2)] * 5
    assert _conv_table(os8, "layer4", "conv2") == [(1, 2), (1, 4), (1, 4)]
    assert _conv_table(os16, "layer3", "conv2") == [(2, 1)] + [(1, 1)] * 5
    assert _conv_table(os16, "layer4", "conv2") == [(1, 1), (1, 2), (1, 2)]
    for model in (os8, os16):
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                assert m.padding[0] == m.dilation[0] * (m.kernel_size[0] // 2)  # same size at stride 1
                assert m.kernel_size[0] == 3 or m.dilation[0] == 1  # 1x1 and the stem are never dilated
    # The shortcut of a stage whose stride became dilation is a stride-1 projection.
    assert os8.layer3[0].downsample[0].stride == (1, 1) and os8.layer4[0].downsample[0].stride == (1, 1)
    assert os16.layer3[0].downsample[0].stride == (2, 2) and os16.layer4[0].downsample[0].stride == (1, 1)
    assert os8.dilations == (1, 1, 2, 4) and os16.dilations == (1, 1, 1, 2)
    assert [i["reduction"] for i in os8.feature_info] == [4, 8, 8, 8]
    assert [i["reduction"] for i in os16.feature_info] == [4, 8, 16, 16]


def test_basic_block_dilations_per_conv() -> None:
    with torch.device("meta"):
        os8 = create_model("resnet18", output_stride=8, preact=False)
    # The first 3x3 of a block takes the stride (v1.5) and the previous dilation; the second the stage's.
    assert _conv_table(os8, "layer3", "conv1") == [(1, 1), (1, 2)]
    assert _conv_table(os8, "layer3", "conv2") == [(1, 2), (1, 2)]
    assert _conv_table(os8, "layer4", "conv1") == [(1, 2), (1, 4)]
    assert _conv_table(os8, "layer4", "conv2") == [(1, 4), (1, 4)]


@pytest.mark.parametrize(
    ("name", "kwargs", "size", "strides"),
    [
        ("resnet_small", {}, 64, (16, 8, 4)),
        ("resnet_small", {"preact": True}, 64, (16, 8, 4)),
        ("resnet18", {}, 64, (32, 16, 8)),
        ("resnet50", {}, 64, (32, 16, 8)),
        ("resnext50_32x4d", {"glore": "res4:1"}, 64, (32, 16)),
    ],
)
def test_output_stride_and_a_trous_identity(name: str, kwargs: dict, size: int, strides: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    plain = create_model(name, num_classes=0, **kwargs).double().eval()
    for m in plain.modules():  # non-trivial norms and units, so a misplaced dilation cannot hide
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    with torch.no_grad():
        reference = plain.forward_features(x)
    assert reference.shape[-1] == size // strides[0]
    for output_stride in strides[1:]:
        dilated = create_model(name, num_classes=0, output_stride=output_stride, **kwargs).double().eval()
        dilated.load_state_dict(plain.state_dict())
        with torch.no_grad():
            features = dilated.forward_features(x)
        assert dilated.output_stride == output_stride
        assert features.shape == (2, plain.num_features, size // output_stride, size // output_stride)
        step = strides[0] // output_stride
        # (2, C, H/OS, W/OS) sampled every `step` positions -> (2, C, H/32, W/32)
        torch.testing.assert_close(features[..., ::step, ::step], reference, rtol=1e-9, atol=1e-9)


def test_dilated_model_config_round_trip() -> None:
    with torch.device("meta"):
        model = create_model("resnet50", output_stride=16, glore="res4:1")
        again = create_model(**model.model_config)
    assert model.model_config["output_stride"] == 16
    assert again.dilations == (1, 1, 1, 2)
    assert _shapes(again) == _shapes(model)
