"""Released GloRe networks of other frameworks: the file readers on files written here in those formats, the
converters' round trips on random glore networks, create_model(pretrained=...) with each format, glore convert.

The frameworks themselves are not installed in CI; benchmarks/compare_released_models.py checks the same
conversions against PaddlePaddle and MindSpore by hand (docs/models.md).
"""

from __future__ import annotations

import json
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from glore.cli import main
from glore.models import create_model
from glore.models.convert import (
    PADDLESEG_MEAN,
    checkpoint_format,
    convert_mindspore_checkpoint,
    convert_paddleseg_state_dict,
    read_mindspore_checkpoint,
    read_pdparams,
    to_mindspore_state_dict,
    to_paddleseg_state_dict,
)

# ----------------------------------------------------------------------------------------------------------------
# Writers of the two formats, as the frameworks write them.


def write_pdparams(path: os.PathLike, arrays: dict[str, np.ndarray], protocol: int = 4) -> None:
    """What paddle.save(state_dict) writes: a pickle of numpy arrays plus Paddle's name table."""
    obj = dict(arrays)
    obj["StructuredToParameterName@@"] = {k: f"param_{i}" for i, k in enumerate(arrays)}
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


_TYPES = {np.dtype("float32"): "Float32", np.dtype("float16"): "Float16", np.dtype("int32"): "Int32"}


def _value(tag: str, dims: tuple[int, ...], tensor_type: str, content: bytes) -> bytes:
    """One Checkpoint message holding one Value (MindSpore writes one message per parameter or slice)."""
    tensor = b"".join(_varint(1 << 3 | 0) + _varint(d) for d in dims)  # repeated int64 dims (proto2: unpacked)
    tensor += _field(2, tensor_type.encode()) + _field(3, content)
    return _field(1, _field(1, tag.encode()) + _field(2, tensor))


def write_ckpt(path: os.PathLike, arrays: dict[str, np.ndarray], split: tuple[str, ...] = (), crc: bool = False):
    """What mindspore.save_checkpoint writes: one protobuf Checkpoint message per value; a parameter named in
    ``split`` is written as two slices (as MindSpore slices large parameters), then a string entry."""
    data = b""
    for tag, array in arrays.items():
        kind = _TYPES[array.dtype]
        if tag in split:
            for part in np.array_split(array, 2):
                data += _value(tag, array.shape, kind, part.tobytes())
        else:
            data += _value(tag, array.shape, kind, array.tobytes())
    data += _value("note", (), "str", b"a string entry")
    if crc:
        data += b"crc_num" + (12345).to_bytes(10, "big")
    with open(path, "wb") as f:
        f.write(data)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights everywhere, BatchNorm statistics included (a unit's node bias too)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if not value.dtype.is_floating_point:
                continue
            if key.endswith("running_var"):
                value.copy_(torch.rand(value.shape, generator=gen) + 0.5)
            elif value.dim() == 1:
                value.copy_(torch.randn(value.shape, generator=gen) * 0.1 + (1.0 if key.endswith("weight") else 0))
            else:
                fan_in = value[0].numel()
                scale = 0.05 if "conv_proj" in key else 1.0
                value.copy_(torch.randn(value.shape, generator=gen) * scale / fan_in**0.5)
    return model.eval()


# ----------------------------------------------------------------------------------------------------------------
# Readers.


@pytest.mark.parametrize("protocol", [2, 4])
def test_read_pdparams_reads_the_arrays_and_drops_the_name_table(tmp_path, protocol):
    arrays = {"a.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "b._mean": np.ones(4, np.float32)}
    write_pdparams(tmp_path / "m.pdparams", arrays, protocol=protocol)
    got = read_pdparams(tmp_path / "m.pdparams")
    assert list(got) == list(arrays)
    for key in arrays:
        np.testing.assert_array_equal(got[key], arrays[key])


def test_read_pdparams_accepts_tensors_saved_as_name_array_tuples(tmp_path):
    with open(tmp_path / "m.pdparams", "wb") as f:
        pickle.dump({"w": ("linear_0.w_0", np.ones((2, 2), np.float32))}, f, protocol=4)
    np.testing.assert_array_equal(read_pdparams(tmp_path / "m.pdparams")["w"], np.ones((2, 2)))


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_read_pdparams_refuses_a_pickle_that_would_run_code(tmp_path):
    with open(tmp_path / "m.pdparams", "wb") as f:
        pickle.dump({"w": _Evil()}, f)
    with pytest.raises(ValueError, match="refused to load .*system"):
        read_pdparams(tmp_path / "m.pdparams")


def test_read_pdparams_names_a_file_that_is_not_a_pickle(tmp_path):
    (tmp_path / "m.pdparams").write_text("<html>not found</html>")
    with pytest.raises(ValueError, match="not a readable .pdparams"):
        read_pdparams(tmp_path / "m.pdparams")
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_pdparams(tmp_path / "missing.pdparams")


def test_read_mindspore_checkpoint_joins_slices_skips_strings_and_the_crc_trailer(tmp_path):
    arrays = {
        "conv.weight": np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32),
        "bn.gamma": np.linspace(0, 1, 4, dtype=np.float16),
        "step": np.array([7], dtype=np.int32),
        "scalar": np.array(2.5, dtype=np.float32),
    }
    write_ckpt(tmp_path / "m.ckpt", arrays, split=("conv.weight",), crc=True)
    got = read_mindspore_checkpoint(tmp_path / "m.ckpt")
    assert list(got) == list(arrays)  # the string entry is left out
    for key, array in arrays.items():
        assert got[key].dtype == array.dtype and got[key].shape == array.shape
        np.testing.assert_array_equal(got[key], array)


def test_read_mindspore_checkpoint_accepts_packed_dims(tmp_path):
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    packed = _field(1, _varint(2) + _varint(3)) + _field(2, b"Float32") + _field(3, array.tobytes())
    (tmp_path / "m.ckpt").write_bytes(_field(1, _field(1, b"w") + _field(2, packed)))
    np.testing.assert_array_equal(read_mindspore_checkpoint(tmp_path / "m.ckpt")["w"], array)


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty file"), (b"\x0a\xff\xff\xff", "truncated|runs past"), (b"PK\x03\x04zipfile", "unexpected")],
)
def test_read_mindspore_checkpoint_names_a_file_it_cannot_read(tmp_path, content, reason):
    (tmp_path / "m.ckpt").write_bytes(content)
    with pytest.raises(ValueError, match=f"not a readable MindSpore checkpoint.*({reason})"):
        read_mindspore_checkpoint(tmp_path / "m.ckpt")


