"""Weights: reading checkpoints (torch.save, safetensors, URLs), loading them into a network, save_pretrained, and
recognising files that name their network (a ``save_pretrained`` directory, a ``glore convert`` safetensors file,
PaddleSeg's ``.pdparams`` and MindSpore's ``.ckpt``)."""

from __future__ import annotations

import json
import os
import pickle
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._io import atomic_path, atomic_write_text
from ..layers import GloRe, NonLocal

__all__ = [
    "CONFIG_FILE",
    "CONFIG_METADATA_KEY",
    "read_network_file",
    "write_converted",
    "WEIGHTS_FILE",
    "load_state_dict_file",
    "load_pretrained",
    "read_pretrained_config",
    "save_pretrained",
]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
# The safetensors metadata key under which ``glore convert`` stores {"format": "glore", "model_config": {...}}.
CONFIG_METADATA_KEY = "glore"


def load_state_dict_file(source: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state dict from a local file (``.safetensors`` or a ``torch.save`` file) or an http(s) URL.

    ``torch.save`` files and URLs are read with ``weights_only=True``. A checkpoint dict holding the weights under
    ``"model"``, ``"state_dict"`` or ``"model_state_dict"`` is unwrapped, and a ``module.`` prefix (from
    DataParallel) is removed.
    """
    from safetensors import SafetensorError

    src = os.fspath(source)
    unreadable = (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, IndexError, KeyError, SafetensorError)
    if src.startswith(("http://", "https://")):
        try:
            state: Any = torch.hub.load_state_dict_from_url(src, map_location="cpu", weights_only=True)
        except OSError as error:  # URLError, HTTPError, timeouts: offline or a wrong address
            reason = getattr(error, "reason", None) or error
            raise ValueError(
                f"pretrained: cannot download {src!r} ({reason}); check the address and the network, or download "
                f"the file elsewhere and pass its local path"
            ) from None
        except unreadable as error:
            raise ValueError(f"pretrained: {src!r} is not a readable checkpoint ({_first_line(error)})") from None
    elif not os.path.isfile(src):
        raise FileNotFoundError(f"pretrained: no such file or directory {src!r} (expected a checkpoint or a URL)")
    else:
        try:
            if src.endswith(".safetensors"):
                from safetensors.torch import load_file

                state = load_file(src)
            else:
                state = torch.load(src, map_location="cpu", weights_only=True)
        except unreadable as error:
            raise ValueError(
                f"pretrained: {src!r} is not a readable checkpoint: expected a torch.save file (read with "
                f"weights_only=True) or a .safetensors file, but reading it failed ({_first_line(error)}); a text "
                f"file, a truncated download or an HTML error page saved under the checkpoint's name look like this"
            ) from None
    if isinstance(state, Mapping):
        for key in ("model", "state_dict", "model_state_dict"):
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"pretrained: {src!r} does not hold a state dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def _unit_prefixes(model: nn.Module) -> list[str]:
    return [name + "." for name, m in model.named_modules() if isinstance(m, GloRe | NonLocal)]


def _listing(title: str, items: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(items[:limit]) + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
    return f"\n  {title} ({len(items)}): {shown}"


def load_pretrained(
    model: nn.Module,
    source: str | os.PathLike[str] | Mapping[str, torch.Tensor],
    *,
    strict: bool = False,
    classifier: str = "fc",
) -> nn.Module:
    """Load a checkpoint into ``model``; GloRe units absent from it keep their identity init.

    Every other key must match by name and shape: a torchvision ResNet/ResNeXt checkpoint loads into the glore
    network of the same depth. When only the classifier differs in shape (another ``num_classes``), it is kept
    at its fresh init, with a warning, so ImageNet weights serve fine-tuning; a network without a classifier
    (``num_classes=0``, a headless backbone) ignores the checkpoint's classifier keys. BatchNorm
    ``num_batches_tracked`` counters, absent from older torchvision checkpoints, may be missing.

    Args:
        model: the network.
        source: a state dict, a file path or an http(s) URL.
        strict: also require the units' keys and the classifier's shape (for checkpoints written by glore
            itself, whose class count is part of the architecture).
        classifier: the classifier module's name, whose shape may differ.

    Returns:
        ``model``.

    Raises:
        ValueError: missing keys, unexpected keys or shape mismatches, all listed.
    """
    state = dict(source) if isinstance(source, Mapping) else load_state_dict_file(source)
    own = model.state_dict()
    units = () if strict else tuple(_unit_prefixes(model))
    missing = [k for k in own if k not in state and not k.startswith(units) and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    head = classifier + "."
    if not any(k.startswith(head) for k in own):  # headless: the checkpoint's classifier has nowhere to go
        unexpected = [k for k in unexpected if not k.startswith(head)]
        state = {k: v for k, v in state.items() if not k.startswith(head)}
    mismatched, skipped = [], []
    for key, value in state.items():
        if key in own and tuple(own[key].shape) != tuple(value.shape):
            if key.startswith(head) and not strict:
                skipped.append(key)
            else:
                mismatched.append(f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(own[key].shape)}")
    if missing or unexpected or mismatched:
        origin = "" if isinstance(source, Mapping) else f" from {os.fspath(source)!r}"
        common = sum(1 for k in state if k in own)
        hint = (
            f"; only {common} of its {len(own)} keys are in the checkpoint: a checkpoint of another architecture?"
            if 2 * common < len(own)
            else ""
        )
        raise ValueError(
            f"pretrained weights{origin} do not fit {type(model).__name__}{hint}"
            + (_listing("missing keys", missing) if missing else "")
            + (_listing("unexpected keys", unexpected) if unexpected else "")
            + (_listing("shape mismatches", mismatched) if mismatched else "")
        )
    if skipped:
        warnings.warn(
            f"pretrained: the checkpoint's classifier ({', '.join(skipped)}) has another number of classes; "
            f"the model's classifier keeps its fresh init",
            UserWarning,
            stacklevel=2,
        )
    model.load_state_dict({k: v for k, v in state.items() if k not in skipped}, strict=False)
    return model


def read_pretrained_config(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``model_config`` stored by ``save_pretrained`` in ``directory``."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"pretrained directory {str(directory)!r} has no {CONFIG_FILE} (see save_pretrained)")
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or data.get("format") != "glore" or not isinstance(data.get("model_config"), dict):
        raise ValueError(f"{path} is not a glore config: expected {{'format': 'glore', 'model_config': {{...}}}}")
    return data["model_config"]


def save_pretrained(model: nn.Module, directory: str | os.PathLike[str]) -> Path:
    """Write ``model``'s weights (``model.safetensors``) and architecture (``config.json``) to ``directory``.

    Both files are written atomically (a reader never sees half a file). ``create_model(pretrained=directory)``
    rebuilds the same network with these weights.

    Returns:
        The directory's path.

    Raises:
        RuntimeError: the network was not made by ``create_model`` (it has no ``model_config``).
    """
    from safetensors.torch import save_file

    config = getattr(model, "model_config", None)
    if not config:
        raise RuntimeError("save_pretrained needs model.model_config: build the network with create_model")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    text = json.dumps({"format": "glore", "model_config": config}, indent=2, sort_keys=True)
    atomic_write_text(path / CONFIG_FILE, text + "\n")
    return path


def _safetensors_config(path: str) -> dict[str, Any] | None:
    """The ``model_config`` a ``glore convert`` safetensors file carries in its metadata, else None."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError):
        return None
    text = metadata.get(CONFIG_METADATA_KEY)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("format") != "glore" or not isinstance(data.get("model_config"), dict):
        raise ValueError(f"pretrained: {path!r}: its {CONFIG_METADATA_KEY!r} metadata is not a glore model config")
    return data["model_config"]


def read_network_file(
    source: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, torch.Tensor], str] | None:
    """The network a weights file names, for ``create_model(pretrained=source)`` without a name.

    Recognised: a ``save_pretrained`` directory, a ``.safetensors`` file written by ``glore convert`` (its
    metadata holds the config), PaddleSeg's ``.pdparams`` and MindSpore's ``.ckpt`` (converted on reading, see
    :mod:`glore.models.convert`).

    Returns:
        ``(model_config, state_dict, what)`` with ``what`` naming the kind of file for messages, or None for a
        file that names no network (a torchvision or glore state dict, a URL).

    Raises:
        ValueError: a file of a recognised kind that cannot be read or converted (the reason named).
    """
    src = os.fspath(source)
    if os.path.isdir(src):
        return read_pretrained_config(src), load_state_dict_file(Path(src) / WEIGHTS_FILE), "a pretrained directory"
    if not os.path.isfile(src):
        return None
    if src.endswith(".safetensors"):
        config = _safetensors_config(src)
        return None if config is None else (config, load_state_dict_file(src), "a converted weights file")
    from .convert import checkpoint_format, convert_checkpoint

    if checkpoint_format(src) is None:
        return None
    state, config = convert_checkpoint(src)
    return config, state, f"a {checkpoint_format(src)} weights file"


def write_converted(state: Mapping[str, torch.Tensor], config: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``state`` as one ``.safetensors`` file whose metadata holds ``config`` (``create_model`` arguments,
    with ``name`` and ``default_cfg``), atomically; ``create_model(pretrained=path)`` rebuilds the network.

    Raises:
        ValueError: ``path`` does not end in ``.safetensors``.
    """
    from safetensors.torch import save_file

    if not os.fspath(path).endswith(".safetensors"):
        raise ValueError(f"converted weights are written as .safetensors, got {os.fspath(path)!r}")
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    text = json.dumps({"format": "glore", "model_config": dict(config)}, sort_keys=True)
    with atomic_path(Path(path)) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", CONFIG_METADATA_KEY: text})
    return Path(path)
