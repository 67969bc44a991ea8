"""Checkpoints: written atomically, read with ``weights_only=True``, and networks rebuilt from them.

A checkpoint is a dict (see docs/CONTRACTS.md): ``model`` (state dict), ``model_config`` (the kwargs of
``glore.models.create_model``), ``config``, ``epoch`` (epochs completed), ``optimizer``, ``scheduler``,
``scaler``, ``rng``, ``best_metric``, ``metrics``. Everything in it is a tensor, number, string, list, tuple
or dict, so it loads without unpickling arbitrary objects.

Every checkpoint carries ``checksum``, a SHA-256 of everything else in it (tensor bytes, dtypes, shapes, keys and
values), computed when it is saved and verified when it is loaded: flipped bits in a file that still unpickles are
reported as a corrupt checkpoint instead of resuming with other weights.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from glore._io import atomic_path

__all__ = [
    "CheckpointError",
    "capture_rng_state",
    "checkpoint_checksum",
    "load_checkpoint",
    "load_model",
    "restore_rng_state",
    "save_checkpoint",
]


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or lacks a required entry."""


def _feed(digest: Any, value: Any) -> None:
    """Add ``value`` to ``digest`` in a form that tells types, keys, shapes and bytes apart."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        digest.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy())  # (numel * itemsize,) raw bytes
    elif isinstance(value, Mapping):
        digest.update(f"{{{len(value)};".encode())
        for key, item in value.items():
            _feed(digest, key)
            _feed(digest, item)
    elif isinstance(value, (list, tuple)):
        digest.update(f"[{len(value)};".encode())
        for item in value:
            _feed(digest, item)
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        digest.update(f"s{len(data)};".encode() + data)
    elif isinstance(value, bytes):
        digest.update(f"b{len(value)};".encode() + value)
    else:  # None, bools, ints, floats (repr is exact), dtypes ...
        digest.update(f"{type(value).__name__}:{value!r};".encode())


def checkpoint_checksum(state: Mapping[str, Any]) -> str:
    """``"sha256:<hex>"`` of every entry of ``state`` but ``checksum`` itself."""
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in state.items() if k != "checksum"})
    return "sha256:" + digest.hexdigest()


def save_checkpoint(
    state: Mapping[str, Any], path: str | os.PathLike, *, previous: str | os.PathLike | None = None
) -> Path:
    """Save ``state`` with its checksum, atomically: serialised in memory, written to a temporary file in the
    same folder, flushed to disk, then renamed over ``path`` with ``os.replace``. A crash at any point leaves
    either the previous file or the new one, never a partial file; a failed write (no space, the file-size
    limit, no permission) raises ``glore._io.WriteError`` naming ``path`` and leaves no temporary file.

    Args:
        state: the checkpoint dict.
        path: the destination; its folder is created if needed.
        previous: keep the checkpoint ``path`` held as this file (``previous.pt``), renamed once the new one is
            whole on disk.

    Returns:
        ``path`` as a ``Path``.
    """
    state = {k: v for k, v in state.items() if k != "checksum"}
    state["checksum"] = checkpoint_checksum(state)
    # Serialised in memory first: a write that fails then fails in Python, with the OS's reason, instead of deep
    # inside torch's zip writer.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_path(path, previous=previous) as tmp, open(tmp, "wb") as f:
        f.write(buffer.getbuffer())
    return Path(path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict with ``torch.load(weights_only=True)`` and verify its checksum (checkpoints
    written without one, by other tools, load unverified). A weights file that names its network
    (``glore convert``'s ``.safetensors``, PaddleSeg's ``.pdparams``, MindSpore's ``.ckpt``) is read as
    ``{"model": state_dict, "model_config": config}``.

    Args:
        path: the checkpoint file.
        map_location: where tensors go.

    Raises:
        CheckpointError: the file does not exist, cannot be read as a checkpoint, or its contents do not match
            its checksum (a corrupt file).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint: no such file {str(path)!r}")
    if path.suffix in (".safetensors", ".pdparams", ".ckpt"):
        return _network_file(path, map_location)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # a truncated or foreign file: say which one
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read: {err}") from err
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {str(path)!r}: expected a dict, got {type(state).__name__}")
    if "checksum" in state and checkpoint_checksum(state) != state["checksum"]:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is corrupt: its contents do not match the checksum written with them"
        )
    return state


def _network_file(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    """A weights file that names its network (``glore convert``'s ``.safetensors``, PaddleSeg's ``.pdparams``,
    MindSpore's ``.ckpt``) as a checkpoint dict with ``model`` and ``model_config``."""
    from glore.models._weights import read_network_file

    try:
        found = read_network_file(path)
    except ValueError as err:
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read: {err}") from err
    if found is None:
        raise CheckpointError(
            f"checkpoint {str(path)!r}: a .safetensors file without a glore model config; write one with "
            f"glore convert, or evaluate a checkpoint written by glore train"
        )
    config, state, _ = found
    return {"model": {k: v.to(map_location) for k, v in state.items()}, "model_config": dict(config)}


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the network stored in a training checkpoint, with its weights, in eval mode.

    The architecture comes from the checkpoint's ``model_config`` through ``glore.models.create_model``; no
    pretrained weights are fetched (the checkpoint holds them all).

    Args:
        path: a checkpoint written by ``glore train``.
        map_location: where tensors go.

    Raises:
        CheckpointError: the file is unreadable or has no ``model``/``model_config`` entry.
    """
    from glore.models import create_model

    state = load_checkpoint(path, map_location)
    for key in ("model", "model_config"):
        if key not in state:
            raise CheckpointError(f"checkpoint {str(path)!r} has no {key!r} entry (keys: {', '.join(state)})")
    model_config = dict(state["model_config"])
    model_config["pretrained"] = None
    model = create_model(**model_config)
    model.load_state_dict(state["model"])
    return model.eval()


def capture_rng_state() -> dict[str, Any]:
    """The states of python's, numpy's and torch's (CPU and CUDA) global generators, as tensors and plain
    values that ``weights_only`` loading accepts."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Restore generators from ``capture_rng_state``'s output."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": np_state["bit_generator"],
            "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": int(np_state["pos"])},
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        }
    )
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = [s.cpu() for s in state["cuda"]]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
