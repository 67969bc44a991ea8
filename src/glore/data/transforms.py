"""Image transforms on PIL images, without torchvision.

``build_transform(train, image_size)`` returns the usual ImageNet-style pipeline as one callable that turns
a PIL image into a normalised float tensor (3, image_size, image_size):

- training: random resized crop (area fraction in ``scale``, aspect ratio in ``ratio``, log-uniform), horizontal
  flip with probability ``hflip``, optional colour jitter (brightness, contrast, saturation);
- evaluation: resize the shorter side to ``image_size / resize_ratio`` (256 for 224), then centre crop.

Randomness comes from ``torch``: the global generator by default, which DataLoader seeds differently in every
worker from the main process's seed (so runs are reproducible with ``torch.manual_seed``), or an explicit
``torch.Generator`` passed at call time: ``transform(image, generator=g)``.

Crop and resize are a single ``Image.resize(size, box=...)`` call. A transform's ``draft_size`` (None or an int)
tells the datasets that a JPEG may be decoded at a reduced scale (Pillow's ``Image.draft``) as long as its shorter
side stays at least that large: evaluation uses it, training decodes at full resolution.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageEnhance

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "build_transform",
    "to_tensor",
    "normalize",
    "TrainTransform",
    "EvalTransform",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """Convert a PIL image to a float tensor (C, H, W) with values in [0, 1].

    Args:
        image: a PIL image; converted to RGB first unless it is already RGB or L.

    Returns:
        A float32 tensor of shape (3, H, W) (or (1, H, W) for a greyscale "L" image).
    """
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    # (H, W, C) uint8 -> (C, H, W) float in [0, 1]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


def normalize(tensor: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Return ``(tensor - mean) / std`` per channel, for a tensor (C, H, W) or (n, C, H, W).

    Args:
        tensor: float image tensor.
        mean: one value per channel.
        std: one positive value per channel.
    """
    m = torch.as_tensor(mean, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
    return (tensor - m) / s


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


def _check_channels(name: str, values: Sequence[float], *, positive: bool = False) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) not in (1, 3):
        raise ValueError(f"{name} must be a sequence of 1 or 3 numbers, got {values!r}")
    if not all(isinstance(v, numbers.Real) and math.isfinite(v) for v in values):
        raise ValueError(f"{name} must hold finite numbers, got {values!r}")
    if positive and not all(v > 0 for v in values):
        raise ValueError(f"{name} must hold positive numbers, got {values!r}")
    return tuple(float(v) for v in values)


def _check_range(name: str, values: Sequence[float], low: float, high: float | None = None) -> tuple[float, float]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) != 2:
        raise ValueError(f"{name} must be a pair (min, max), got {values!r}")
    a, b = (float(v) for v in values)
    if not (low < a <= b and (high is None or b <= high)):
        upper = "" if high is None else f" <= {high}"
        raise ValueError(f"{name} must satisfy {low} < min <= max{upper}, got {values!r}")
    return a, b


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
            target_area = area * _uniform(self.scale[0], self.scale[1], generator)
            aspect = math.exp(_uniform(log_ratio[0], log_ratio[1], generator))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                left = int(torch.randint(0, width - w + 1, (), generator=generator))
                top = int(torch.randint(0, height - h + 1, (), generator=generator))
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
        if self.hflip > 0 and torch.rand((), generator=generator).item() < self.hflip:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if self.color_jitter > 0:
            image = self._jitter(image, generator)
        return normalize(to_tensor(image), self.mean, self.std)

    def _jitter(self, image: Image.Image, generator: torch.Generator | None) -> Image.Image:
        low, high = max(0.0, 1.0 - self.color_jitter), 1.0 + self.color_jitter
        enhancers = (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color)
        for index in torch.randperm(len(enhancers), generator=generator).tolist():
            image = enhancers[index](image).enhance(_uniform(low, high, generator))
        return image

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
    mean = _check_channels("mean", mean)
    std = _check_channels("std", std, positive=True)
    if train:
        scale = _check_range("scale", scale, 0.0, 1.0)
        ratio = _check_range("ratio", ratio, 0.0)
        if not (isinstance(hflip, numbers.Real) and 0.0 <= hflip <= 1.0):
            raise ValueError(f"hflip must be a probability in [0, 1], got {hflip!r}")
        if not (isinstance(color_jitter, numbers.Real) and 0.0 <= color_jitter <= 1.0):
            raise ValueError(f"color_jitter must be in [0, 1], got {color_jitter!r}")
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
