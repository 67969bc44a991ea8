"""Released GloRe networks of other frameworks, converted for glore: PaddleSeg's and MindSpore's.

Two frameworks publish trained GloRe networks whose code defines their parameter names:

- PaddleSeg (``paddleseg/models/glore.py`` on ``backbones/resnet_vd.py``, configs ``configs/glore/``): GloRe on a
  dilated ResNet50_vd (output stride 8) for Cityscapes (19 classes) and Pascal VOC 2012 aug (21 classes), saved
  as ``model.pdparams``: a pickle of a dict from parameter name to numpy array.
- MindSpore (mindspore-ai/models ``research/cv/glore_res/src/glore_resnet.py``): ``glore_resnet50`` (a ResNet-D
  with three pre-activation units in res4) and ``glore_resnet101``/``glore_resnet200`` (pre-activation ResNets
  with units in res3 and res4), ImageNet classifiers saved as ``.ckpt``: a sequence of protobuf ``Checkpoint``
  messages.

Both files are read here without the framework: the pickle through an unpickler that builds numpy arrays and
nothing else, the protobuf by decoding its wire format. :func:`convert_paddleseg_state_dict` and
:func:`convert_mindspore_checkpoint` return a glore state dict and the ``create_model`` arguments of the network
that computes the same function (the architecture is read off the parameter names and shapes)::

    state, config = convert_mindspore_checkpoint("glore_resnet50.ckpt")
    model = create_model(**config)
    model.load_state_dict(state, strict=False)  # or simply create_model(pretrained="glore_resnet50.ckpt")

Where the frameworks' networks differ from glore's defaults, the config says so with options of glore's own
networks (no copy of theirs): ``stem_type="deep"``/``avg_down`` (ResNet-D), ``dilate_first_block``,
``same_padding`` (MindSpore's ``pad_mode="same"``), ``norm_eps=1e-4``, ``shortcut_norm``, the units'
``preact``/``gcn_act``/``normalize=False`` and the FCN's ``aux_conv_bias``. Two facts have no parameter: the output
stride of PaddleSeg's models (8 in both released configs, the default here) and MindSpore's float16 casts around
the unit's two matrix products (glore computes them in float32, so outputs agree to float16 rounding of those
products, about 1e-3 relative, and exactly when MindSpore's casts are turned off).
"""

from __future__ import annotations

import importlib
import os
import pickle
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "PADDLESEG_MEAN",
    "PADDLESEG_STD",
    "checkpoint_format",
    "convert_checkpoint",
    "convert_mindspore_checkpoint",
    "convert_paddleseg_state_dict",
    "read_mindspore_checkpoint",
    "read_pdparams",
    "to_mindspore_state_dict",
    "to_paddleseg_state_dict",
]

