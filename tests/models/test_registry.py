"""The registry and create_model: names, errors, model_config round trip."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from glore.models import (
    IMAGENET_CFG,
    create_model,
    get_default_cfg,
    is_model,
    list_models,
    register_model,
    resolve_data_config,
)
from glore.models._registry import check_default_cfg

PAPER_NAMES = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnet200", "seresnet50", "seresnet101",
    "resnext50_32x4d", "resnext101_32x4d", "resnet_small",
]  # fmt: skip


def test_the_issue_names_are_registered():
    for name in PAPER_NAMES:
        assert is_model(name), name
    assert list_models("resnet1*") == ["resnet101", "resnet101_3d", "resnet101d", "resnet152", "resnet18"]
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


# -- default configs ------------------------------------------------------------------------------------------------


def test_every_model_has_a_default_config_of_its_task():
    for name in list_models():
        cfg = get_default_cfg(name)
        assert check_default_cfg(cfg) == cfg, name
        assert set(IMAGENET_CFG) <= set(cfg), name
    assert get_default_cfg("resnet50") == IMAGENET_CFG
    assert get_default_cfg("fcn_resnet101")["input_size"] == (3, 1024, 2048)
    video = get_default_cfg("resnet50_3d")
    assert video["task"] == "video" and video["input_size"] == (3, 8, 224, 224) and video["frame_interval"] == 8
    assert {get_default_cfg(n)["task"] for n in list_models("fcn_*")} == {"segmentation"}
    assert {get_default_cfg(n)["task"] for n in list_models("*_3d")} == {"video"}


@pytest.mark.parametrize(
    "name", ["resnet50", "resnet_small", "dpn68", "fcn_resnet50", "fcn_resnet_small", "resnet50_3d"]
)
def test_the_default_input_size_runs_through_the_network(name):
    with torch.device("meta"):  # shapes only
        model = create_model(name).eval()
        cfg = model.default_cfg
        out = model(torch.empty(1, *cfg["input_size"]))
    logits = out["out"] if isinstance(out, dict) else out
    spatial = tuple(cfg["input_size"][-2:]) if cfg["task"] == "segmentation" else ()  # FCN logits: input size
    assert tuple(logits.shape) == (1, cfg["num_classes"], *spatial)


def test_default_cfg_overlay_is_kept_by_checkpoints_and_save_pretrained(tmp_path):
    mxnet = {"mean": [124 / 255, 117 / 255, 104 / 255], "std": [1 / (0.0167 * 255)] * 3}
    model = create_model("resnet_small", num_classes=3, default_cfg=mxnet)
    assert model.default_cfg["mean"] == tuple(mxnet["mean"]) and model.default_cfg["num_classes"] == 3
    assert model.default_cfg["input_size"] == (3, 64, 64)  # the rest stays the registered config
    assert json.loads(json.dumps(model.model_config))["default_cfg"] == mxnet
    again = create_model(pretrained=model.save_pretrained(tmp_path / "saved"))
    assert again.default_cfg == model.default_cfg
    wider = create_model(pretrained=tmp_path / "saved", default_cfg={"input_size": [3, 96, 96]})
    assert wider.default_cfg["input_size"] == (3, 96, 96) and wider.default_cfg["mean"] == tuple(mxnet["mean"])
    model.reset_classifier(5)
    assert model.default_cfg["num_classes"] == 5
    assert "default_cfg" not in create_model("resnet_small").model_config  # only an overlay is recorded


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"mena": [0.5] * 3}, r"default_cfg.mena: unknown key \(did you mean 'mean'\?\)"),
        ({"input_size": [224, 224]}, r"default_cfg.input_size: expected \(C, H, W\) or \(C, T, H, W\)"),
        ({"std": [0.2, 0.0, 0.2]}, "default_cfg.std: expected 1 or 3 positive numbers"),
        ({"crop_pct": 1.5}, r"default_cfg.crop_pct: expected a fraction in \(0, 1\]"),
        ({"interpolation": "cubic"}, "default_cfg.interpolation: expected 'bilinear' or 'bicubic' or 'nearest'"),
        ({"eval_mode": "tiles"}, "default_cfg.eval_mode: expected 'whole' or 'slide'"),
        ({"frame_interval": 0}, "default_cfg.frame_interval: expected an integer >= 1"),
    ],
)
def test_a_malformed_default_cfg_is_refused_naming_the_key(cfg, message):
    with pytest.raises(ValueError, match=message):
        create_model("resnet_small", default_cfg=cfg)


def test_resolve_data_config_reads_the_network_and_lets_config_win():
    model = create_model("resnet_small", num_classes=2)
    assert resolve_data_config(model)["input_size"] == (3, 64, 64)
    resolved = resolve_data_config(model, config={"input_size": (3, 224, 224), "crop_pct": 0.875})
    assert resolved["input_size"] == (3, 224, 224) and resolved["resize_size"] == 256
    assert resolved["num_classes"] == 2
    video = resolve_data_config(name="resnet101_3d")
    assert video["num_frames"] == 8 and video["resize_size"] == 256 and video["frame_interval"] == 8
    bare = nn.Sequential(nn.Conv2d(3, 4, 3))  # not from create_model: the ImageNet default
    assert resolve_data_config(bare)["input_size"] == IMAGENET_CFG["input_size"]
    with pytest.raises(ValueError, match="default_cfg.image_size: unknown key"):
        resolve_data_config(model, config={"image_size": 32})