def test_read_mindspore_checkpoint_checks_the_size_of_each_parameter(tmp_path):
    (tmp_path / "m.ckpt").write_bytes(_value("w", (2, 3), "Float32", struct.pack("<4f", 1, 2, 3, 4)))
    with pytest.raises(ValueError, match="'w' has 4 values for its shape \\(2, 3\\)"):
        read_mindspore_checkpoint(tmp_path / "m.ckpt")


def test_checkpoint_format_is_read_from_the_name():
    assert checkpoint_format("x/model.pdparams") == "paddle"
    assert checkpoint_format("glore_resnet50.CKPT") == "mindspore"
    assert checkpoint_format("model.pth") is None


# ----------------------------------------------------------------------------------------------------------------
# Converters: glore -> their layout -> glore computes the same function.

PADDLESEG_CONFIG = dict(
    name="fcn_resnet50",
    backbone="resnet50d",
    num_classes=19,
    unit_args={"normalize": False, "gcn_act": "after"},
    aux_conv_bias=True,
    backbone_args={"dilate_first_block": True},
)


@pytest.fixture(scope="module")
def paddleseg_pair(tmp_path_factory):
    """A random glore FCN of PaddleSeg's layout, written as a .pdparams file."""
    model = randomize(create_model(**PADDLESEG_CONFIG))
    path = tmp_path_factory.mktemp("paddle") / "model.pdparams"
    write_pdparams(path, to_paddleseg_state_dict(model))
    return model, path


def test_paddleseg_layout_has_paddlesegs_302_tensors(paddleseg_pair):
    arrays = read_pdparams(paddleseg_pair[1])
    assert len(arrays) == 302  # PaddleSeg 2.8's GloRe(ResNet50_vd) state dict, Cityscapes, with the aux head
    assert arrays["head.gru_module.reduction_dim.weight"].shape == (128, 512, 1, 1)
    assert arrays["backbone.bb_2_0.short._conv.weight"].shape == (1024, 512, 1, 1)
    assert "head.auxlayer.conv_bn_relu._conv.bias" in arrays


