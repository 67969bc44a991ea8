"""Image + mask transforms for segmentation, on PIL images and numpy masks.

A segmentation transform is called as ``transform(image, masks, generator=None)``: ``image`` an RGB PIL image,
``masks`` a list of integer arrays (H, W) of the image's size; the first is the label mask (class indices and the
ignore label), further ones (Cityscapes instance ids) follow the same geometry. It returns ``(tensor, masks)``:
the image as a normalised float tensor (3, h, w) and each mask as an integer tensor (h, w) of its own dtype.

``build_seg_transform(train, ...)`` builds one of two pipelines:

- training (``SegTrainTransform``): random scale (factor uniform in ``scale``, image bilinear, masks nearest),
  pad to the crop size (the image with the mean colour, so it normalises to 0; the label mask with
  ``ignore_index``; other masks with 0) at the bottom and right, random crop, horizontal flip with probability
  ``hflip``, photometric jitter of the image only (brightness, contrast, saturation, in random order), then
  normalisation: mmsegmentation's and PaddleSeg's Cityscapes pipelines;
- evaluation (``SegEvalTransform``): optionally resize the image (the masks keep the original resolution, on which
  the metrics are computed), then normalisation.

Randomness comes from ``torch``'s global generator (seeded per sample by the engine) or an explicit
``torch.Generator``, as every glore transform (``functional``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from .functional import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    array_to_tensor,
    check_channels,
    check_probability,
    check_size_pair,
    coin,
    jitter,
    masks_to_tensors,
    normalize,
    pad_crop,
    randint,
    resize_pair,
    uniform,
)

__all__ = ["SegTrainTransform", "SegEvalTransform", "build_seg_transform"]


def _check_masks(image: Image.Image, masks: Sequence[np.ndarray]) -> None:
    for i, mask in enumerate(masks):
        if not isinstance(mask, np.ndarray) or mask.ndim != 2:
            raise TypeError(f"masks[{i}] must be a 2-D numpy array, got {type(mask).__name__}")
        if mask.shape != (image.height, image.width):
            expected = (image.height, image.width)
            raise ValueError(f"masks[{i}] has shape {mask.shape}, expected the image's (H, W) {expected}")


class SegTrainTransform:
    """Random scale, pad and random crop, flip, photometric jitter, normalisation. Built by
    ``build_seg_transform(train=True, ...)``; see there for the arguments."""

    def __init__(
        self,
        crop_size: tuple[int, int],
        *,
        scale: tuple[float, float],
        base_size: tuple[int, int] | None,
        hflip: float,
        color_jitter: float,
        mean: Sequence[float],
        std: Sequence[float],
        ignore_index: int,
    ) -> None:
        self.crop_size = crop_size
        self.scale = scale
        self.base_size = base_size
        self.hflip = hflip
        self.color_jitter = color_jitter
        self.mean = mean
        self.std = std
        self.ignore_index = ignore_index
        self.image_fill = tuple(int(round(255 * m)) for m in (mean * 3 if len(mean) == 1 else mean))
        self.draft_size: int | None = None

    def scaled_size(self, height: int, width: int, generator: torch.Generator | None = None) -> tuple[int, int]:
        """Draw the scale factor and return the scaled (height, width) of an image of this size (relative to
        ``base_size`` when set, as mmsegmentation's ``ratio_range``)."""
        factor = uniform(self.scale[0], self.scale[1], generator)
        if self.base_size is not None:
            # Fit the image into base_size (keeping its aspect ratio), then scale by the factor.
            fit = min(self.base_size[0] / height, self.base_size[1] / width)
            factor *= fit
        return max(1, int(round(height * factor))), max(1, int(round(width * factor)))

    def __call__(
        self, image: Image.Image, masks: Sequence[np.ndarray], generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Transform an image and its masks.

        Args:
            image: RGB PIL image (other modes are converted).
            masks: integer arrays (H, W) of the image's size: the label mask first (padded with ``ignore_index``),
                then any others (padded with 0).
            generator: random generator; the global torch generator when None.

        Returns:
            The normalised image (3, crop_h, crop_w) and the masks as integer tensors (crop_h, crop_w).
        """
        if image.mode != "RGB":
            image = image.convert("RGB")
        _check_masks(image, masks)
        size = self.scaled_size(image.height, image.width, generator)
        image, masks = resize_pair(image, masks, size)
        crop_h, crop_w = self.crop_size
        height, width = size
        # Pad at the bottom and right to the crop size, then crop at a random offset.
        top = randint(0, max(height - crop_h, 0), generator)
        left = randint(0, max(width - crop_w, 0), generator)
        fills = [self.ignore_index] + [0] * (len(masks) - 1)
        array, masks = pad_crop(
            np.asarray(image), masks, (top, left, crop_h, crop_w), image_fill=self.image_fill, mask_fills=fills
        )
        if coin(self.hflip, generator):
            array = array[:, ::-1]
            masks = [mask[:, ::-1] for mask in masks]
        tensor = array_to_tensor(array)
        if self.color_jitter > 0:
            tensor = jitter(tensor, self.color_jitter, generator)
        return normalize(tensor, self.mean, self.std), masks_to_tensors(masks)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(crop_size={self.crop_size}, scale={self.scale}, base_size={self.base_size}, "
            f"hflip={self.hflip}, color_jitter={self.color_jitter}, ignore_index={self.ignore_index})"
        )


class SegEvalTransform:
    """Optional resize of the image only (the masks keep their resolution), then normalisation. Built by
    ``build_seg_transform(train=False, ...)``."""

    def __init__(self, *, resize: tuple[int, int] | float | None, mean: Sequence[float], std: Sequence[float]) -> None:
        self.resize = resize
        self.mean = mean
        self.std = std
        self.draft_size: int | None = None

    def __call__(
        self, image: Image.Image, masks: Sequence[np.ndarray], generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Transform an image and its masks (deterministic; ``generator`` is accepted for a uniform interface).

        Returns:
            The normalised image (3, h, w) (resized when ``resize`` is set) and the masks as integer tensors at the
            image's original resolution.
        """
        if image.mode != "RGB":
            image = image.convert("RGB")
        _check_masks(image, masks)
        if self.resize is not None:
            if isinstance(self.resize, tuple):
                height, width = self.resize
            else:
                height, width = (max(1, int(round(v * self.resize))) for v in (image.height, image.width))
            if (width, height) != image.size:
                image = image.resize((width, height), Image.Resampling.BILINEAR)
        return normalize(array_to_tensor(np.asarray(image)), self.mean, self.std), masks_to_tensors(masks)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(resize={self.resize}, mean={self.mean}, std={self.std})"


def build_seg_transform(
    train: bool,
    *,
    crop_size: int | tuple[int, int] = (512, 1024),
    scale: tuple[float, float] = (0.5, 2.0),
    base_size: int | tuple[int, int] | None = None,
    hflip: float = 0.5,
    color_jitter: float = 0.0,
    resize: int | tuple[int, int] | float | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    ignore_index: int = 255,
) -> SegTrainTransform | SegEvalTransform:
    """Build the training or evaluation transform of a segmentation dataset.

    Args:
        train: True for random scale, pad + random crop, flip and jitter; False for the evaluation transform.
        crop_size: training: (height, width) of the crop, or one int for a square; PaddleSeg's Cityscapes "1024x512"
            (width x height) is ``(512, 1024)`` here.
        scale: training: range of the random scale factor, sampled uniformly.
        base_size: training: when set, (height, width) the image is first fitted into (keeping its aspect ratio)
            before the random factor applies; None scales the image as read (Cityscapes: 1024 x 2048).
        hflip: training: probability of a horizontal flip.
        color_jitter: training: strength s of the brightness, contrast and saturation jitter (factors uniform in
            [1 - s, 1 + s]); 0 disables it.
        resize: evaluation: None (full resolution), a factor (float), or (height, width) for the image; the masks
            stay at the original resolution.
        mean: per-channel mean subtracted after scaling to [0, 1] (also the padding colour).
        std: per-channel standard deviation divided by.
        ignore_index: training: the label the padding of the label mask gets.

    Returns:
        A callable ``transform(image, masks, generator=None) -> (tensor (3, h, w), [mask tensors])``.

    Raises:
        ValueError: an argument is out of its range; the message names it.
    """
    mean = check_channels("mean", mean)
    std = check_channels("std", std, positive=True)
    if not train:
        if resize is not None and not isinstance(resize, float):
            resize = check_size_pair("resize", resize)
        elif isinstance(resize, float) and not (math.isfinite(resize) and resize > 0):
            raise ValueError(f"resize must be a positive factor, (height, width) or None, got {resize!r}")
        return SegEvalTransform(resize=resize, mean=mean, std=std)
    crop = check_size_pair("crop_size", crop_size)
    base = None if base_size is None else check_size_pair("base_size", base_size)
    if (
        isinstance(scale, str)
        or not isinstance(scale, Sequence)
        or len(scale) != 2
        or not all(isinstance(v, numbers.Real) and math.isfinite(v) for v in scale)
        or not 0 < scale[0] <= scale[1]
    ):
        raise ValueError(f"scale must be a pair (min, max) with 0 < min <= max, got {scale!r}")
    hflip = check_probability("hflip", hflip)
    color_jitter = check_probability("color_jitter", color_jitter, "a strength")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise ValueError(f"ignore_index must be an int, got {ignore_index!r}")
    return SegTrainTransform(
        crop,
        scale=(float(scale[0]), float(scale[1])),
        base_size=base,
        hflip=float(hflip),
        color_jitter=float(color_jitter),
        mean=mean,
        std=std,
        ignore_index=int(ignore_index),
    )
