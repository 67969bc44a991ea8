"""``glore predict CHECKPOINT INPUT...``: what a trained network says about images or videos.

The checkpoint's task turns each file into the network's input exactly as its evaluation dataset does
(``Task.load_input``: the same reader, transform and test views) and predicts as ``glore eval`` does
(``Task.predict``, under the recipe's ``train.amp``), so a file gets the scores ``glore eval`` computes for it. The
task decides what is printed or written:

- classification: the top-k classes of each image, with their names and probabilities;
- segmentation: a colourised mask PNG and an overlay PNG per image in ``--output`` (default: ``predictions/``
  beside the checkpoint), and each image's class shares printed; ``--label-ids DIR`` adds the label maps as
  ``glore eval --save-predictions`` writes them (Cityscapes labelIds);
- video: the top-k classes of each video, its softmax averaged over the test views the recipe describes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "PREDICTORS",
    "add_arguments",
    "checkpoint_task",
    "predict_file",
    "predict_images",
    "predict_segmentation",
    "predict_videos",
    "register_predictor",
    "run",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``glore predict``."""
    parser.add_argument("checkpoint", help="a checkpoint written by glore train (best.pt, last.pt)")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files (or video files for a video network)")
    parser.add_argument("--topk", type=int, default=5, help="classes shown per input (default 5)")
    parser.add_argument("--output", help="segmentation: folder of the mask and overlay PNGs")
    parser.add_argument(
        "--label-ids",
        metavar="DIR",
        help="segmentation: also write each label map as an 8-bit PNG into DIR, as glore eval --save-predictions "
        "does (Cityscapes: <city>_<seq>_<frame>_pred_labelIds.png, which csEvalPixelLevelSemanticLabeling reads)",
    )


def checkpoint_task(state: dict[str, Any], checkpoint: str = "checkpoint") -> Any:
    """The task of a checkpoint, built from the config stored in it (its preprocessing and inference settings).

    Raises:
        ValueError: the checkpoint has no config, or its config no longer loads (the key named).
    """
    import glore.tasks  # noqa: F401 - registers glore's own tasks
    from glore.engine import ConfigError, build_task, load_config

    if not state.get("config"):
        raise ValueError(f"checkpoint {checkpoint!r}: no config to read the preprocessing from")
    try:
        return build_task(load_config(state["config"]))
    except ConfigError as error:
        raise ValueError(f"checkpoint {checkpoint!r}: its config does not load here ({error})") from None


@torch.no_grad()
def predict_file(task: Any, model: torch.nn.Module, path: str) -> torch.Tensor:
    """The prediction of ``model`` (in eval mode, on the CPU) for one file: ``task.predict`` of
    ``task.load_input(path)``, under the autocast of the task's ``train.amp`` as ``glore eval`` runs it."""
    import contextlib

    from glore.engine.trainer import AMP_DTYPES

    dtype = AMP_DTYPES.get(task.config.train.amp)
    batch = task.load_input(path)
    with torch.autocast("cpu", dtype=dtype) if dtype is not None else contextlib.nullcontext():
        return task.predict(model, batch)


def _names(state: dict[str, Any], count: int) -> list[str]:
    classes = list(state.get("classes") or [])
    return classes if len(classes) == count else [f"class {k}" for k in range(count)]


def _topk_line(probs: torch.Tensor, names: list[str], k: int) -> str:
    values, indices = probs.topk(min(k, probs.numel()))
    return ", ".join(f"{names[i]} {p:.3f}" for p, i in zip(values.tolist(), indices.tolist(), strict=True))


def predict_images(task: Any, model: torch.nn.Module, state: dict[str, Any], paths: list[str], topk: int) -> list[str]:
    """One line per image: its top-k classes and probabilities."""
    lines = []
    for path in paths:
        probs = predict_file(task, model, path).float().softmax(dim=1)[0]  # (1, K) -> (K,)
        lines.append(f"{path}: {_topk_line(probs, _names(state, probs.numel()), topk)}")
    return lines


