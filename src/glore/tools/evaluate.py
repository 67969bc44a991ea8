"""``glore eval CONFIG --checkpoint PATH``: evaluate a checkpoint on the split ``data.val_split`` names.

Runs under torchrun too; every sample is counted exactly once whatever the number of processes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from glore.engine.config import add_override_argument

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``glore eval``."""
    parser.add_argument("config", help="YAML recipe whose data section describes the dataset")
    parser.add_argument("--checkpoint", required=True, help="checkpoint written by glore train (last.pt, best.pt)")
    parser.add_argument("--split", help="split to evaluate (same as --set data.val_split=SPLIT)")
    add_override_argument(parser, "override a config value, e.g. --set data.root=/data/CUB_200_2011")
    parser.add_argument(
        "--save-predictions",
        metavar="PATH",
        help="write predictions: segmentation, one label PNG per image into the folder PATH (Cityscapes: labelIds "
        "that csEvalPixelLevelSemanticLabeling reads); video, a CSV file PATH of per-video top-5 classes",
    )
    parser.add_argument(
        "--color",
        nargs="?",
        const=True,
        metavar="DIR",
        help="with --save-predictions (segmentation): also colour PNGs, into DIR (default: PATH_color beside PATH, so "
        "the official script and the server zip see labelIds only)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace earlier predictions at --save-predictions (and --color): they are removed first, so no file of "
        "an image left out this time survives",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the metrics as one JSON object, keys named after the split (test_top1 ...), null for NaN",
    )


# What glore eval writes into a predictions folder: what --overwrite removes.
PREDICTION_PATTERNS = ("*_pred_labelIds.png", "*_pred.png", "*_pred_color.png")


def default_color_folder(predictions: str | Path) -> Path:
    """Where ``--color`` writes without a folder: ``PATH_color`` beside the predictions folder ``PATH``."""
    path = Path(predictions)
    return path.with_name(path.name + "_color")


def clear_predictions(option: str, path: Path, *, overwrite: bool) -> None:
    """Make sure ``path`` (a predictions folder, or a predictions file) holds nothing of an earlier evaluation.

    Predictions are written per image, so a stale file of an image that is not evaluated again (now skipped, or
    from another split) would otherwise be read with the new ones. Without ``overwrite`` a non-empty folder or an
    existing file is refused; with it, glore's own prediction files are deleted, and a folder that still holds
    other files is refused (they are not glore's to delete).

    Raises:
        FileExistsError: the folder holds earlier predictions (without ``overwrite``) or files that are not
            glore's, or the file exists (without ``overwrite``); the message names ``option`` and the path.
    """
    if not path.exists():
        return
    if not path.is_dir():
        if not overwrite:
            raise FileExistsError(f"{option} {str(path)!r} exists; replace it with --overwrite, or name another file")
        path.unlink(missing_ok=True)
        return
    if not overwrite:
        if any(path.iterdir()):
            raise FileExistsError(
                f"{option} folder {str(path)!r} already holds files (earlier predictions?); replace them with "
                "--overwrite, or name an empty or new folder"
            )
        return
    for pattern in PREDICTION_PATTERNS:
        for old in path.glob(pattern):
            old.unlink(missing_ok=True)  # every process of a torchrun evaluation clears alike
    others = sorted(p.name for p in path.iterdir())
    if others:
        raise FileExistsError(
            f"{option} folder {str(path)!r} holds files glore eval did not write ({others[0]!r}"
            f"{f' and {len(others) - 1} more' if len(others) > 1 else ''}); empty it or name another folder"
        )


def metrics_json(metrics: dict[str, float], split: str) -> str:
    """``metrics`` (keys ``val_*`` from the engine) as strict JSON: keys prefixed with ``split`` (``test_top1``),
    non-finite values as ``null``."""
    renamed = {f"{split}_{key.removeprefix('val_')}": value for key, value in metrics.items()}
    cleaned = {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in renamed.items()}
    return json.dumps(cleaned, allow_nan=False)


def checked_task(config: Any, checkpoint: str) -> Any:
    """The task ``config`` names, whose datasets are checked against the class names stored in ``checkpoint``:
    a split whose class folders differ from the training run's (other names, order or count) would be scored
    against the wrong labels.

    Raises:
        ValueError: (when a dataset is built) its classes differ from the checkpoint's.
    """
    import torch

    from glore.data import check_classes
    from glore.engine.task import build_task

    task = build_task(config)
    try:
        expected = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True).get("classes")
    except Exception:  # noqa: BLE001 - evaluate() names an unreadable checkpoint itself
        expected = None
    if not expected:
        return task
    build = task.build_dataset

    def build_checked(split: str, *, train: bool) -> Any:
        dataset = build(split, train=train)
        found = getattr(dataset, "classes", None)
        if found is not None:
            check_classes(
                expected, found, expected_from=f"checkpoint {checkpoint!r}", found_from=f"the {split!r} split"
            )
        return dataset

    task.build_dataset = build_checked
    return task


def run(args: argparse.Namespace) -> int:
    """Run ``glore eval``; returns the exit status."""
    from glore.engine import CheckpointError, ConfigError, evaluate, load_config
    from glore.engine.distributed import cleanup_distributed, is_main_process

    overrides = list(args.overrides)
    if args.split:
        overrides.append(f"data.val_split={args.split}")
    outputs = []
    if args.save_predictions:
        overrides.append(f"task_args.save_predictions={args.save_predictions}")
        outputs.append(("--save-predictions", Path(args.save_predictions)))
    if args.color:
        if not args.save_predictions:
            print("glore eval: --color needs --save-predictions", file=sys.stderr)
            return 2
        color = default_color_folder(args.save_predictions) if args.color is True else Path(args.color)
        overrides.append(f"task_args.save_color={color}")
        outputs.append(("--color", color))
    try:
        config = load_config(args.config, overrides)
        for option, path in outputs:
            clear_predictions(option, path, overwrite=args.overwrite)
    except (ConfigError, FileNotFoundError, FileExistsError) as err:
        print(f"glore eval: {err}", file=sys.stderr)
        return 2
    try:
        metrics = evaluate(config, args.checkpoint, checked_task(config, args.checkpoint))
    except CheckpointError as err:
        print(f"glore eval: {err}", file=sys.stderr)
        return 2
    finally:
        main_process = is_main_process()  # asked before the group is gone
        cleanup_distributed()
    if main_process:
        split = config.data.val_split
        if args.json:
            print(metrics_json(metrics, split))
        else:
            for key, value in metrics.items():
                name = key.removeprefix("val_")
                text = str(int(value)) if name in ("count", "skipped") else f"{value:.4f}"
                print(f"{split} {name}: {text}")
    return 0
