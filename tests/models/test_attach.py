"""attach(): units inserted into existing networks leave their outputs exactly unchanged."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from glore.layers import GloRe
from glore.models import attach, create_model
from glore.models.attach import infer_stage_channels

TORCHVISION_KEYS = json.loads((Path(__file__).parent / "torchvision_resnet_keys.json").read_text())


# A ResNet with torchvision's structure and names, written here from torchvision/models/resnet.py's description:
# the network attach() must handle without torchvision installed.
class TVBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class TVResNet(nn.Module):
    def __init__(self, layers: tuple[int, ...] = (3, 4, 6, 3), num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * 4, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4)
            )
        layers = [TVBottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * 4
        layers += [TVBottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# timm's ResNet names its activations act1..act3 and keeps an (optional) attention gate in the block as `se`.
class TimmBasicBlock(nn.Module):
    def __init__(self, chs: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(chs, chs, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(chs)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(chs, chs, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(chs)
        self.se = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(chs, 4, 1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Conv2d(4, chs, 1),
            nn.Sigmoid(),
        )
        self.act2 = nn.ReLU(inplace=True)
        self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(out * self.se(out) + x)


class TimmResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.act1 = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        for i, n in enumerate((1, 2, 3, 1), start=1):
            setattr(self, f"layer{i}", nn.Sequential(*[TimmBasicBlock(16) for _ in range(n)]))
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.global_pool(x).flatten(1))


def _outputs_unchanged(model: nn.Module, spec, x: torch.Tensor, **unit_args) -> nn.Module:
    reference = copy.deepcopy(model)
    attach(model, spec, **unit_args)
    assert any(isinstance(m, GloRe) for m in model.modules())
    for train in (False, True):  # eval first: a train-mode forward moves the BN running statistics
        model.train(train)
        reference.train(train)
        with torch.no_grad():
            assert torch.equal(model(x), reference(x)), f"training={train}"
    return model


def test_attach_to_a_torchvision_structured_resnet():
    torch.manual_seed(0)
    model = TVResNet(layers=(1, 2, 3, 1))
    keys_before = list(model.state_dict())
    _outputs_unchanged(model, "res3:1,layer3:2", torch.randn(2, 3, 64, 64))
    assert model.layer2.glore1.channels == 512 and model.layer3.glore2.channels == 1024
    assert [n for n, _ in model.layer3.named_children()] == ["0", "glore1", "1", "2", "glore2"]
    # The existing weights keep their keys, so a checkpoint taken before attaching still loads.
    keys_after = list(model.state_dict())
    assert [k for k in keys_after if ".glore" not in k] == keys_before
    assert len(model.layer3) == 3 and isinstance(model.layer3[0], TVBottleneck)


def test_hand_written_torchvision_resnet50_has_torchvision_keys():
    # The structure written in this test is the one the fixture (read from torchvision's source) describes.
    with torch.device("meta"):
        model = TVResNet()
    assert [(k, list(v.shape)) for k, v in model.state_dict().items()] == list(TORCHVISION_KEYS["resnet50"].items())


def test_attach_to_a_timm_style_resnet_and_unit_args():
    torch.manual_seed(0)
    model = _outputs_unchanged(TimmResNet(), {"res4": [1, 3]}, torch.randn(2, 3, 32, 32), num_nodes=4, num_state=8)
    units = [m for m in model.modules() if isinstance(m, GloRe)]
    assert len(units) == 2 and all((u.channels, u.num_nodes, u.num_state) == (16, 4, 8) for u in units)


@pytest.mark.parametrize("name", ["resnet_small", "dpn68"])
def test_attach_to_glore_networks(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=4, glore="res3:1", depths=(1, 2, 3, 1))
    _outputs_unchanged(model, "res4:2", torch.randn(2, 3, 64, 64))
    expected = {"res3": [1], "res4": list(model.layer3.unit_positions())}
    assert model.model_config["glore"] == expected
    # model_config describes the attached network: rebuilding gives the same keys.
    rebuilt = create_model(**model.model_config)
    assert list(rebuilt.state_dict()) == list(model.state_dict())


def test_attached_units_follow_device_dtype_and_learn():
    model = create_model("resnet_small", num_classes=3).double()
    attach(model, "res4:1", order="direct")
    unit = model.layer3.glore1
    assert unit.conv_state.weight.dtype == torch.float64 and unit.order == "direct"
    nn.init.constant_(unit.norm.weight, 1.0)
    model(torch.randn(2, 3, 32, 32, dtype=torch.float64)).sum().backward()
    assert unit.conv_proj.weight.grad is not None and unit.conv_proj.weight.grad.abs().sum() > 0


def test_channel_inference_and_example_input():
    model = TVResNet(layers=(1, 1, 1, 1))
    assert [infer_stage_channels(getattr(model, f"layer{i}")) for i in range(1, 5)] == [256, 512, 1024, 2048]

    class Plain(nn.Module):  # a block ending in a convolution, with no norm to read
        def __init__(self, chs: int) -> None:
            super().__init__()
            self.conv = nn.Conv2d(chs, chs, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.conv(x)

    net = nn.Module()
    net.layer1 = nn.Sequential(Plain(6), Plain(6))
    net.forward = lambda x: net.layer1(x)  # type: ignore[method-assign]
    assert infer_stage_channels(net.layer1) == 6
    attach(net, "res2:1", example_input=torch.randn(1, 6, 8, 8))
    assert net.layer1.glore1.channels == 6


def test_attach_errors():
    with pytest.raises(TypeError, match="must be an nn.Module"):
        attach("resnet50", "res4:1")
    with pytest.raises(ValueError, match="no stages layer1..layer4"):
        attach(nn.Sequential(nn.Conv2d(3, 3, 1)), "res4:1")
    model = create_model("resnet_small", glore="res4:1")
    with pytest.raises(ValueError, match="already has GloRe units"):
        attach(model, "res4:1")
    with pytest.raises(ValueError, match="cannot place 2 units in a stage of 1 blocks"):
        attach(model, "res3:2")
    with pytest.warns(UserWarning, match="zero_init=False: the inserted units do not start as the identity"):
        attach(TVResNet((1, 1, 1, 1)), "res4:1", zero_init=False)
    with pytest.raises(TypeError, match="did you mean 'num_state'"):
        attach(TVResNet((1, 1, 1, 1)), "res4:1", num_states=8)
    with pytest.warns(UserWarning, match="paper never"):
        attach(TVResNet((1, 1, 1, 1)), "res5:1")
