"""The registry and create_model: names, errors, model_config round trip."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from glore.models import create_model, is_model, list_models, register_model

PAPER_NAMES = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnet200", "seresnet50", "seresnet101",
    "resnext50_32x4d", "resnext101_32x4d", "resnet_small",
]  # fmt: skip


def test_the_issue_names_are_registered():
    for name in PAPER_NAMES:
        assert is_model(name), name
    assert list_models("resnet1*") == ["resnet101", "resnet101_3d", "resnet152", "resnet18"]
    assert list_models() == sorted(list_models())


def test_duplicate_name_raises():
    with pytest.raises(ValueError, match="already registered"):

        @register_model
        def resnet50(**kwargs):  # noqa: F811
            return nn.Identity()


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match=r"unknown model name 'resnet5'.*'resnet50'"):
        create_model("resnet5")
    with pytest.raises(TypeError, match="model name must be a string"):
        create_model(50)


def test_unknown_kwarg_lists_close_matches():
    with pytest.raises(TypeError, match=r"unknown keyword argument 'pre_act'.*'preact'"):
        create_model("resnet18", pre_act=True)
    with pytest.raises(TypeError, match=r"'widht'.*'widths'"):
        create_model("resnet_small", widht=(8, 8, 8, 8))


def test_bad_architecture_values_raise():
    with pytest.raises(ValueError, match="depths must be 4 positive ints"):
        create_model("resnet_small", depths=(1, 1, 1))
    with pytest.raises(ValueError, match="block must be 'basic' or 'bottleneck'"):
        create_model("resnet_small", block="dense")
    with pytest.raises(ValueError, match="groups=1 and width_per_group=64"):
        create_model("resnet18", groups=2)
    with pytest.raises(TypeError, match="model name"):
        create_model()


def test_model_config_round_trip():
    model = create_model(
        "resnet_small", num_classes=5, glore="res3:1,res4:1", glore_args={"num_nodes": 4}, widths=(8, 16, 24, 32)
    )
    config = json.loads(json.dumps(model.model_config))
    rebuilt = create_model(**config)
    assert rebuilt.model_config == model.model_config
    assert [(k, v.shape) for k, v in rebuilt.state_dict().items()] == [
        (k, v.shape) for k, v in model.state_dict().items()
    ]
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(rebuilt.eval()(x), model.eval()(x))


def test_resnet_small_defaults_and_overrides():
    model = create_model("resnet_small")
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (2, 2)
    assert isinstance(model.maxpool, nn.Identity)
    assert [i["num_chs"] for i in model.feature_info] == [32, 64, 128, 256]
    assert [i["reduction"] for i in model.feature_info] == [2, 4, 8, 16]
    model = create_model("resnet_small", stem_stride=1, stem_pool=True, depths=(2, 1, 1, 1), widths=(8, 8, 16, 16))
    assert isinstance(model.maxpool, nn.MaxPool2d) and len(model.layer1) == 2
    assert [i["reduction"] for i in model.feature_info] == [2, 4, 8, 16]
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 1000)


def test_reset_classifier_and_pre_logits():
    model = create_model("resnet_small", num_classes=3)
    model.reset_classifier(11)
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 11) and model.model_config["num_classes"] == 11
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, model.num_features)
    model.reset_classifier(0)
    assert model(x).shape == (2, model.num_features)
