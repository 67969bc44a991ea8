"""Semantic segmentation: per-pixel cross-entropy (ignore label 255) with an auxiliary head and optional OHEM,
whole-image or sliding-window inference with multi-scale and flip testing, confusion-matrix metrics (mIoU, and the
Cityscapes iIoU when instance maps are given), and predictions written as PNGs.

Preprocessing: ``data.mean`` and ``data.std`` normalise the images (``data.transform: standard``); the training
augmentation and the evaluation resize are the task's own settings below, so ``data.color_jitter``,
``data.crop_scale`` and ``data.eval_crop_ratio`` (image classification's) are refused when the config loads.

``config.task_args`` (all optional; ``SegmentationTask.settings``, from which this table is written):

"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from glore.engine.config import DataConfig
from glore.engine.settings import Setting, settings_table
from glore.engine.task import Meter, Task, register_task

from ._common import USER_TRANSFORM, build_zoo_model, resolve_task_args, user_transform
from ._inputs import generated, generated_image_tensor, input_batch, read_input_image

__all__ = [
    "IGNORE_INDEX",
    "SegmentationTask",
    "main_logits",
    "ohem_cross_entropy",
    "predict_probabilities",
    "sliding_window_logits",
]

IGNORE_INDEX = 255


def main_logits(outputs: Any) -> torch.Tensor:
    """The main head's logits (n, K, H, W) of a segmentation network's output (a tensor or ``{"out": ...}``)."""
    if isinstance(outputs, dict):
        if "out" not in outputs:
            raise ValueError(f"outputs: expected a tensor or a dict with 'out', got keys {sorted(outputs)}")
        return outputs["out"]
    return outputs


_SIZE = int | tuple[int, int]  # one side (a square) or (height, width)
_OHEM = {
    "thresh": Setting(float, 0.7, "pixels whose true-class probability is at most this are hard", gt=0, le=1),
    "min_kept": Setting(int, 100_000, "at least this many of the hardest pixels are kept", ge=0),
}


def _ordered(value: list[float]) -> str | None:
    return None if value[0] <= value[1] else "expected [min, max] with min <= max"


def _pair(name: str, value: Any) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if not (isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value)):
        raise ValueError(f"task_args.{name}: expected a positive int or [height, width], got {value!r}")
    return int(value[0]), int(value[1])


def sliding_window_logits(
    model: nn.Module, images: torch.Tensor, crop: tuple[int, int], stride: tuple[int, int]
) -> torch.Tensor:
    """Logits of ``images`` (n, 3, H, W) from windows of ``crop`` moved by ``stride``, averaged where windows
    overlap. The last window of a row or column is aligned with the border; an image smaller than the window is
    padded with zeros (the normalised mean) and the padding cropped from the logits.

    Returns:
        Logits (n, K, H, W).
    """
    n, _, h, w = images.shape
    ch, cw = crop
    sh, sw = stride
    pad_h, pad_w = max(ch - h, 0), max(cw - w, 0)
    if pad_h or pad_w:
        images = F.pad(images, (0, pad_w, 0, pad_h))  # (n, 3, H', W')
    ph, pw = images.shape[-2:]
    rows = sorted({*range(0, ph - ch, sh), ph - ch})
    cols = sorted({*range(0, pw - cw, sw), pw - cw})
    total: torch.Tensor | None = None
    count = images.new_zeros(1, 1, ph, pw)
    for y in rows:
        for x in cols:
            logits = main_logits(model(images[:, :, y : y + ch, x : x + cw]))  # (n, K, ch, cw)
            if logits.shape[-2:] != (ch, cw):
                logits = F.interpolate(logits, size=(ch, cw), mode="bilinear", align_corners=False)
            if total is None:
                total = logits.new_zeros(n, logits.shape[1], ph, pw)
            total[:, :, y : y + ch, x : x + cw] += logits
            count[:, :, y : y + ch, x : x + cw] += 1
    assert total is not None
    return (total / count)[:, :, :h, :w]  # (n, K, H, W)


def predict_probabilities(
    model: nn.Module,
    images: torch.Tensor,
    *,
    size: tuple[int, int] | None = None,
    mode: str = "whole",
    crop: tuple[int, int] = (512, 1024),
    stride: tuple[int, int] = (341, 683),
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
) -> torch.Tensor:
    """Class probabilities (n, K, h, w) of ``images`` (n, 3, H, W), averaged over ``scales`` and, with ``flip``,
    the mirrored images; ``size`` (h, w) is the resolution of the result (default the input's).

    Args:
        model: a network returning logits or ``{"out": logits}``.
        images: normalised images.
        size: output resolution (the label mask's, when the image was resized for evaluation).
        mode: ``"whole"`` (one forward pass of each image) or ``"slide"`` (``sliding_window_logits``).
        crop: ``slide``: the window.
        stride: ``slide``: its stride.
        scales: factors the image is resized by before inference.
        flip: also run the horizontally flipped image and flip its prediction back.
    """
    if mode not in ("whole", "slide"):
        raise ValueError(f"task_args.mode: expected 'whole' or 'slide', got {mode!r}")
    if not scales or any(not (isinstance(s, int | float) and s > 0) for s in scales):
        raise ValueError(f"task_args.scales: expected positive factors, got {list(scales)!r}")
    h, w = images.shape[-2:]
    out_size = size or (h, w)
    total: torch.Tensor | None = None
    views = 0
    for scale in scales:
        scaled = images
        if scale != 1.0:
            target = (max(int(round(h * scale)), 1), max(int(round(w * scale)), 1))
            scaled = F.interpolate(images, size=target, mode="bilinear", align_corners=False)  # (n, 3, h', w')
        for flipped in (False, True) if flip else (False,):
            x = scaled.flip(-1) if flipped else scaled
            if mode == "slide":
                logits = sliding_window_logits(model, x, crop, stride)
            else:
                logits = main_logits(model(x))
            if flipped:
                logits = logits.flip(-1)
            if logits.shape[-2:] != tuple(out_size):
                logits = F.interpolate(logits.float(), size=out_size, mode="bilinear", align_corners=False)
            probs = logits.float().softmax(dim=1)  # (n, K, h, w)
            total = probs if total is None else total + probs
            views += 1
    assert total is not None
    return total / views


def ohem_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, *, thresh: float = 0.7, min_kept: int = 100_000
) -> torch.Tensor:
    """Cross-entropy over the hard pixels only: those whose probability of the true class is at most ``thresh``,
    and at least the ``min_kept`` hardest (PaddleSeg's and mmsegmentation's OHEM for Cityscapes). Pixels labelled
    ``IGNORE_INDEX`` never count.

    Args:
        logits: (n, K, H, W).
        target: (n, H, W) class indices or ``IGNORE_INDEX``.
        thresh: probability below which a pixel is hard.
        min_kept: least number of pixels kept (all valid pixels when there are fewer).
    """
    if not 0.0 < thresh <= 1.0:
        raise ValueError(f"task_args.ohem.thresh: expected a probability in (0, 1], got {thresh!r}")
    per_pixel = F.cross_entropy(logits.float(), target, ignore_index=IGNORE_INDEX, reduction="none").flatten()
    valid = target.flatten() != IGNORE_INDEX  # (n*H*W,)
    if not bool(valid.any()):
        return per_pixel.sum() * 0.0
    losses = per_pixel[valid]
    true_prob = torch.exp(-losses.detach())  # the softmax probability of the true class
    threshold = torch.tensor(thresh, device=losses.device)
    if min_kept > 0:
        k = min(int(min_kept), losses.numel())
        kth = true_prob.kthvalue(k).values  # the k-th smallest probability
        threshold = torch.maximum(threshold, kth)
    kept = true_prob <= threshold
    return losses[kept].mean()


@register_task("segmentation")
class SegmentationTask(Task):
    """Semantic segmentation (``config.task: segmentation``); options in ``config.task_args`` (module docstring).

    Datasets return ``(image, target, meta)`` with ``target`` a label mask (H, W) of class indices and
    ``IGNORE_INDEX``, or ``{"mask": ..., "instances": ...}`` (Cityscapes instance ids, for iIoU); ``meta`` has the
    sample's ``id`` and ``file``. Networks return logits or ``{"out": logits, "aux": logits}`` at the input size.
    """

    metrics = {"miou": "max", "pixel_acc": "max", "iiou": "max", "miou_category": "max", "iiou_category": "max"}
    train_metrics = False
    settings: ClassVar[dict[str, Setting]] = {
        "aux_weight": Setting(float, 0.4, "weight of the auxiliary head's loss (``{out, aux}`` outputs)", ge=0),
        "ohem": Setting(
            dict | None, None, "online hard example mining: ``{thresh: 0.7, min_kept: 100000}``", fields=_OHEM
        ),
        "crop_size": Setting(_SIZE, [512, 1024], "training crop (height, width; an int: square)", gt=0),
        "scale": Setting(tuple[float, float], [0.5, 2.0], "training random scale range", gt=0, check=_ordered),
        "hflip": Setting(float, 0.5, "training flip probability", ge=0, le=1),
        "color_jitter": Setting(float, 0.0, "training brightness, contrast, saturation jitter strength", ge=0, le=1),
        "eval_resize": Setting(
            int | float | tuple[int, int] | None,
            None,
            "evaluation: resize the image by a factor (float), to [height, width] or to n x n (int); masks keep theirs",
            gt=0,
        ),
        "mode": Setting(Literal["whole", "slide"], "whole", "inference: whole image or sliding windows"),
        "crop": Setting(_SIZE, [512, 1024], "``slide``: window (height, width)", gt=0),
        "stride": Setting(_SIZE, [341, 683], "``slide``: stride (height, width)", gt=0),
        "scales": Setting(list[float], [1.0], "inference scales (multi-scale testing averages their softmax)", gt=0),
        "flip": Setting(bool, False, "also average the horizontally flipped image"),
        "save_predictions": Setting(str | None, None, "a folder: one label PNG per image (Cityscapes: labelIds)"),
        "save_color": Setting(
            str | None, None, "a folder for colour PNGs, apart from save_predictions (which the official script reads)"
        ),
    }

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.args = a = resolve_task_args(config, type(self))
        self.crop = _pair("crop", a["crop"])
        self.stride = _pair("stride", a["stride"])

    @classmethod
    def unused_data(cls, data: DataConfig) -> dict[str, str]:
        """Image classification's augmentation fields (the task has its own), and the normalisation when
        ``data.transform`` is none."""
        unused = {
            "color_jitter": "its training colour jitter is task_args.color_jitter",
            "crop_scale": "its training scale range is task_args.scale, its crop task_args.crop_size",
            "eval_crop_ratio": "evaluation resizing is task_args.eval_resize",
        }
        if data.transform == "none":
            unused.update(mean="data.transform is none", std="data.transform is none")
        elif data.transform != "standard":
            unused.update(mean=USER_TRANSFORM, std=USER_TRANSFORM)
        return unused

    # -- data and network ---------------------------------------------------------------------------------------

    def build_dataset(self, split: str, *, train: bool) -> Dataset:
        """A segmentation dataset from ``config.data`` with the joint transform of ``task_args``."""
        from glore.data import create_dataset
        from glore.data.transforms import build_seg_transform

        d, a = self.config.data, self.args
        kwargs = {**d.kwargs, **(d.train_kwargs if train else d.val_kwargs)}
        transform = user_transform(self.config, train=train)
        if d.transform == "standard":
            if train:
                transform = build_seg_transform(
                    True,
                    crop_size=_pair("crop_size", a["crop_size"]),
                    scale=tuple(a["scale"]),
                    hflip=a["hflip"],
                    color_jitter=a["color_jitter"],
                    mean=d.mean,
                    std=d.std,
                    ignore_index=IGNORE_INDEX,
                )
            else:
                transform = self.eval_transform()
        return create_dataset(d.name, d.root, split, transform=transform, on_error=d.on_error, **kwargs)

    def build_model(self, train_dataset: Dataset) -> nn.Module:
        """``glore.models.create_model`` with ``config.model`` (an ``fcn_*`` network)."""
        return build_zoo_model(self.config, train_dataset)

    # -- steps --------------------------------------------------------------------------------------------------

    @staticmethod
    def _mask(targets: Any) -> torch.Tensor:
        return targets["mask"] if isinstance(targets, dict) else targets

    def _pixel_loss(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if logits.shape[-2:] != mask.shape[-2:]:
            logits = F.interpolate(logits, size=mask.shape[-2:], mode="bilinear", align_corners=False)
        ohem = self.args["ohem"]
        if ohem is not None:
            return ohem_cross_entropy(logits, mask, thresh=ohem["thresh"], min_kept=ohem["min_kept"])
        return F.cross_entropy(logits.float(), mask, ignore_index=IGNORE_INDEX)

    def loss(self, outputs: Any, targets: Any, *, train: bool) -> torch.Tensor:
        """Cross-entropy of the main head (ignoring ``IGNORE_INDEX``), plus ``aux_weight`` times the auxiliary
        head's during training."""
        mask = self._mask(targets)
        loss = self._pixel_loss(main_logits(outputs), mask)
        if train and isinstance(outputs, dict) and "aux" in outputs and self.args["aux_weight"]:
            loss = loss + self.args["aux_weight"] * self._pixel_loss(outputs["aux"], mask)
        return loss

    def eval_step(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """Class probabilities (n, K, h, w) at the label mask's resolution, by whole-image or sliding-window
        inference over ``task_args.scales`` (and flips); writes prediction PNGs when ``save_predictions`` is set."""
        a = self.args
        mask = self._mask(batch.targets)
        probs = self.probabilities(model, batch.inputs, tuple(mask.shape[-2:]))
        if a["save_predictions"]:
            self.save_predictions(probs.argmax(dim=1), batch.meta, Path(a["save_predictions"]))
        return probs

    def eval_loss(self, preds: torch.Tensor, batch: Any) -> torch.Tensor:
        """Negative log-likelihood of the averaged probabilities (the cross-entropy when one view is used)."""
        mask = self._mask(batch.targets)
        return F.nll_loss(preds.clamp_min(1e-12).log(), mask, ignore_index=IGNORE_INDEX)

    def create_meter(self, dataset: Dataset, *, train: bool = False) -> Meter:
        """A ``glore.metrics.SegmentationMeter`` for the dataset's classes (Cityscapes: with categories and iIoU)."""
        from glore.metrics.segmentation import SegmentationMeter

        return SegmentationMeter.for_dataset(dataset)

    # -- inference and raw inputs -------------------------------------------------------------------------------

    def probabilities(self, model: nn.Module, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Class probabilities (n, K, h, w) at ``size`` (the label mask's, the file's) by the inference
        ``task_args`` describe (``mode``, ``crop``, ``stride``, ``scales``, ``flip``): what ``eval_step`` and
        ``predict`` return."""
        a = self.args
        return predict_probabilities(
            model,
            images,
            size=size,
            mode=a["mode"],
            crop=self.crop,
            stride=self.stride,
            scales=a["scales"],
            flip=a["flip"],
        )

    def eval_transform(self) -> Any:
        """The evaluation transform the datasets get with ``data.transform: standard`` (resize by
        ``task_args.eval_resize``, normalise with ``data.mean``/``data.std``); None otherwise (the dataset's own)."""
        from glore.data.transforms import build_seg_transform

        d = self.config.data
        if d.transform != "standard":
            return user_transform(self.config, train=False)
        return build_seg_transform(False, resize=self.args["eval_resize"], mean=d.mean, std=d.std)

    def load_input(self, path: str) -> Any:
        """An image file as the evaluation datasets make it: read by ``glore.data.read_image`` and passed through
        ``eval_transform()`` (the file datasets' default without it; the generated data's own normalisation for
        ``relational_seg`` with ``data.transform: none``). Inputs (1, 3, h, w); ``meta["size"]`` the file's (H, W),
        the resolution of the prediction."""
        if generated(self.config.data.name) and self.config.data.transform != "standard":
            x = generated_image_tensor(path)
            return input_batch(x[None], path, size=tuple(x.shape[-2:]))
        from glore.data.transforms import build_seg_transform

        transform = self.eval_transform() or build_seg_transform(train=False)
        image = read_input_image(path)
        x, _ = transform(image, [])
        return input_batch(x[None], path, size=(image.height, image.width))  # (1, 3, h, w)

    def predict(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """Class probabilities (1, K, H, W) of a ``load_input`` batch at the file's resolution, by the same
        inference as ``eval_step``."""
        return self.probabilities(model, batch.inputs, tuple(batch.meta["size"][0]))

    def input_size(self, model: nn.Module | None = None) -> tuple[int, ...]:
        """(H, W) the network sees at evaluation: the ``slide`` window; else the image after ``eval_resize``: the
        generated data's side, or the network's default input (Cityscapes: 1024 x 2048) for files."""
        a, d = self.args, self.config.data
        if a["mode"] == "slide":
            return self.crop
        resize = a["eval_resize"]
        if resize is not None and not isinstance(resize, float):
            return _pair("eval_resize", resize)
        if generated(d.name):
            side = int({**d.kwargs, **d.val_kwargs}.get("image_size", d.image_size))
            height, width = side, side
        else:
            height, width = super().input_size(model)[-2:] if model is not None else (d.image_size, d.image_size)
        factor = 1.0 if resize is None else float(resize)
        return max(1, int(round(height * factor))), max(1, int(round(width * factor)))

    def input_normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``data.mean``/``data.std`` with the standard transform; else the dataset's own (the generated data's
        statistics, ImageNet's for files)."""
        if self.config.data.transform == "standard":
            return super().input_normalization()
        from glore.data import RELATIONAL_MEAN, RELATIONAL_STD
        from glore.data.transforms import IMAGENET_MEAN, IMAGENET_STD

        if generated(self.config.data.name):
            return tuple(RELATIONAL_MEAN), tuple(RELATIONAL_STD)
        return tuple(IMAGENET_MEAN), tuple(IMAGENET_STD)

    # -- predictions --------------------------------------------------------------------------------------------

    def save_predictions(self, labels: torch.Tensor, meta: dict[str, list[Any]], folder: Path) -> None:
        """Write one PNG per image of the batch (see ``save_prediction_png``)."""
        ids = meta.get("id") or [f"{i:06d}" for i in range(len(labels))]
        color = self.args["save_color"]
        for name, label in zip(ids, labels.cpu(), strict=True):
            cityscapes = self.config.data.name == "cityscapes"
            save_prediction_png(label, folder, str(name), cityscapes=cityscapes, color_folder=color)


def save_prediction_png(
    label: torch.Tensor,
    folder: str | Path,
    name: str,
    *,
    cityscapes: bool = False,
    color_folder: str | Path | None = None,
) -> list[Path]:
    """Write a predicted label map (H, W) of class indices as an 8-bit PNG.

    For Cityscapes the train ids are mapped to labelIds and the file is ``<name>_pred_labelIds.png`` (``name`` is
    ``city_seq_frame``, which ``csEvalPixelLevelSemanticLabeling`` finds in the folder); otherwise class indices in
    ``<name>_pred.png``. ``color_folder`` adds ``<name>_pred_color.png`` there (the Cityscapes palette, or a fixed
    palette): a folder of its own, because the official script takes every PNG under its results folder whose name
    holds an image id, and two files for one image make it stop ("Found multiple predictions").

    Returns:
        The files written.
    """
    import numpy as np
    from PIL import Image

    from glore._io import atomic_path
    from glore.data.cityscapes import colorize, train_to_label_ids

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ids = label.numpy().astype(np.int64)
    written = []
    if cityscapes:
        path = folder / f"{name}_pred_labelIds.png"
        array = train_to_label_ids(ids)
    else:
        path = folder / f"{name}_pred.png"
        array = np.where((ids >= 0) & (ids < 256), ids, 255).astype(np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(array.astype(np.uint8), mode="L").save(tmp, format="PNG")
    written.append(path)
    if color_folder is not None:
        if cityscapes:
            rgb = colorize(ids)
        else:
            palette = np.random.default_rng(0).integers(0, 256, (256, 3), dtype=np.uint8)
            rgb = palette[np.clip(ids, 0, 255)]
        color_path = Path(color_folder) / f"{name}_pred_color.png"
        color_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(color_path) as tmp:
            Image.fromarray(rgb.astype(np.uint8), mode="RGB").save(tmp, format="PNG")
        written.append(color_path)
    return written


__doc__ = (__doc__ or "") + settings_table(SegmentationTask.settings) + "\n"