def predict_segmentation(
    task: Any,
    model: torch.nn.Module,
    state: dict[str, Any],
    paths: list[str],
    out_dir: Path,
    label_dir: Path | None = None,
) -> list[str]:
    """Write ``<stem>_mask.png`` (colourised classes) and ``<stem>_overlay.png`` per image; one line each. With
    ``label_dir``, also the label map as ``glore eval --save-predictions`` writes it (``save_prediction_png``; a
    Cityscapes image ``<id>_leftImg8bit.png`` gives ``<id>_pred_labelIds.png``)."""
    from PIL import Image

    from glore._io import atomic_path
    from glore.data.cityscapes import colorize
    from glore.tasks._inputs import read_input_image
    from glore.tasks.segmentation import save_prediction_png

    data = state["config"]["data"]
    cityscapes = data.get("name") == "cityscapes"
    palette = np.random.default_rng(0).integers(0, 256, (256, 3), dtype=np.uint8)
    palette[0] = 0
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for path in paths:
        labels = predict_file(task, model, path).argmax(dim=1)[0].numpy()  # (1, K, H, W) -> (H, W)
        image = read_input_image(path)
        rgb = colorize(labels) if cityscapes else palette[labels]
        overlay = (0.5 * np.asarray(image, dtype=np.float32) + 0.5 * rgb).astype(np.uint8)
        stem = Path(path).stem
        for suffix, array in (("mask", rgb), ("overlay", overlay)):
            with atomic_path(out_dir / f"{stem}_{suffix}.png") as tmp:
                Image.fromarray(array.astype(np.uint8), mode="RGB").save(tmp, format="PNG")
        if label_dir is not None:
            name = stem.removesuffix("_leftImg8bit") if cityscapes else stem
            save_prediction_png(torch.from_numpy(labels), label_dir, name, cityscapes=cityscapes)
        names = _names(state, int(model.model_config.get("num_classes", labels.max() + 1)))
        counts = np.bincount(labels.ravel(), minlength=len(names)) / labels.size
        shares = ", ".join(f"{names[k]} {counts[k]:.2f}" for k in np.argsort(-counts)[:5] if counts[k] > 0)
        lines.append(f"{path}: {out_dir / (stem + '_mask.png')} ({shares})")
    return lines


def predict_videos(task: Any, model: torch.nn.Module, state: dict[str, Any], paths: list[str], topk: int) -> list[str]:
    """One line per video: its top-k classes, the softmax averaged over the recipe's test views (as ``glore eval``'s
    video accuracy averages them)."""
    lines = []
    for path in paths:
        probs = predict_file(task, model, path).float().softmax(dim=1).mean(dim=0)  # (views, K) -> (K,)
        lines.append(f"{path}: {_topk_line(probs, _names(state, probs.numel()), topk)}")
    return lines


Predictor = Callable[[Any, torch.nn.Module, dict[str, Any], argparse.Namespace], list[str]]

# task name (a checkpoint's ``task``) -> what ``glore predict`` does with its network and the command's arguments.
PREDICTORS: dict[str, Predictor] = {}


def register_predictor(task: str) -> Callable[[Predictor], Predictor]:
    """Register ``fn(task, model, checkpoint_state, args) -> lines`` as what ``glore predict`` does for checkpoints
    of ``task`` (a task added by another package registers its own); ``task`` is the checkpoint's ``Task``, whose
    ``load_input`` and ``predict`` (see ``predict_file``) give the network's scores for a file."""

    def add(fn: Predictor) -> Predictor:
        PREDICTORS[task] = fn
        return fn

    return add


@register_predictor("classification")
def _classification(task: Any, model: torch.nn.Module, state: dict[str, Any], args: argparse.Namespace) -> list[str]:
    return predict_images(task, model, state, args.inputs, args.topk)


@register_predictor("segmentation")
def _segmentation(task: Any, model: torch.nn.Module, state: dict[str, Any], args: argparse.Namespace) -> list[str]:
    from glore.cli import output_folder

    out = output_folder(args.output or Path(args.checkpoint).parent / "predictions", "--output")
    label_dir = output_folder(args.label_ids, "--label-ids") if args.label_ids else None
    return predict_segmentation(task, model, state, args.inputs, out, label_dir)


@register_predictor("video")
def _video(task: Any, model: torch.nn.Module, state: dict[str, Any], args: argparse.Namespace) -> list[str]:
    return predict_videos(task, model, state, args.inputs, args.topk)


def run(args: argparse.Namespace) -> int:
    """Run ``glore predict``; returns the exit status."""
    from glore.engine import load_checkpoint, load_model

    if args.topk < 1:
        raise ValueError(f"--topk: expected a positive number of classes, got {args.topk}")
    folders = [p for p in args.inputs if Path(p).is_dir()]
    if folders:
        raise ValueError(f"INPUT: {folders[0]!r} is a folder; give the files in it (e.g. {folders[0]}/*.mp4)")
    missing = [p for p in args.inputs if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"INPUT: no such file {missing[0]!r}")
    state = load_checkpoint(args.checkpoint)
    if not state.get("config"):
        raise ValueError(f"checkpoint {args.checkpoint!r}: no config to read the preprocessing from")
    task = state.get("task") or state["config"].get("task", "classification")
    if task not in PREDICTORS:
        raise ValueError(
            f"checkpoint {args.checkpoint!r}: glore predict knows no {task!r} task; it predicts for "
            f"{', '.join(sorted(PREDICTORS))}"
        )
    if args.output is not None and task != "segmentation":
        raise ValueError(f"--output: only segmentation networks write files; this is a {task} checkpoint")
    model = load_model(args.checkpoint)
    for line in PREDICTORS[task](checkpoint_task(state, args.checkpoint), model, state, args):
        print(line)
    sys.stdout.flush()
    return 0