# PaddleSeg's Normalize default: pixels / 255, then (x - 0.5) / 0.5, RGB.
PADDLESEG_MEAN = (0.5, 0.5, 0.5)
PADDLESEG_STD = (0.5, 0.5, 0.5)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Default configs of the released networks (keys of glore's default_cfg). Cityscapes: whole 1024 x 2048 images;
# VOC: each image padded at the bottom and right to 512 x 512 (PaddleSeg's val transforms), one pass: a single
# 512 x 512 window.
_PADDLESEG_CFGS = {
    19: {"task": "segmentation", "input_size": (3, 1024, 2048), "crop_pct": 1.0, "eval_mode": "whole"},
    21: {
        "task": "segmentation",
        "input_size": (3, 512, 512),
        "crop_pct": 1.0,
        "eval_mode": "slide",
        "eval_crop": (512, 512),
        "eval_stride": (512, 512),
    },
}


# ----------------------------------------------------------------------------------------------------------------
# Reading the files.


def _numpy_global(module: str, name: str) -> Any:
    """The numpy object a pickle names, under numpy 1's (``numpy.core``) or numpy 2's (``numpy._core``) path."""
    candidates = [module]
    if module.startswith("numpy.core"):
        candidates.append("numpy._core" + module[len("numpy.core") :])
    elif module.startswith("numpy._core"):
        candidates.append("numpy.core" + module[len("numpy._core") :])
    for candidate in candidates:
        try:
            return getattr(importlib.import_module(candidate), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"{module}.{name} is not available in this numpy")


# What a .pdparams pickle may name: numpy's array and scalar constructors, an OrderedDict, the tuple that
# paddle.save writes for a tensor outside a state dict ((name, array)) and, in protocol 2 files, codecs.encode
# (bytes are stored as latin-1 text). Anything else is refused.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays, dicts and tuples and refuses every other global (no code runs)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return _numpy_global(module, name)
        if (module, name) == ("collections", "OrderedDict"):
            from collections import OrderedDict

            return OrderedDict
        if (module, name) in (("builtins", "tuple"), ("__builtin__", "tuple")):
            return tuple
        if (module, name) == ("_codecs", "encode"):
            import codecs  # protocol 2 stores an array's bytes as a latin-1 string re-encoded on load

            return codecs.encode
        raise pickle.UnpicklingError(
            f"refused to load {module}.{name}: a .pdparams file holds numpy arrays only (loading it could run code)"
        )


def read_pdparams(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a PaddlePaddle ``.pdparams`` file (``paddle.save`` of a state dict) without PaddlePaddle.

    The file is a pickle of ``{name: numpy array}``, with ``"StructuredToParameterName@@"`` mapping names to
    Paddle's internal variable names (dropped here). It is read by an unpickler that builds numpy arrays and
    refuses any other object, so a hostile file cannot run code.

    Args:
        path: the ``.pdparams`` file.

    Returns:
        ``{name: numpy array}`` in the file's order.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not such a pickle (the reason named).
    """
    import numpy as np

    src = os.fspath(path)
    if not os.path.isfile(src):
        raise FileNotFoundError(f"pretrained: no such file {src!r} (expected a PaddlePaddle .pdparams file)")
    try:
        with open(src, "rb") as f:
            obj = _ArrayUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise ValueError(
            f"pretrained: {src!r} is not a readable .pdparams file (a pickle of numpy arrays): {error}"
        ) from None
    if not isinstance(obj, Mapping):
        raise ValueError(f"pretrained: {src!r} holds a {type(obj).__name__}, expected a dict of arrays (.pdparams)")
    arrays: dict[str, Any] = {}
    for key, value in obj.items():
        if key == "StructuredToParameterName@@":
            continue
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], np.ndarray):
            value = value[1]  # paddle.save of a tensor object: (name, array)
        if not isinstance(value, np.ndarray):
            raise ValueError(f"pretrained: {src!r}: entry {key!r} is a {type(value).__name__}, expected an array")
        arrays[str(key)] = value
    return arrays


# MindSpore's tensor_type strings -> numpy dtype names.
_MINDSPORE_DTYPES = {
    "Float16": "float16",
    "Float32": "float32",
    "Float64": "float64",
    "Int8": "int8",
    "Int16": "int16",
    "Int32": "int32",
    "Int64": "int64",
    "UInt8": "uint8",
    "UInt16": "uint16",
    "UInt32": "uint32",
    "UInt64": "uint64",
    "Bool": "bool",
    "BFloat16": "bfloat16",
}
_CRC_TRAILER = b"crc_num"  # save_checkpoint(crc_check=True) appends b"crc_num" + 10 bytes


class _WireError(ValueError):
    pass


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    """Decode a protobuf varint at ``pos``: (value, position after it)."""
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise _WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise _WireError("varint longer than 10 bytes")


def _fields(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int, Any]]:
    """The fields of one protobuf message in ``buf[start:end]``: (number, wire type, int or memoryview)."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _WireError("field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise _WireError(f"unsupported wire type {wire}")
        if pos > end:
            raise _WireError("a field runs past the end of its message")
        yield number, wire, value


def _tensor_proto(buf: memoryview) -> tuple[list[int], str, memoryview]:
    """``TensorProto {repeated int64 dims = 1; string tensor_type = 2; bytes tensor_content = 3}``."""
    dims: list[int] = []
    dtype, content = None, None
    for number, wire, value in _fields(buf, 0, len(buf)):
        if number == 1 and wire == 0:
            dims.append(value)
        elif number == 1 and wire == 2:  # packed dims
            pos = 0
            while pos < len(value):
                dim, pos = _varint(value, pos)
                dims.append(dim)
        elif number == 2 and wire == 2:
            dtype = bytes(value).decode("utf-8")
        elif number == 3 and wire == 2:
            content = value
    if dtype is None or content is None:
        raise _WireError("a TensorProto without tensor_type or tensor_content")
    return dims, dtype, content


def read_mindspore_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a MindSpore ``.ckpt`` file without MindSpore, by decoding its protobuf messages.

    The file is a sequence of ``Checkpoint {repeated Value value = 1}`` messages, ``Value {string tag = 1;
    TensorProto tensor = 2; MapTensorProto maptensor = 3}``; a large parameter is split into several values of the
    same tag whose contents concatenate (``save_checkpoint`` slices above 512 MB). An optional CRC trailer
    (``crc_check=True``) is skipped. String entries (``append_dict``) and map tensors are left out.

    Args:
        path: the ``.ckpt`` file (not encrypted).

    Returns:
        ``{name: numpy array}`` in the file's order (float tensors in their stored dtype; bfloat16 as float32).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not an unencrypted MindSpore checkpoint (the reason named).
    """
    import numpy as np

    src = os.fspath(path)
    if not os.path.isfile(src):
        raise FileNotFoundError(f"pretrained: no such file {src!r} (expected a MindSpore .ckpt file)")
    data = Path(src).read_bytes()
    if len(data) >= 17 and data[-17:-10] == _CRC_TRAILER:
        data = data[:-17]
    buf = memoryview(data)
    chunks: dict[str, list[memoryview]] = {}
    meta: dict[str, tuple[list[int], str]] = {}
    try:
        if not data:
            raise _WireError("empty file")
        for number, wire, value in _fields(buf, 0, len(buf)):
            if number != 1 or wire != 2:
                raise _WireError(f"unexpected top-level field {number} (wire type {wire})")
            tag, tensor = None, None
            for vnumber, vwire, vvalue in _fields(value, 0, len(value)):
                if vnumber == 1 and vwire == 2:
                    tag = bytes(vvalue).decode("utf-8")
                elif vnumber == 2 and vwire == 2:
                    tensor = vvalue
            if tag is None:
                raise _WireError("a value without a tag")
            if tensor is None:
                continue  # a map tensor (embedding tables of recommendation models): not a network weight here
            dims, dtype, content = _tensor_proto(tensor)
            if dtype == "str":
                continue
            if dtype not in _MINDSPORE_DTYPES:
                raise _WireError(f"parameter {tag!r} has an unknown tensor_type {dtype!r}")
            meta.setdefault(tag, (dims, dtype))
            chunks.setdefault(tag, []).append(content)
    except (_WireError, UnicodeDecodeError) as error:
        raise ValueError(
            f"pretrained: {src!r} is not a readable MindSpore checkpoint (protobuf Checkpoint messages; an "
            f"encrypted checkpoint cannot be read): {error}"
        ) from None
    arrays: dict[str, Any] = {}
    for tag, parts in chunks.items():
        dims, dtype = meta[tag]
        raw = parts[0] if len(parts) == 1 else b"".join(bytes(p) for p in parts)
        if dtype == "BFloat16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            array = bits.view(np.float32)
        else:
            array = np.frombuffer(raw, dtype=np.dtype(_MINDSPORE_DTYPES[dtype]).newbyteorder("<"))
        count = int(np.prod(dims)) if dims else 1
        if array.size != count:
            raise ValueError(
                f"pretrained: {src!r}: parameter {tag!r} has {array.size} values for its shape {tuple(dims)}"
            )
        arrays[tag] = array.reshape(dims)
    return arrays


def checkpoint_format(path: str | os.PathLike[str]) -> str | None:
    """``"paddle"`` for a ``.pdparams`` file, ``"mindspore"`` for a ``.ckpt`` file, else None (by name)."""
    suffix = Path(os.fspath(path)).suffix.lower()
    return {".pdparams": "paddle", ".ckpt": "mindspore"}.get(suffix)


# ----------------------------------------------------------------------------------------------------------------
# Name maps, glore -> theirs. A converter builds the glore network on the meta device, maps each of its keys to
# the framework's name and reads the value; the inverse functions use the same maps.

_BN_PADDLE = {"weight": "weight", "bias": "bias", "running_mean": "_mean", "running_var": "_variance"}
_BN_MINDSPORE = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
_STAT = "num_batches_tracked"  # glore's BN counter: no counterpart


def _unit_key(rest: str, bn: Mapping[str, str], mindspore: bool) -> str | None:
    """A GloRe unit's key (after ``glore1.`` / ``unit.``) in PaddleSeg's GruModule or MindSpore's GloreUnit."""
    head, _, leaf = rest.rpartition(".")
    if leaf == _STAT:
        return None
    if mindspore:
        table = {
            "norm_state": ("conv_state.0", True),
            "conv_state": ("conv_state.2", False),
            "norm_proj": ("conv_proj.0", True),
            "conv_proj": ("conv_proj.2", False),
            "gcn.0.node_conv": ("gcn.conv1", False),
            "gcn.0.state_conv": ("gcn.conv2", False),
            "norm_extend": ("conv_extend.0", True),
            "conv_extend": ("conv_extend.2", False),
        }
    else:
        table = {
            "conv_state": ("reduction_dim", False),
            "conv_proj": ("projection_mat", False),
            "gcn.0.node_conv": ("gcn.conv1", False),
            "gcn.0.state_conv": ("gcn.conv2", False),
            "conv_extend": ("extend_dim", False),
            "norm": ("extend_bn", True),
        }
    if head not in table:
        raise KeyError(rest)
    name, is_norm = table[head]
    return f"{name}.{bn[leaf] if is_norm else leaf}"


def _paddleseg_key(key: str) -> str | None:
    """PaddleSeg's name of a glore FCN key (ResNet_vd backbone, GloReHead), None when it has no counterpart."""
    leaf = key.rpartition(".")[2]
    if leaf == _STAT:
        return None
    bn = _BN_PADDLE
    if m := re.fullmatch(r"backbone\.conv1\.([0-6])\.(\w+)", key):
        index, leaf = int(m[1]), m[2]
        layer = {0: 1, 1: 1, 3: 2, 4: 2, 6: 3}[index]
        return (
            f"backbone.conv1_{layer}._conv.{leaf}"
            if index % 3 == 0
            else f"backbone.conv1_{layer}._batch_norm.{bn[leaf]}"
        )
    if m := re.fullmatch(r"backbone\.bn1\.(\w+)", key):
        return f"backbone.conv1_3._batch_norm.{bn[m[1]]}"
    if m := re.fullmatch(r"backbone\.layer(\d)\.(\d+)\.(conv|bn)(\d)\.(\w+)", key):
        stage, block, kind, index, leaf = int(m[1]) - 1, m[2], m[3], int(m[4]) - 1, m[5]
        part = "_conv" if kind == "conv" else "_batch_norm"
        return f"backbone.bb_{stage}_{block}.conv{index}.{part}.{leaf if kind == 'conv' else bn[leaf]}"
    if m := re.fullmatch(r"backbone\.layer(\d)\.(\d+)\.downsample\.([12])\.(\w+)", key):
        stage, block, index, leaf = int(m[1]) - 1, m[2], m[3], m[4]
        part = f"_conv.{leaf}" if index == "1" else f"_batch_norm.{bn[leaf]}"
        return f"backbone.bb_{stage}_{block}.short.{part}"
    if m := re.fullmatch(r"head\.conv\.([01])\.(\w+)", key):
        return f"head.conv_bn_relu.{'_conv.' + m[2] if m[1] == '0' else '_batch_norm.' + bn[m[2]]}"
    if m := re.fullmatch(r"head\.unit\.(.+)", key):
        return "head.gru_module." + _unit_key(m[1], bn, mindspore=False)  # type: ignore[operator]
    if m := re.fullmatch(r"head\.classifier\.(\w+)", key):
        return f"head.classifier.{m[1]}"
    if m := re.fullmatch(r"aux_head\.conv\.([01])\.(\w+)", key):
        return f"head.auxlayer.conv_bn_relu.{'_conv.' + m[2] if m[1] == '0' else '_batch_norm.' + bn[m[2]]}"
    if m := re.fullmatch(r"aux_head\.classifier\.(\w+)", key):
        return f"head.auxlayer.conv.{m[1]}"
    raise KeyError(key)


def _stage_layout(keys: list[str]) -> dict[str, list[str]]:
    """``{"layer3": ["0", "glore1", "1", ...]}``: each stage's children in forward order (state-dict order)."""
    layout: dict[str, list[str]] = {}
    for key in keys:
        if m := re.match(r"(layer\d)\.(\w+)\.", key):
            children = layout.setdefault(m[1], [])
            if m[2] not in children:
                children.append(m[2])
    return layout


def _mindspore_key(key: str, layout: Mapping[str, list[str]], preact: bool) -> str | None:
    """MindSpore's name of a glore key: ``glore_resnet50`` (``preact=False``) or ``glore_resnet101/200``."""
    leaf = key.rpartition(".")[2]
    if leaf == _STAT:
        return None
    bn = _BN_MINDSPORE
    if m := re.fullmatch(r"layer(\d)\.(\w+)\.(.+)", key):
        stage, child, rest = f"layer{m[1]}", m[2], m[3]
        children = layout[stage]
        if preact:
            blocks_before = sum(1 for c in children[: children.index(child)] if not c.startswith("glore"))
            name = f"layer{int(m[1]) + 1}." + (
                f"Residual_Unit{blocks_before}_GloreUnit"
                if child.startswith("glore")
                else f"Residual_Unit{blocks_before + 1}"
            )
        else:
            name = f"{stage}.{children.index(child)}"
        if child.startswith("glore"):
            unit = _unit_key(rest, bn, mindspore=True)
            return None if unit is None else f"{name}.{unit}"
        head, _, leaf = rest.rpartition(".")
        if preact:
            table = {
                "bn1": "BN_AC_Conv1.bn",
                "conv1": "BN_AC_Conv1.conv",
                "bn2": "BN_AC_Conv2.bn",
                "conv2": "BN_AC_Conv2.conv",
                "bn3": "BN_AC_Conv3.bn",
                "conv3": "BN_AC_Conv3.conv",
                "downsample.0": "BN_AC_Conv_w.bn",
                "downsample.2": "BN_AC_Conv_w.conv",
            }
        else:
            table = {h: h for h in ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3")}
            table.update({"downsample.1": "down_sample_layer.1", "downsample.2": "down_sample_layer.2"})
        target = table[head]
        is_norm = target.endswith(".bn") or re.search(r"(^bn\d$|down_sample_layer\.2)", target) is not None
        return f"{name}.{target}.{bn[leaf] if is_norm else leaf}"
    if preact:
        table = {"conv1.weight": "layer1.conv.weight", "fc.weight": "classifier.weight", "fc.bias": "classifier.bias"}
        if key in table:
            return table[key]
        if m := re.fullmatch(r"(bn1|final_norm)\.(\w+)", key):
            return f"{'layer1.bn' if m[1] == 'bn1' else 'tail.bn'}.{bn[m[2]]}"
        raise KeyError(key)
    if m := re.fullmatch(r"conv1\.([0-6])\.(\w+)", key):
        index, leaf = int(m[1]), m[2]
        if index % 3 == 0:
            return f"conv1.conv_{index // 3 + 1}.{leaf}"
        return f"conv1.bn{index // 3 + 1}.{bn[leaf]}"
    if m := re.fullmatch(r"bn1\.(\w+)", key):
        return f"bn1.{bn[m[1]]}"
    if m := re.fullmatch(r"fc\.(\w+)", key):
        return f"end_point.{m[1]}"
    raise KeyError(key)


def _meta_state(config: Mapping[str, Any]) -> dict[str, torch.Size]:
    """The state-dict keys and shapes of the network ``create_model(**config)`` builds (on the meta device)."""
    from ._builder import create_model

    with torch.device("meta"):
        model = create_model(**config)
    return {k: v.shape for k, v in model.state_dict().items()}


def _to_tensor(array: Any, shape: torch.Size, what: str) -> torch.Tensor:
    import numpy as np

    value = torch.from_numpy(np.array(array, dtype=np.float32 if array.dtype.kind == "f" else array.dtype))
    if value.numel() != shape.numel():
        raise ValueError(f"pretrained: {what} has shape {tuple(value.shape)}, the network needs {tuple(shape)}")
    return value.reshape(shape)


def _gather(
    arrays: Mapping[str, Any], config: Mapping[str, Any], name_of: Any, source: str, zero_ok: tuple[str, ...] = ()
) -> dict[str, torch.Tensor]:
    """The glore state dict of ``config``'s network from ``arrays`` under the framework's names."""
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    missing: list[str] = []
    for key, shape in _meta_state(config).items():
        if key.endswith(_STAT):
            state[key] = torch.zeros((), dtype=torch.long)  # BN counters, which the frameworks do not store
            continue
        theirs = name_of(key)
        if theirs is None:
            if key.endswith(zero_ok):
                state[key] = torch.zeros(shape)  # a parameter the framework's network does not have
                continue
            raise ValueError(f"pretrained: {source}: no counterpart for {key!r}")
        if theirs not in arrays:
            missing.append(theirs)
            continue
        used.add(theirs)
        state[key] = _to_tensor(arrays[theirs], shape, f"{source}: {theirs!r}")
    if missing:
        shown = ", ".join(missing[:8]) + (f", ... ({len(missing) - 8} more)" if len(missing) > 8 else "")
        raise ValueError(f"pretrained: {source} lacks {len(missing)} parameters of the network: {shown}")
    return state


# ----------------------------------------------------------------------------------------------------------------
# PaddleSeg.


def _as_arrays(source: str | os.PathLike[str] | Mapping[str, Any], reader: Any) -> tuple[dict[str, Any], str]:
    if isinstance(source, Mapping):
        import numpy as np

        return {
            k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for k, v in source.items()
        }, "the state dict"
    return reader(source), repr(os.fspath(source))


def convert_paddleseg_state_dict(
    source: str | os.PathLike[str] | Mapping[str, Any], *, output_stride: int = 8
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Convert PaddleSeg's GloRe (``paddleseg.models.GloRe`` on ``ResNet50_vd``/``ResNet101_vd``) for glore's FCN.

    The network is read off the names and shapes: the backbone's depth (ResNet50_vd or ResNet101_vd), the head's
    widths, GloRe nodes and states, the class count and whether the aux head is there. PaddleSeg's functions are
    reproduced with options: ``backbone="resnet50d"`` with ``dilate_first_block`` (PaddleSeg dilates the whole
    stage), the unit's ``gcn_act="after"`` and ``normalize=False``, ``aux_conv_bias=True``, and its preprocessing
    in ``default_cfg`` (mean and std 0.5 on [0, 1] RGB; whole-image evaluation).

    Args:
        source: a ``.pdparams`` file or a dict of arrays under PaddleSeg's names.
        output_stride: the backbone's output stride, which the weights do not record (8 in PaddleSeg's GloRe
            configs).

    Returns:
        ``(state_dict, config)``: glore's state dict and the ``create_model`` arguments (with ``name``).

    Raises:
        ValueError: the names are not PaddleSeg's GloRe (the missing or unexpected ones listed).
    """
    arrays, source_name = _as_arrays(source, read_pdparams)
    if "head.gru_module.reduction_dim.weight" not in arrays or "backbone.conv1_1._conv.weight" not in arrays:
        raise ValueError(
            f"pretrained: {source_name} is not PaddleSeg's GloRe on ResNet_vd: expected parameters "
            f"'backbone.conv1_1._conv.weight' and 'head.gru_module.reduction_dim.weight'"
        )
    depths = []
    for stage in range(4):
        depths.append(sum(1 for k in arrays if re.fullmatch(rf"backbone\.bb_{stage}_\d+\.conv0\._conv\.weight", k)))
    backbones = {(3, 4, 6, 3): "resnet50d", (3, 4, 23, 3): "resnet101d"}
    if tuple(depths) not in backbones:
        raise ValueError(
            f"pretrained: {source_name}: a ResNet_vd of {tuple(depths)} bottlenecks per stage; glore converts "
            f"ResNet50_vd (3, 4, 6, 3) and ResNet101_vd (3, 4, 23, 3)"
        )
    num_classes, head_channels = arrays["head.classifier.weight"].shape[:2]
    config: dict[str, Any] = {
        "name": "fcn_resnet50" if depths[2] == 6 else "fcn_resnet101",
        "num_classes": int(num_classes),
        "backbone": backbones[tuple(depths)],
        "output_stride": output_stride,
        "aux": "head.auxlayer.conv.weight" in arrays,
        "head_channels": int(head_channels),
        "num_nodes": int(arrays["head.gru_module.projection_mat.weight"].shape[0]),
        "num_state": int(arrays["head.gru_module.reduction_dim.weight"].shape[0]),
        "unit_args": {"normalize": False, "gcn_act": "after"},
        "backbone_args": {"dilate_first_block": True},
    }
    if config["aux"]:
        config["aux_channels"] = int(arrays["head.auxlayer.conv_bn_relu._conv.weight"].shape[0])
        config["aux_conv_bias"] = "head.auxlayer.conv_bn_relu._conv.bias" in arrays
    config["default_cfg"] = {
        **_PADDLESEG_CFGS.get(int(num_classes), {"task": "segmentation", "crop_pct": 1.0, "eval_mode": "whole"}),
        "mean": PADDLESEG_MEAN,
        "std": PADDLESEG_STD,
        "num_classes": int(num_classes),
    }
    state = _gather(arrays, config, _paddleseg_key, source_name)
    _refuse_unused(arrays, {_paddleseg_key(k) for k in state}, source_name, prefixes=("backbone.", "head."))
    return state, config


def to_paddleseg_state_dict(model: torch.nn.Module) -> dict[str, Any]:
    """The state dict of a glore FCN under PaddleSeg's names and shapes, as numpy arrays (a ``.pdparams`` dict).

    The inverse of :func:`convert_paddleseg_state_dict` for a network of the layout it produces.
    """
    out: dict[str, Any] = {}
    for key, value in model.state_dict().items():
        theirs = _paddleseg_key(key)
        if theirs is None:
            continue
        array = value.detach().cpu().numpy()
        if theirs.endswith(("reduction_dim.weight", "projection_mat.weight", "extend_dim.weight")):
            array = array.reshape(*array.shape[:2], 1, 1)  # Conv2D kernels (out, in, 1, 1)
        out[theirs] = array
    return out


def _refuse_unused(arrays: Mapping[str, Any], used: set[Any], source: str, prefixes: tuple[str, ...]) -> None:
    """Raise for parameters of the network's own parts that the conversion did not use (another architecture)."""
    unused = [k for k in arrays if k.startswith(prefixes) and k not in used]
    if unused:
        shown = ", ".join(unused[:8]) + (f", ... ({len(unused) - 8} more)" if len(unused) > 8 else "")
        raise ValueError(f"pretrained: {source} has {len(unused)} parameters the converted network lacks: {shown}")


# ----------------------------------------------------------------------------------------------------------------
# MindSpore.

_MINDSPORE_RESNETS = {(3, 4, 6, 3): "resnet50", (3, 4, 23, 3): "resnet101", (3, 8, 36, 3): "resnet152"}
_MINDSPORE_RESNETS.update({(3, 24, 36, 3): "resnet200"})


def _mindspore_layout(arrays: Mapping[str, Any], preact: bool) -> tuple[list[int], dict[str, list[int]]]:
    """Blocks per stage and the unit positions (1-based, after that block) of a MindSpore glore_resnet."""
    depths: list[int] = []
    spec: dict[str, list[int]] = {}
    for stage in range(4):
        if preact:
            prefix = f"layer{stage + 2}."
            blocks = {int(m[1]) for k in arrays if (m := re.match(rf"{re.escape(prefix)}Residual_Unit(\d+)\.", k))}
            units = sorted(
                {int(m[1]) for k in arrays if (m := re.match(rf"{re.escape(prefix)}Residual_Unit(\d+)_GloreUnit\.", k))}
            )
            depth = len(blocks)
        else:
            prefix = f"layer{stage + 1}."
            items = sorted({int(m[1]) for k in arrays if (m := re.match(rf"{re.escape(prefix)}(\d+)\.", k))})
            units, depth = [], 0
            for index in items:
                if f"{prefix}{index}.conv_state.2.weight" in arrays:
                    units.append(depth)
                else:
                    depth += 1
        depths.append(depth)
        if units:
            spec[f"res{stage + 2}"] = units
    return depths, spec


def convert_mindspore_checkpoint(
    source: str | os.PathLike[str] | Mapping[str, Any],
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Convert MindSpore's ``glore_resnet50``/``glore_resnet101``/``glore_resnet200`` for glore's ResNet.

    ``glore_resnet50`` is a ResNet-D (deep stem, average-pool shortcuts) with ``pad_mode="same"`` convolutions
    and pools, BatchNorm eps 1e-4 and three pre-activation GloRe units in res4, after blocks 1, 3, 5:
    ``create_model("resnet50d", norm_eps=1e-4, same_padding="all", glore={"res4": [1, 3, 5]},
    glore_args={"preact": True, "normalize": False})``. ``glore_resnet101``/``200`` are pre-activation ResNets
    with a 7x7 stem, a "same" max-pool, shortcuts with a BN-ReLU of their own, eps 1e-4 and units in res3 and res4
    (101: res3 after 1, 3 and res4 after 3, 11, 19; 200: res3 after 12, 18 and res4 after 16, 24, 32). The
    positions, depths and class count are read off the names. MindSpore's graph convolution has no node-wise
    bias: glore's is set to zero. Optimizer state saved alongside (``moments.*``, ``learning_rate``, ...) is
    ignored.

    Args:
        source: a ``.ckpt`` file or a dict of arrays under MindSpore's names.

    Returns:
        ``(state_dict, config)``: glore's state dict and the ``create_model`` arguments (with ``name``).

    Raises:
        ValueError: the names are not MindSpore's glore_resnet (the missing or unexpected ones listed).
    """
    arrays, source_name = _as_arrays(source, read_mindspore_checkpoint)
    if "conv1.conv_1.weight" in arrays and "end_point.weight" in arrays:
        preact = False
    elif "layer1.conv.weight" in arrays and "classifier.weight" in arrays:
        preact = True
    else:
        raise ValueError(
            f"pretrained: {source_name} is not MindSpore's glore_resnet: expected 'conv1.conv_1.weight' and "
            f"'end_point.weight' (glore_resnet50) or 'layer1.conv.weight' and 'classifier.weight' "
            f"(glore_resnet101/200)"
        )
    depths, spec = _mindspore_layout(arrays, preact)
    classifier = arrays["classifier.weight" if preact else "end_point.weight"]
    config: dict[str, Any] = {"num_classes": int(classifier.shape[0])}
    known = _MINDSPORE_RESNETS if preact else {(3, 4, 6, 3): "resnet50d", (3, 4, 23, 3): "resnet101d"}
    name = known.get(tuple(depths))
    if name is None:  # another depth: the family's ResNet-50 builder with these depths
        name = "resnet50" if preact else "resnet50d"
        config["depths"] = list(depths)
    if preact:
        config.update(preact=True, shortcut_norm=True, same_padding="pool")
    else:
        config.update(same_padding="all")
    config["norm_eps"] = 1e-4
    config["glore"] = spec or None
    config["glore_args"] = {"preact": True, "normalize": False} if spec else None
    # MindSpore's evaluation: resize the shorter side to 256 (bilinear), centre crop 224, ImageNet mean and std.
    config["default_cfg"] = {
        "task": "classification",
        "input_size": (3, 224, 224),
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        "crop_pct": 0.875,
        "interpolation": "bilinear",
        "num_classes": config["num_classes"],
    }
    config = {"name": name, **config}
    layout_keys = list(_meta_state(config))
    layout = _stage_layout(layout_keys)

    def name_of(key: str) -> str | None:
        if key.endswith("gcn.0.node_conv.bias"):
            return None  # MindSpore's node-wise Conv1d has no bias
        return _mindspore_key(key, layout, preact)

    state = _gather(arrays, config, name_of, source_name, zero_ok=("gcn.0.node_conv.bias",))
    network = ("conv1.", "bn1.", "end_point.") if not preact else ("classifier.", "tail.")
    network += tuple(f"layer{i}." for i in range(1, 6))
    _refuse_unused(arrays, {name_of(k) for k in state}, source_name, prefixes=network)
    return state, config


def to_mindspore_state_dict(model: torch.nn.Module) -> dict[str, Any]:
    """The state dict of a glore ResNet of :func:`convert_mindspore_checkpoint`'s layout under MindSpore's names
    and shapes, as numpy arrays (what ``mindspore.save_checkpoint`` of the same network holds).

    Raises:
        ValueError: a unit's node-wise bias is not zero (MindSpore's unit has none).
    """
    state = model.state_dict()
    preact = bool(getattr(model, "preact", False))
    layout = _stage_layout(list(state))
    out: dict[str, Any] = {}
    for key, value in state.items():
        if key.endswith("gcn.0.node_conv.bias"):
            if bool(value.any()):
                raise ValueError(f"{key}: MindSpore's GloRe unit has no node-wise bias, but this one is not zero")
            continue
        theirs = _mindspore_key(key, layout, preact)
        if theirs is None:
            continue
        array = value.detach().cpu().numpy()
        if re.search(r"\.(conv_state\.2|conv_proj\.2|gcn\.conv1|gcn\.conv2|conv_extend\.2)\.weight$", theirs):
            array = array.reshape(*array.shape[:2], 1, 1)  # MindSpore's Conv1d kernels are (out, in, 1, 1)
        out[theirs] = array
    return out


# ----------------------------------------------------------------------------------------------------------------
# One entry point.


def convert_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Convert a released file by its format (:func:`checkpoint_format`): ``.pdparams`` or ``.ckpt``.

    Raises:
        ValueError: a file of neither format (by name).
    """
    kind = checkpoint_format(path)
    if kind == "paddle":
        return convert_paddleseg_state_dict(path)
    if kind == "mindspore":
        return convert_mindspore_checkpoint(path)
    raise ValueError(
        f"convert: {os.fspath(path)!r} is neither a PaddleSeg .pdparams nor a MindSpore .ckpt file (by its name)"
    )