def test_convert_paddleseg_round_trip_gives_the_same_outputs(paddleseg_pair):
    model, path = paddleseg_pair
    state, config = convert_paddleseg_state_dict(path)
    assert config["num_classes"] == 19 and config["aux"] and config["num_nodes"] == 64 and config["num_state"] == 128
    assert config["default_cfg"]["mean"] == PADDLESEG_MEAN and config["default_cfg"]["input_size"] == (3, 1024, 2048)
    rebuilt = create_model(**config)
    rebuilt.load_state_dict(state)  # strict: every key, the BN counters included
    rebuilt.eval()
    x = torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        want, got = model(x, aux=True), rebuilt(x, aux=True)
    torch.testing.assert_close(got["out"], want["out"], rtol=0, atol=0)
    torch.testing.assert_close(got["aux"], want["aux"], rtol=0, atol=0)


def test_convert_paddleseg_refuses_another_network():
    with pytest.raises(ValueError, match="not PaddleSeg's GloRe"):
        convert_paddleseg_state_dict({"conv1.weight": np.zeros((64, 3, 7, 7), np.float32)})


def test_convert_paddleseg_names_missing_parameters(paddleseg_pair):
    arrays = read_pdparams(paddleseg_pair[1])
    del arrays["head.gru_module.gcn.conv1.bias"]
    with pytest.raises(ValueError, match="lacks 1 parameters.*gru_module.gcn.conv1.bias"):
        convert_paddleseg_state_dict(arrays)


# MindSpore's three networks as glore configs (what convert_mindspore_checkpoint returns), at reduced depth for
# the round trips (the layouts and the unit positions are read off the names, whatever the depth).
MINDSPORE_50 = dict(
    name="resnet50d",
    same_padding="all",
    norm_eps=1e-4,
    glore={"res4": [1, 3, 5]},
    glore_args={"preact": True, "normalize": False},
)
MINDSPORE_PREACT = dict(
    name="resnet50",
    depths=[1, 2, 4, 1],
    preact=True,
    shortcut_norm=True,
    same_padding="pool",
    norm_eps=1e-4,
    glore={"res3": [1, 2], "res4": [3]},
    glore_args={"preact": True, "normalize": False},
)


def _zero_node_bias(model: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if key.endswith("node_conv.bias"):
                value.zero_()
    return model


@pytest.mark.parametrize("config", [MINDSPORE_50, MINDSPORE_PREACT], ids=["glore_resnet50", "glore_resnet101_200"])
def test_convert_mindspore_round_trip_gives_the_same_outputs(tmp_path, config):
    model = _zero_node_bias(randomize(create_model(**config, num_classes=10)))
    arrays = to_mindspore_state_dict(model)
    write_ckpt(tmp_path / "m.ckpt", arrays)
    state, converted = convert_mindspore_checkpoint(tmp_path / "m.ckpt")
    for key in ("name", "glore", "glore_args", "same_padding", "norm_eps"):
        assert converted[key] == config[key], key
    assert converted["num_classes"] == 10
    rebuilt = create_model(**converted)
    rebuilt.load_state_dict(state)
    rebuilt.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)


def test_mindspore_glore_resnet50_layout_has_mindspores_328_tensors():
    model = _zero_node_bias(create_model(**MINDSPORE_50))
    arrays = to_mindspore_state_dict(model)
    assert len(arrays) == 328  # mindspore.save_checkpoint(glore_resnet50()) holds 328 parameters
    assert arrays["layer3.1.conv_state.2.weight"].shape == (512, 1024, 1, 1)  # the unit after block 1
    assert arrays["layer3.7.conv_extend.0.gamma"].shape == (512,)  # the unit after block 5
    assert arrays["conv1.conv_3.weight"].shape == (64, 32, 3, 3) and "end_point.bias" in arrays


def test_convert_mindspore_ignores_optimizer_state_and_zero_fills_the_node_bias(tmp_path):
    model = _zero_node_bias(randomize(create_model(**MINDSPORE_PREACT, num_classes=5)))
    arrays = to_mindspore_state_dict(model)
    assert not any("node_conv" in k or k.endswith("gcn.conv1.bias") for k in arrays)
    arrays["moments.classifier.weight"] = np.zeros((5, 2048), np.float32)
    arrays["learning_rate"] = np.array(0.1, np.float32)
    state, _ = convert_mindspore_checkpoint(arrays)
    assert all(not v.any() for k, v in state.items() if k.endswith("node_conv.bias"))


