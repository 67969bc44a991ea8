"""Weights: torchvision checkpoints into glore networks, save_pretrained round trips, clear mismatch errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from glore.layers import GloRe
from glore.models import _builder as builder
from glore.models import create_model, load_pretrained

TORCHVISION_KEYS = json.loads((Path(__file__).parent / "torchvision_resnet_keys.json").read_text())


def torchvision_checkpoint(name: str, *, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random state dict with torchvision's key names and shapes for ``name`` (from the fixture)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in TORCHVISION_KEYS[name].items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.05
    return state


@pytest.mark.parametrize("name", ["resnet18", "resnext50_32x4d"])
def test_torchvision_checkpoint_loads_with_units_at_identity(tmp_path, name):
    state = torchvision_checkpoint(name)
    path = tmp_path / f"{name}.pth"
    torch.save(state, path)
    plain = create_model(name, pretrained=path).eval()
    model = create_model(name, glore="res3:1,res4:2", pretrained=path).eval()
    own = model.state_dict()
    for key, value in state.items():
        assert torch.equal(own[key], value), key
    units = [m for m in model.modules() if isinstance(m, GloRe)]
    assert len(units) == 3 and all(torch.count_nonzero(u.norm.weight) == 0 for u in units)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), plain(x))


def test_checkpoint_variants_load(tmp_path):
    state = torchvision_checkpoint("resnet18")
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}  # pre-2018 torchvision files
    wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}}  # a DataParallel training checkpoint
    for i, payload in enumerate((old, wrapped)):
        torch.save(payload, tmp_path / f"{i}.pth")
        model = create_model("resnet18", pretrained=tmp_path / f"{i}.pth")
        assert torch.equal(model.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    from safetensors.torch import save_file

    save_file(state, tmp_path / "w.safetensors")
    model = create_model("resnet18", pretrained=str(tmp_path / "w.safetensors"))
    assert torch.equal(model.fc.weight, state["fc.weight"])


def test_other_num_classes_keeps_a_fresh_classifier(tmp_path):
    state = torchvision_checkpoint("resnet18")
    torch.save(state, tmp_path / "r18.pth")
    with pytest.warns(UserWarning, match="classifier"):
        model = create_model("resnet18", num_classes=200, pretrained=tmp_path / "r18.pth")
    assert model.fc.weight.shape == (200, 512)
    assert torch.equal(model.conv1.weight, state["conv1.weight"])


def test_mismatches_are_listed(tmp_path):
    state = torchvision_checkpoint("resnet18")
    del state["layer2.0.downsample.0.weight"]
    state["layer5.0.conv1.weight"] = torch.zeros(1)
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError) as info:
        create_model("resnet18", pretrained=tmp_path / "bad.pth")
    message = str(info.value)
    assert "missing keys (1): layer2.0.downsample.0.weight" in message
    assert "unexpected keys (1): layer5.0.conv1.weight" in message
    assert "layer1.0.conv1.weight: checkpoint (64, 64, 1, 1) vs model (64, 64, 3, 3)" in message
    with pytest.raises(ValueError, match="missing keys"):  # a ResNet-18 checkpoint is not a ResNet-34's
        create_model("resnet34", pretrained=tmp_path / "bad.pth")
    with pytest.raises(FileNotFoundError, match="no such file"):
        create_model("resnet18", pretrained=tmp_path / "absent.pth")


def test_urls_go_through_torch_hub_with_weights_only(monkeypatch):
    state = torchvision_checkpoint("resnet18")
    calls = []

    def fake_load(url, **kwargs):
        calls.append((url, kwargs))
        return state

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_load)
    model = create_model("resnet18", glore="res4:1", pretrained="https://example.org/resnet18.pth")
    assert calls[0][0] == "https://example.org/resnet18.pth" and calls[0][1]["weights_only"] is True
    assert torch.equal(model.fc.bias, state["fc.bias"])


def test_weights_only_refuses_pickled_objects(tmp_path):
    torch.save({"model": {"conv1.weight": torch.zeros(1)}, "obj": Path("x")}, tmp_path / "pickle.pth")
    with pytest.raises(Exception, match="[Ww]eights only|weights_only|Unsupported"):
        create_model("resnet18", pretrained=tmp_path / "pickle.pth")


@pytest.mark.parametrize("name", ["resnet_small", "dpn68"])
def test_save_pretrained_round_trip(tmp_path, name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=6, glore="res3:1,res4:1", glore_args={"num_nodes": 8, "order": "direct"})
    for unit in model.modules():
        if isinstance(unit, GloRe):
            torch.nn.init.normal_(unit.norm.weight)  # trained units: no longer the identity
    model.train()(torch.randn(4, 3, 64, 64))  # move the BN running statistics
    out_dir = model.save_pretrained(tmp_path / "saved")
    assert sorted(p.name for p in out_dir.iterdir()) == ["config.json", "model.safetensors"]
    loaded = create_model(pretrained=out_dir)
    assert loaded.model_config == model.model_config
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k1 == k2 and torch.equal(v1, v2)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), loaded.eval()(x))
    assert create_model(name, pretrained=out_dir).model_config["name"] == name
    assert create_model(pretrained=out_dir, num_classes=3)(x).shape == (2, 3)


def test_save_pretrained_errors(tmp_path):
    model = create_model("resnet_small")
    model.save_pretrained(tmp_path / "s")
    with pytest.raises(ValueError, match="differs from the network saved"):
        create_model("resnet18", pretrained=tmp_path / "s")
    with pytest.raises(ValueError, match="fixes the architecture"):
        create_model(pretrained=tmp_path / "s", glore="res4:1")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        create_model(pretrained=tmp_path / "empty")
    bare = builder.GloreNet()
    with pytest.raises(RuntimeError, match="create_model"):
        bare.save_pretrained(tmp_path / "x")


def test_headless_backbone_from_imagenet_weights(tmp_path):
    state = torchvision_checkpoint("resnet18")
    torch.save(state, tmp_path / "r18.pth")
    model = create_model("resnet18", num_classes=0, glore="res4:1", pretrained=tmp_path / "r18.pth").eval()
    assert isinstance(model.fc, torch.nn.Identity) and "fc.weight" not in model.state_dict()
    assert torch.equal(model.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 512)  # pooled features


def test_num_classes_given_with_a_saved_directory_is_applied(tmp_path):
    model = create_model("resnet_small", num_classes=6)
    model.save_pretrained(tmp_path / "s")
    assert create_model(pretrained=tmp_path / "s").fc.out_features == 6  # not given: the saved count
    rebuilt = create_model(pretrained=tmp_path / "s", num_classes=1000)  # 1000 was read as "not given"
    assert rebuilt.fc.out_features == 1000 and rebuilt.model_config["num_classes"] == 1000
    assert torch.equal(rebuilt.conv1.weight, model.conv1.weight)
    headless = create_model(pretrained=tmp_path / "s", num_classes=0)
    assert isinstance(headless.fc, torch.nn.Identity)


def test_num_classes_not_given_is_the_networks_default():
    with torch.device("meta"):
        assert create_model("resnet18").model_config["num_classes"] == 1000
        assert create_model("fcn_resnet_small").num_classes == 19
        assert create_model("resnet_small_3d").model_config["num_classes"] == 400


# ----------------------------------------------------------------------------------------------------------------
# Errors that name the argument or the file.


@pytest.mark.parametrize("value", [True, 3, ["a.pth"]])
def test_pretrained_must_be_a_path_or_url(value):
    with pytest.raises(TypeError, match=r"pretrained must be a checkpoint file's path, an http\(s\) URL or a save"):
        create_model("resnet_small", pretrained=value)


def test_pretrained_url_while_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))  # no cached copy; nothing written to the home folder
    with pytest.raises(ValueError, match=r"pretrained: cannot download 'http://127\.0\.0\.1:9/x\.pth' \(.*\); check"):
        create_model("resnet_small", pretrained="http://127.0.0.1:9/x.pth")


def test_unreadable_pretrained_files_are_named(tmp_path):
    text = tmp_path / "README.pth"
    text.write_text("# not a checkpoint\n")
    whole = tmp_path / "whole.pth"
    torch.save(torchvision_checkpoint("resnet18"), whole)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(64)}, tmp_path / "full.safetensors")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes((tmp_path / "full.safetensors").read_bytes()[:-100])
    for path in (text, truncated, empty, cut):
        with pytest.raises(ValueError, match=rf"pretrained: '{path}' is not a readable checkpoint"):
            create_model("resnet18", pretrained=path)
    saved = create_model("resnet_small").save_pretrained(tmp_path / "dir")
    (saved / "model.safetensors").write_bytes(b"{}")
    with pytest.raises(ValueError, match="model.safetensors' is not a readable checkpoint"):
        create_model(pretrained=saved)


def test_another_architecture_or_class_count_names_the_first_keys(tmp_path):
    with torch.device("meta"):
        dpn = create_model("dpn68", num_classes=10)
    state = {k: torch.zeros(v.shape) for k, v in dpn.state_dict().items()}
    resnet = create_model("resnet_small")
    own = resnet.state_dict()
    with pytest.raises(ValueError) as info:
        load_pretrained(resnet, state)
    message = str(info.value)
    common = len(set(state) & set(own))
    assert 0 < 2 * common < len(own)
    assert f"do not fit ResNet; only {common} of its {len(own)} keys are in the checkpoint: a checkpoint of" in message
    assert "unexpected keys" in message and "layer1.0.proj.bn.weight" in message and "more)" in message
    assert "conv1.weight: checkpoint (10, 3, 3, 3) vs model (32, 3, 3, 3)" in message
    # A glore checkpoint's class count is part of its architecture: strict loading refuses another one.
    small = create_model("resnet_small", num_classes=10)
    with pytest.raises(ValueError, match=r"fc\.weight: checkpoint \(10, 256\) vs model \(5, 256\)"):
        load_pretrained(create_model("resnet_small", num_classes=5), small.state_dict(), strict=True)
    torch.save(small.state_dict(), tmp_path / "s.pth")
    with pytest.raises(ValueError, match=r"pretrained weights from '.*s\.pth' do not fit ResNet"):
        create_model("resnet18", pretrained=tmp_path / "s.pth")


@pytest.mark.parametrize(
    "value,error,pattern",
    [
        (-1, ValueError, r"num_classes must be a non-negative integer \(0: no classifier\), got -1"),
        (2.5, TypeError, r"num_classes must be a non-negative integer .* got 2\.5 of type float"),
        ("10", TypeError, r"num_classes must be a non-negative integer .* got '10' of type str"),
        (True, TypeError, r"got True of type bool"),
    ],
)
def test_bad_num_classes(value, error, pattern):
    with pytest.raises(error, match=pattern):
        create_model("resnet_small", num_classes=value)
    with pytest.raises(error, match=pattern):
        create_model("resnet_small").reset_classifier(value)


def test_glore_args_without_a_spec_are_refused():
    for glore in (None, "", {}):
        with pytest.raises(ValueError, match=r"glore_args \{'num_nodes': 8\} given but glore=.* inserts no units"):
            create_model("resnet_small", glore=glore, glore_args={"num_nodes": 8})
    assert create_model("resnet_small", glore_args={}).model_config["glore_args"] is None  # empty is no options


def test_save_pretrained_writes_atomically(tmp_path, monkeypatch):
    import os

    import safetensors.torch

    model = create_model("resnet_small", num_classes=4)
    out = model.save_pretrained(tmp_path / "s")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    umask = os.umask(0)
    os.umask(umask)
    assert all((p.stat().st_mode & 0o777) == (0o666 & ~umask) for p in out.iterdir())  # not mkstemp's 0600

    def failing_save(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", failing_save)
    with pytest.raises(OSError, match="disk full"):
        create_model("resnet_small", num_classes=4).save_pretrained(out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the old files intact, no temporary left
