"""``glore predict CHECKPOINT INPUT...``: what a trained network says about images or videos.

The checkpoint's task decides what is printed or written:

- classification: the top-k classes of each image, with their names and probabilities;
- segmentation: a colourised mask PNG and an overlay PNG per image in ``--output`` (default: ``predictions/``
  beside the checkpoint), and each image's class shares printed;
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


def _stats(data: dict[str, Any]) -> tuple[list[float], list[float]]:
    if data.get("transform") == "none" and str(data.get("name", "")).startswith("relational"):
        from glore.data.synthetic import RELATIONAL_MEAN, RELATIONAL_STD

        return list(RELATIONAL_MEAN), list(RELATIONAL_STD)
    return list(data.get("mean", (0.485, 0.456, 0.406))), list(data.get("std", (0.229, 0.224, 0.225)))


def _read_image(path: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"INPUT {path!r}: not a readable image ({error})") from None


def _normalise(image: Any, size: int | None, mean: list[float], std: list[float]) -> torch.Tensor:
    """An RGB PIL image as a normalised tensor (3, H, W), resized to ``size`` x ``size`` when given."""
    from PIL import Image

    if size is not None:
        image = image.resize((size, size), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)  # (H, W, 3) -> (3, H, W)
    return (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def _names(state: dict[str, Any], count: int) -> list[str]:
    classes = list(state.get("classes") or [])
    return classes if len(classes) == count else [f"class {k}" for k in range(count)]


def _topk_line(probs: torch.Tensor, names: list[str], k: int) -> str:
    values, indices = probs.topk(min(k, probs.numel()))
    return ", ".join(f"{names[i]} {p:.3f}" for p, i in zip(values.tolist(), indices.tolist(), strict=True))


@torch.no_grad()
def predict_images(model: torch.nn.Module, state: dict[str, Any], paths: list[str], topk: int) -> list[str]:
    """One line per image: its top-k classes and probabilities."""
    data = state["config"]["data"]
    mean, std = _stats(data)
    lines = []
    for path in paths:
        x = _normalise(_read_image(path), int(data.get("image_size", 224)), mean, std)
        probs = model(x[None]).float().softmax(dim=1)[0]  # (1, K) -> (K,)
        lines.append(f"{path}: {_topk_line(probs, _names(state, probs.numel()), topk)}")
    return lines


@torch.no_grad()
def predict_segmentation(model: torch.nn.Module, state: dict[str, Any], paths: list[str], out_dir: Path) -> list[str]:
    """Write ``<stem>_mask.png`` (colourised classes) and ``<stem>_overlay.png`` per image; one line each."""
    from PIL import Image

    from glore._io import atomic_path
    from glore.data.cityscapes import colorize
    from glore.tasks.segmentation import predict_probabilities

    data = state["config"]["data"]
    mean, std = _stats(data)
    cityscapes = data.get("name") == "cityscapes"
    palette = np.random.default_rng(0).integers(0, 256, (256, 3), dtype=np.uint8)
    palette[0] = 0
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for path in paths:
        image = _read_image(path)
        x = _normalise(image, None, mean, std)
        labels = predict_probabilities(model, x[None]).argmax(dim=1)[0].numpy()  # (H, W)
        rgb = colorize(labels) if cityscapes else palette[labels]
        overlay = (0.5 * np.asarray(image, dtype=np.float32) + 0.5 * rgb).astype(np.uint8)
        stem = Path(path).stem
        for suffix, array in (("mask", rgb), ("overlay", overlay)):
            with atomic_path(out_dir / f"{stem}_{suffix}.png") as tmp:
                Image.fromarray(array.astype(np.uint8), mode="RGB").save(tmp, format="PNG")
        names = _names(state, int(model.model_config.get("num_classes", labels.max() + 1)))
        counts = np.bincount(labels.ravel(), minlength=len(names)) / labels.size
        shares = ", ".join(f"{names[k]} {counts[k]:.2f}" for k in np.argsort(-counts)[:5] if counts[k] > 0)
        lines.append(f"{path}: {out_dir / (stem + '_mask.png')} ({shares})")
    return lines


@torch.no_grad()
def predict_videos(model: torch.nn.Module, state: dict[str, Any], paths: list[str], topk: int) -> list[str]:
    """One line per video: its top-k classes, the softmax averaged over the recipe's test views."""
    from glore.data.video import VideoDataset

    data = state["config"]["data"]
    options = {**data.get("kwargs", {}), **data.get("val_kwargs", {})}
    allowed = ("num_frames", "interval", "num_clips", "num_crops", "crop_size", "test_short_side")
    kwargs = {k: v for k, v in options.items() if k in allowed}
    if "image_size" in options and "crop_size" not in kwargs:  # generated clips of image_size x image_size
        kwargs["crop_size"] = kwargs["test_short_side"] = int(options["image_size"])
    mean, std = _stats(data)
    size = int(kwargs.get("crop_size", 224))
    kwargs.setdefault("test_short_side", max(size, 256 if size >= 224 else size))
    kwargs["short_side"] = (kwargs["test_short_side"], kwargs["test_short_side"])
    lines = []
    for path in paths:
        videos = VideoDataset([(path, 0)], ["?"], train=False, mean=mean, std=std, **kwargs)
        views = torch.stack([videos[i][0] for i in range(len(videos))])  # (views, 3, T, H, W)
        probs = model(views).float().softmax(dim=1).mean(dim=0)  # (views, K) -> (K,)
        lines.append(f"{path}: {_topk_line(probs, _names(state, probs.numel()), topk)}")
    return lines


Predictor = Callable[[torch.nn.Module, dict[str, Any], argparse.Namespace], list[str]]

# task name (a checkpoint's ``task``) -> what ``glore predict`` does with its network and the command's arguments.
PREDICTORS: dict[str, Predictor] = {}


def register_predictor(task: str) -> Callable[[Predictor], Predictor]:
    """Register ``fn(model, checkpoint_state, args) -> lines`` as what ``glore predict`` does for checkpoints of
    ``task`` (a task added by another package registers its own)."""

    def add(fn: Predictor) -> Predictor:
        PREDICTORS[task] = fn
        return fn

    return add


@register_predictor("classification")
def _classification(model: torch.nn.Module, state: dict[str, Any], args: argparse.Namespace) -> list[str]:
    return predict_images(model, state, args.inputs, args.topk)


@register_predictor("segmentation")
def _segmentation(model: torch.nn.Module, state: dict[str, Any], args: argparse.Namespace) -> list[str]:
    from glore.cli import output_folder

    out = output_folder(args.output or Path(args.checkpoint).parent / "predictions", "--output")
    return predict_segmentation(model, state, args.inputs, out)


@register_predictor("video")
def _video(model: torch.nn.Module, state: dict[str, Any], args: argparse.Namespace) -> list[str]:
    return predict_videos(model, state, args.inputs, args.topk)


def run(args: argparse.Namespace) -> int:
    """Run ``glore predict``; returns the exit status."""
    from glore.engine import load_checkpoint, load_model

    if args.topk < 1:
        raise ValueError(f"--topk: expected a positive number of classes, got {args.topk}")
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
    for line in PREDICTORS[task](model, state, args):
        print(line)
    sys.stdout.flush()
    return 0
