"""``glore convert SRC DST``: a released GloRe network (PaddleSeg ``.pdparams``, MindSpore ``.ckpt``) as one
glore ``.safetensors`` file.

The file holds the converted weights and, in its metadata, the ``create_model`` arguments with the network's
preprocessing (``default_cfg``: mean/std, input size, classes), so ``create_model(pretrained=DST)`` and
``glore eval RECIPE --checkpoint DST`` rebuild the same network with no further option (the recipe gives the data
and its preprocessing). The conversion is checked before writing: the rebuilt network loads every tensor (strict).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["add_arguments", "run", "convert_file"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``glore convert``."""
    parser.add_argument("src", help="released weights: PaddleSeg's model.pdparams or MindSpore's glore_resnet .ckpt")
    parser.add_argument("dst", help="the glore weights file to write (.safetensors)")
    parser.add_argument("--overwrite", action="store_true", help="replace DST if it exists")


def convert_file(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, overwrite: bool = False) -> dict:
    """Convert ``src`` and write ``dst``; returns the ``create_model`` arguments written with it.

    Raises:
        ValueError: ``src`` is not a recognised format, ``dst`` does not end in ``.safetensors``, or exists
            without ``overwrite``.
        FileNotFoundError: no ``src``.
    """
    from glore.models import create_model
    from glore.models._weights import load_pretrained, write_converted
    from glore.models.convert import convert_checkpoint

    if not os.fspath(dst).endswith(".safetensors"):
        raise ValueError(f"DST: expected a .safetensors file name, got {os.fspath(dst)!r}")
    if Path(dst).exists() and not overwrite:
        raise ValueError(f"DST: {os.fspath(dst)!r} exists; pass --overwrite to replace it")
    if not Path(src).is_file():
        raise FileNotFoundError(f"SRC: no such file {os.fspath(src)!r}")
    state, config = convert_checkpoint(src)
    model = create_model(**config)
    load_pretrained(model, state, strict=True)  # every tensor has its place: the conversion is whole
    full = model.state_dict()  # with the BN counters the frameworks do not store
    write_converted(full, model.model_config, dst)
    return dict(model.model_config)


def run(args: argparse.Namespace) -> int:
    """Run ``glore convert``; returns the exit status."""
    config = convert_file(args.src, args.dst, overwrite=args.overwrite)
    cfg = config.get("default_cfg") or {}
    print(f"wrote {args.dst}: {config['name']}, {config['num_classes']} classes")
    if cfg:
        print(f"preprocessing: mean {list(cfg.get('mean', []))}, std {list(cfg.get('std', []))}", end="")
        print(f", input {list(cfg['input_size'])}" if "input_size" in cfg else "")
    print(f"load it with glore.models.create_model(pretrained={str(args.dst)!r})")
    return 0
