"""``glore demo segmentation``: an FCN with and without the GloRe head on the built-in ``relational_seg`` images.

Every grey object's class is the colour of one small marker placed at the far side of the image, beyond what the
plain FCN sees: its receptive field (25 pixels, ``configs/demo_segmentation.yaml``) is smaller than the gap between
the marker and any object (``min_gap``), so its prediction for an object pixel is the same whatever the marker's
colour (``glore.tools.demo_data.RelationalSegDataset``). The GloRe head must carry the marker's colour across the
image. The demo trains ``fcn_resnet_small`` with the plain FCN head and with the GloRe head, three seeds each, and
compares test mIoU; its sampling noise is a bootstrap over the test images (``miou_noise``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from glore.tools.demo import TASK_QUICK_OVERRIDES, TEST_SPLIT, Demo, _head_variants, register_demo

__all__ = ["SEGMENTATION_DEMO", "bootstrap_miou", "miou_noise"]


def bootstrap_miou(confusions: np.ndarray, rounds: int = 200, seed: int = 0) -> np.ndarray:
    """mIoU of ``rounds`` resamples (with replacement) of the test images.

    Args:
        confusions: (n, K, K) per-image confusion matrices, rows the true class, columns the predicted one.
        rounds: resamples.
        seed: of the resampling (the same seed gives the same resamples).

    Returns:
        (rounds,) mIoU values: the mean over classes of TP / (TP + FP + FN), classes with none of them left out, as
        ``glore.metrics.SegmentationMeter`` computes it.
    """
    confusions = np.asarray(confusions, dtype=np.float64)
    if confusions.ndim != 3 or confusions.shape[1] != confusions.shape[2] or len(confusions) == 0:
        raise ValueError(f"confusions: expected (n, K, K) with n >= 1, got shape {confusions.shape}")
    rng = np.random.default_rng(seed)
    n = len(confusions)
    values = np.empty(rounds)
    for i in range(rounds):
        conf = confusions[rng.integers(0, n, size=n)].sum(axis=0)  # (K, K)
        tp = np.diag(conf)
        union = conf.sum(axis=0) + conf.sum(axis=1) - tp
        seen = union > 0
        values[i] = (tp[seen] / union[seen]).mean() if seen.any() else np.nan
    return values


def miou_noise(config: Any, checkpoint: Path, value: float, test_size: int) -> float:
    """The sampling standard deviation of a checkpoint's test mIoU: the standard deviation of ``bootstrap_miou``
    over the test images, predicted as the task predicts them (``SegmentationTask.probabilities``)."""
    from glore.engine import load_model
    from glore.engine.task import build_task

    task = build_task(config)
    dataset = task.build_dataset(TEST_SPLIT, train=False)
    model = load_model(checkpoint)
    k, ignore = int(dataset.num_classes), int(getattr(dataset, "ignore_index", 255))
    confusions = []
    with torch.no_grad():
        for start in range(0, len(dataset), 64):
            items = [dataset[i] for i in range(start, min(start + 64, len(dataset)))]
            images = torch.stack([item[0] for item in items])  # (n, 3, H, W)
            masks = torch.stack([item[1] for item in items])  # (n, H, W)
            pred = task.probabilities(model, images, tuple(masks.shape[-2:])).argmax(dim=1)  # (n, H, W)
            for p, m in zip(pred, masks, strict=True):
                valid = m != ignore
                codes = m[valid] * k + p[valid]
                confusions.append(torch.bincount(codes, minlength=k * k).view(k, k).numpy())  # (K, K)
    return float(np.nanstd(bootstrap_miou(np.stack(confusions)), ddof=1))


SEGMENTATION_DEMO = register_demo(
    Demo(
        name="segmentation",
        config="demo_segmentation.yaml",
        title="a GloRe head on relational segmentation",
        question="Every grey object takes the class of the colour of a small marker at the far side of the image.",
        difference="head",
        variants=_head_variants,
        quick=TASK_QUICK_OVERRIDES,
        why="Why the plain head cannot: the network's output pixel sees 25 x 25 input pixels (its receptive field, "
        "with the final upsampling), and the marker is at least 26 pixels from every object along one axis. So its "
        "prediction for an object pixel is the same whatever the marker's colour, and with two equally likely "
        "colours it labels at most half the object pixels right, however long it trains. The GloRe head pools the "
        "whole map into graph nodes and projects the mixed node states back to every pixel, so the marker's colour "
        "can reach the objects.",
        noise=miou_noise,
    )
)
