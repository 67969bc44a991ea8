"""Image transforms for classification: one call ``transform(image, generator=None)`` turns a PIL image into a
normalised float tensor (3, image_size, image_size).

- training (``TrainTransform``): random resized crop (area fraction in ``scale``, aspect ratio in ``ratio``,
  log-uniform), horizontal flip with probability ``hflip``, optional colour jitter (brightness, contrast, saturation:
  ``functional.jitter``, shared with the segmentation and video transforms);
- evaluation (``EvalTransform``): resize the shorter side to ``image_size / resize_ratio`` (256 for 224), then centre
  crop.

Crop and resize are a single ``Image.resize(size, box=...)`` call. A transform's ``draft_size`` (None or an int)
tells the datasets that a JPEG may be decoded at a reduced scale (Pillow's ``Image.draft``) as long as its shorter
side stays at least that large: evaluation uses it, training decodes at full resolution.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from PIL import Image

from .functional import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    check_channels,
    check_probability,
    check_range,
    coin,
    jitter,
    normalize,
    randint,
    to_tensor,
    uniform,
)

__all__ = ["TrainTransform", "EvalTransform", "build_transform"]


class TrainTransform:
    """Random resized crop, horizontal flip, optional colour jitter, then tensor and normalisation.

    Built by ``build_transform(train=True, ...)``; see there for the arguments.
    """

    def __init__(
        self,
        image_size: int,
        *,
        mean: Sequence[float],
        std: Sequence[float],
        scale: tuple[float, float],
        ratio: tuple[float, float],
        hflip: float,
        color_jitter: float,
    ) -> None:
        self.image_size = image_size
        self.mean = mean
        self.std = std
        self.scale = scale
        self.ratio = ratio
        self.hflip = hflip
        self.color_jitter = color_jitter
        # A random crop may cover a small part of the image, so training decodes at full resolution.
        self.draft_size: int | None = None

    def crop_box(self, width: int, height: int, generator: torch.Generator | None = None) -> tuple[int, int, int, int]:
        """Sample the crop box (left, top, right, bottom) of a random resized crop for an image of this size."""
        area = width * height
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target_area = area * uniform(self.scale[0], self.scale[1], generator)
            aspect = math.exp(uniform(log_ratio[0], log_ratio[1], generator))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                left = randint(0, width - w, generator)
                top = randint(0, height - h, generator)
                return left, top, left + w, top + h
        # Fallback: the largest centred crop whose aspect ratio lies within `ratio`.
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            w, h = int(round(height * self.ratio[1])), height
        else:
            w, h = width, height
        left, top = (width - w) // 2, (height - h) // 2
        return left, top, left + w, top + h

    def __call__(self, image: Image.Image, generator: torch.Generator | None = None) -> torch.Tensor:
        """Transform one PIL image.

        Args:
            image: the input image (any mode; converted to RGB).
            generator: the random generator to draw from; the global torch generator when None.

        Returns:
            A float tensor (3, image_size, image_size), normalised.
        """
        if image.mode != "RGB":
            image = image.convert("RGB")
        box = self.crop_box(image.width, image.height, generator)
        size = (self.image_size, self.image_size)
        image = image.resize(size, Image.Resampling.BILINEAR, box=box, reducing_gap=3.0)
        if coin(self.hflip, generator):
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        tensor = to_tensor(image)
        if self.color_jitter > 0:
            tensor = jitter(tensor, self.color_jitter, generator)
        return normalize(tensor, self.mean, self.std)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(image_size={self.image_size}, scale={self.scale}, ratio={self.ratio}, "
            f"hflip={self.hflip}, color_jitter={self.color_jitter}, mean={self.mean}, std={self.std})"
        )


class EvalTransform:
    """Resize the shorter side to ``image_size / resize_ratio``, centre crop, then tensor and normalisation.

    Built by ``build_transform(train=False, ...)``; see there for the arguments.
    """

    def __init__(self, image_size: int, *, mean: Sequence[float], std: Sequence[float], resize_ratio: float) -> None:
        self.image_size = image_size
        self.mean = mean
        self.std = std
        self.resize_ratio = resize_ratio
        self.resize_size = int(math.floor(image_size / resize_ratio + 0.5))
        # JPEGs may be decoded at 1/2, 1/4 or 1/8 scale as long as the shorter side stays >= resize_size.
        self.draft_size: int | None = self.resize_size

    def __call__(self, image: Image.Image, generator: torch.Generator | None = None) -> torch.Tensor:
        """Transform one PIL image (deterministic; ``generator`` is accepted for a uniform interface).

        Returns:
            A float tensor (3, image_size, image_size), normalised.
        """
        if image.mode != "RGB":
            image = image.convert("RGB")
        width, height = image.size
        short = min(width, height)
        scale = self.resize_size / short
        new_w, new_h = max(self.image_size, round(width * scale)), max(self.image_size, round(height * scale))
        # Centre crop expressed in the source image's coordinates, so crop + resize is one resampling.
        crop_w, crop_h = self.image_size * width / new_w, self.image_size * height / new_h
        left, top = (width - crop_w) / 2, (height - crop_h) / 2
        box = (left, top, left + crop_w, top + crop_h)
        size = (self.image_size, self.image_size)
        image = image.resize(size, Image.Resampling.BILINEAR, box=box, reducing_gap=3.0)
        return normalize(to_tensor(image), self.mean, self.std)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(image_size={self.image_size}, resize_size={self.resize_size}, "
            f"mean={self.mean}, std={self.std})"
        )


def build_transform(
    train: bool,
    image_size: int,
    *,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    resize_ratio: float = 0.875,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    hflip: float = 0.5,
    color_jitter: float = 0.0,
) -> TrainTransform | EvalTransform:
    """Build the training or evaluation transform: PIL image -> normalised float tensor (3, size, size).

    Args:
        train: True for the training pipeline (random resized crop, flip, jitter), False for evaluation
            (resize the shorter side to ``image_size / resize_ratio``, centre crop).
        image_size: side of the square output, in pixels.
        mean: per-channel mean subtracted after scaling to [0, 1].
        std: per-channel standard deviation divided by.
        resize_ratio: evaluation only: the centre crop's share of the resized shorter side (0.875: 256 -> 224).
        scale: training only: range of the crop's area as a fraction of the image's area.
        ratio: training only: range of the crop's aspect ratio (width / height), sampled log-uniformly.
        hflip: training only: probability of a horizontal flip.
        color_jitter: training only: strength s of the brightness, contrast and saturation jitter, each factor
            uniform in [1 - s, 1 + s], applied in random order; 0 disables it.

    Returns:
        A callable ``transform(image, generator=None) -> torch.Tensor``.

    Raises:
        TypeError: ``image_size`` is not a positive integer.
        ValueError: an argument is out of its range; the message names it.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, numbers.Integral) or image_size < 1:
        raise TypeError(f"image_size must be a positive integer, got {image_size!r}")
    mean = check_channels("mean", mean)
    std = check_channels("std", std, positive=True)
    if train:
        scale = check_range("scale", scale, 0.0, 1.0)
        ratio = check_range("ratio", ratio, 0.0)
        hflip = check_probability("hflip", hflip)
        color_jitter = check_probability("color_jitter", color_jitter, "a strength")
        return TrainTransform(
            int(image_size),
            mean=mean,
            std=std,
            scale=scale,
            ratio=ratio,
            hflip=float(hflip),
            color_jitter=float(color_jitter),
        )
    if not (isinstance(resize_ratio, numbers.Real) and 0.0 < resize_ratio <= 1.0):
        raise ValueError(f"resize_ratio must be in (0, 1], got {resize_ratio!r}")
    return EvalTransform(int(image_size), mean=mean, std=std, resize_ratio=float(resize_ratio))