def test_to_mindspore_refuses_a_node_bias_mindspore_cannot_hold():
    model = randomize(create_model(**MINDSPORE_PREACT, num_classes=5))
    with pytest.raises(ValueError, match="node-wise bias"):
        to_mindspore_state_dict(model)


def test_convert_mindspore_names_an_extra_parameter():
    model = _zero_node_bias(randomize(create_model(**MINDSPORE_PREACT, num_classes=5)))
    arrays = to_mindspore_state_dict(model)
    arrays["layer3.Residual_Unit1.extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="1 parameters the converted network lacks.*extra.weight"):
        convert_mindspore_checkpoint(arrays)


# ----------------------------------------------------------------------------------------------------------------
# create_model(pretrained=...) and glore convert.


def test_create_model_rebuilds_a_pdparams_file(paddleseg_pair):
    model, path = paddleseg_pair
    loaded = create_model(pretrained=str(path)).eval()
    assert loaded.default_cfg["mean"] == PADDLESEG_MEAN and loaded.num_classes == 19
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)["out"], model(x)["out"], rtol=0, atol=0)
    with pytest.raises(ValueError, match="differs from the network saved"):
        create_model("fcn_resnet101", pretrained=str(path))
    with pytest.raises(ValueError, match="fixes the architecture"):
        create_model(pretrained=str(path), output_stride=16)


def test_create_model_rebuilds_a_ckpt_file(tmp_path):
    model = _zero_node_bias(randomize(create_model(**MINDSPORE_50, num_classes=7)))
    write_ckpt(tmp_path / "glore_resnet50.ckpt", to_mindspore_state_dict(model))
    loaded = create_model(pretrained=tmp_path / "glore_resnet50.ckpt").eval()
    assert loaded.default_cfg["input_size"] == (3, 224, 224) and loaded.default_cfg["num_classes"] == 7
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_glore_convert_round_trip(tmp_path, paddleseg_pair, capsys):
    model, path = paddleseg_pair
    dst = tmp_path / "glore_cityscapes.safetensors"
    assert main(["convert", str(path), str(dst)]) == 0
    assert "fcn_resnet50, 19 classes" in capsys.readouterr().out
    from safetensors import safe_open

    with safe_open(str(dst), framework="pt") as f:
        stored = json.loads(f.metadata()["glore"])["model_config"]
    assert stored["default_cfg"]["mean"] == list(PADDLESEG_MEAN) and stored["num_classes"] == 19
    loaded = create_model(pretrained=str(dst)).eval()
    x = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, aux=True)["aux"], model(x, aux=True)["aux"], rtol=0, atol=0)
    # A second run refuses to overwrite; the error is one line naming DST.
    assert main(["convert", str(path), str(dst)]) == 2
    assert "DST" in capsys.readouterr().err


def test_glore_convert_refuses_an_unknown_format(tmp_path, capsys):
    (tmp_path / "model.pth").write_bytes(b"x")
    assert main(["convert", str(tmp_path / "model.pth"), str(tmp_path / "out.safetensors")]) == 2
    assert "neither a PaddleSeg .pdparams nor a MindSpore .ckpt" in capsys.readouterr().err


def test_load_checkpoint_reads_a_converted_file(tmp_path, paddleseg_pair):
    from glore.engine.checkpoint import load_checkpoint

    dst = tmp_path / "c.safetensors"
    assert main(["convert", str(paddleseg_pair[1]), str(dst)]) == 0
    state = load_checkpoint(dst)
    assert state["model_config"]["name"] == "fcn_resnet50"
    assert set(state["model"]) == set(paddleseg_pair[0].state_dict())


def test_load_checkpoint_reads_a_ckpt_file_for_glore_eval(tmp_path):
    from glore.engine.checkpoint import CheckpointError, load_checkpoint

    model = _zero_node_bias(randomize(create_model(**MINDSPORE_PREACT, num_classes=4)))
    write_ckpt(tmp_path / "m.ckpt", to_mindspore_state_dict(model))
    state = load_checkpoint(tmp_path / "m.ckpt")
    rebuilt = create_model(**state["model_config"])
    rebuilt.load_state_dict(state["model"])  # strict, as glore eval loads
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), model(x), rtol=0, atol=0)
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="without a glore model config"):
        load_checkpoint(tmp_path / "plain.safetensors")
