"""Clip transforms: one call ``transform(frames, generator=None, crop=0)`` turns decoded uint8 frames (T, H, W, 3)
into a normalised float clip (3, T, crop_size, crop_size).

Preprocessing presets (``preprocess``): ``"glore"`` (crop then resize with antialiasing, ImageNet mean/std) and
``"official"``, the official code's (the whole frame resized to the short side with plain bilinear interpolation, then
cropped; MXNet's mean and std, ``OFFICIAL_MEAN``/``OFFICIAL_STD``) for the official networks and their converted
checkpoints. Training augmentation (``augment``): ``"glore"`` (short side drawn from ``short_side``, random crop,
flip) or ``"official"`` (aspect jitter, short side, random crop, flip, HLS and pixel jitter: ``OFFICIAL_AUGMENT``).
At test, ``crop`` picks one of ``num_crops`` crops: the centre, or both ends and the centre of the long side.

Every random draw comes from the ``generator`` (None: torch's global one, seeded per sample by the engine), in this
order: aspect ratio (official), short side, crop corner, flip; then the official HLS offsets, pixel noise range and
noise.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .functional import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    check_channels,
    check_probability,
    coin,
    hls_jitter,
    randint,
    uniform,
)

__all__ = [
    "OFFICIAL_AUGMENT",
    "OFFICIAL_MEAN",
    "OFFICIAL_STD",
    "PREPROCESS",
    "AUGMENT",
    "ClipTrainTransform",
    "ClipEvalTransform",
    "build_video_transform",
    "official_resize_shape",
]

OFFICIAL_MEAN: tuple[float, float, float] = (124 / 255, 117 / 255, 104 / 255)
"""The mean the official GloRe video networks were trained with (MXNet's default, ``network/config.py``)."""
OFFICIAL_STD: tuple[float, float, float] = (1 / (0.0167 * 255),) * 3
"""The official networks' standard deviation: MXNet's scale 0.0167 on [0, 255] pixels, 1 / (0.0167 * 255) on [0, 1]."""
OFFICIAL_AUGMENT: dict[str, tuple[float, ...]] = {
    "aspect_ratio": (0.8, 1.25),
    "short_side": (224, 340),
    "hls": (15, 35, 25),
    "pixel": (-20, 20),
}
"""The official training augmentation (``data/iterator_factory.py``): the frame's aspect ratio scaled by r (the mean of
two draws from ``aspect_ratio``, inverted half the time), its short side then drawn from ``short_side`` (the recipes
set ``short_side`` to it), a random crop, a flip, hue/lightness/saturation offsets drawn from +-``hls`` (OpenCV's 8-bit
HLS units: hue in 2-degree steps), and per-pixel noise between a low drawn from [pixel[0], 0] and a high drawn from
[0, pixel[1]] grey levels."""
PREPROCESS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "glore": (IMAGENET_MEAN, IMAGENET_STD),
    "official": (OFFICIAL_MEAN, OFFICIAL_STD),
}
"""Preprocessing presets by name: their (mean, std)."""
AUGMENT = ("glore", "official")
"""Training augmentations by name."""


def official_resize_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """``(height, width)`` of a frame resized to ``short_side`` as the official ``Resize`` does: the long side
    truncated (``int(short * long / short_of_frame)``), the frame kept when its short side already fits."""
    if min(height, width) == short_side:
        return height, width
    if width < height:
        return int(short_side * height / width), short_side
    return short_side, int(short_side * width / height)


class _ClipTransform:
    """What both clip transforms share: the output size, normalisation and the final resize."""

    def __init__(self, crop_size: int, *, mean: Sequence[float], std: Sequence[float]) -> None:
        self.crop_size = crop_size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1, 1)

    def _resize(self, region: torch.Tensor, antialias: bool) -> torch.Tensor:
        """uint8 (T, h, w, 3) -> uint8 (T, 3, s, s) in channels-last memory (torch's fast uint8 path)."""
        clip = region.permute(0, 3, 1, 2)  # (T, h, w, 3) -> (T, 3, h, w), channels-last memory
        size = self.crop_size
        if clip.shape[-2:] != (size, size):
            shrink = max(clip.shape[-2:]) > size
            clip = F.interpolate(
                clip, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias and shrink
            )
        return clip

    def _normalize(self, clip: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 (T, 3, s, s) (+ float noise (3, T, s, s) in grey levels) -> normalised float (3, T, s, s)."""
        t, _, h, w = clip.shape
        out = torch.empty((3, t, h, w), dtype=torch.float32)
        out.copy_(clip.permute(1, 0, 2, 3))  # (T, 3, H, W) -> (3, T, H, W), uint8 -> float
        if noise is not None:
            out.add_(noise)  # unclipped, as the official PixelJitter
        return out.div_(255).sub_(self.mean).div_(self.std)

    def _glore_box(self, height: int, width: int, short: int) -> int:
        """Side of the square of source pixels that becomes the crop once the short side is resized to ``short``."""
        return min(max(int(round(self.crop_size * min(height, width) / short)), 1), height, width)


class ClipTrainTransform(_ClipTransform):
    """Random short side, crop and flip (``augment="glore"``), or the official augmentation (``"official"``), then
    normalisation. Built by ``build_video_transform(train=True, ...)``; see there for the arguments."""

    def __init__(
        self,
        crop_size: int,
        *,
        short_side: tuple[int, int],
        hflip: float,
        augment: str,
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        super().__init__(crop_size, mean=mean, std=std)
        self.short_side = short_side
        self.hflip = hflip
        self.augment = augment

    def __call__(
        self, frames: np.ndarray | torch.Tensor, generator: torch.Generator | None = None, *, crop: int = 0
    ) -> torch.Tensor:
        """Transform uint8 frames (T, H, W, 3) into a float clip (3, T, crop_size, crop_size) (``crop`` is unused:
        training takes one random crop).

        The ``"glore"`` path crops the source frames, then resizes that crop once (resize-then-crop up to
        interpolation at the crop's border and the rounding of the box), on uint8 pixels in channels-last memory.
        """
        source = torch.as_tensor(np.ascontiguousarray(frames))  # (T, H, W, 3)
        if self.augment == "official":
            clip = self._resize(self.official_region(source, generator), antialias=False)
        else:
            _, h, w, _ = source.shape
            box = self._glore_box(h, w, randint(*self.short_side, generator))
            y, x = randint(0, h - box, generator), randint(0, w - box, generator)
            clip = self._resize(source[:, y : y + box, x : x + box], antialias=True)  # (T, box, box, 3)
        if coin(self.hflip, generator):
            clip = clip.flip(-1)
        noise = None
        if self.augment == "official":
            clip = hls_jitter(clip, [int(uniform(-v, v, generator)) for v in OFFICIAL_AUGMENT["hls"]])
            pixel = OFFICIAL_AUGMENT["pixel"]
            low, high = uniform(pixel[0], 0, generator), uniform(0, pixel[1], generator)
            t, _, h, w = clip.shape
            noise = torch.empty((3, t, h, w)).uniform_(low, high, generator=generator)  # grey levels, per pixel
        return self._normalize(clip, noise)

    def official_region(self, source: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The official ``RandomScale`` + ``RandomCrop`` as a box of source pixels (T, bh, bw, 3): the frame's aspect
        ratio scaled by r, its short side drawn from ``short_side``, resized to (int(w' + 1), int(h' + 1)); a random
        crop of that, mapped back to the source (rounded to whole pixels)."""
        _, h, w, _ = source.shape
        low, high = OFFICIAL_AUGMENT["aspect_ratio"]
        ratio = 0.5 * (uniform(low, high, generator) + uniform(low, high, generator))
        if coin(0.5, generator):
            ratio = 1.0 / ratio
        new_w, new_h = w * ratio, h / ratio
        factor = uniform(*self.short_side, generator) / min(new_w, new_h)
        out_w, out_h = int(new_w * factor + 1), int(new_h * factor + 1)
        x, y = randint(0, out_w - self.crop_size, generator), randint(0, out_h - self.crop_size, generator)
        sx, sy = w / out_w, h / out_h  # source pixels per resized pixel
        bx, by = min(int(round(x * sx)), w - 1), min(int(round(y * sy)), h - 1)
        bw = min(max(int(round(self.crop_size * sx)), 1), w - bx)
        bh = min(max(int(round(self.crop_size * sy)), 1), h - by)
        return source[:, by : by + bh, bx : bx + bw]  # (T, bh, bw, 3)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(crop_size={self.crop_size}, short_side={self.short_side}, hflip={self.hflip}, "
            f"augment={self.augment!r})"
        )


class ClipEvalTransform(_ClipTransform):
    """Test crop ``crop`` of ``num_crops`` at short side ``short_side``, then normalisation. Built by
    ``build_video_transform(train=False, ...)``."""

    def __init__(
        self,
        crop_size: int,
        *,
        short_side: int,
        num_crops: int,
        preprocess: str,
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        super().__init__(crop_size, mean=mean, std=std)
        self.short_side = short_side
        self.num_crops = num_crops
        self.preprocess = preprocess

    def __call__(
        self, frames: np.ndarray | torch.Tensor, generator: torch.Generator | None = None, *, crop: int = 0
    ) -> torch.Tensor:
        """Transform uint8 frames (T, H, W, 3) into test crop ``crop`` (3, T, crop_size, crop_size); deterministic.

        ``preprocess="official"`` resizes whole frames as the official ``Resize`` (plain bilinear, no antialiasing),
        then crops at ``int(round((W - crop_size) / 2))``; ``"glore"`` crops the source, then resizes with
        antialiasing."""
        if not 0 <= crop < self.num_crops:
            raise ValueError(f"crop: expected 0..{self.num_crops - 1}, got {crop!r}")
        source = torch.as_tensor(np.ascontiguousarray(frames))  # (T, H, W, 3)
        _, h, w, _ = source.shape
        if self.preprocess == "official":
            return self._normalize(self._official_crop(source, crop))
        box = self._glore_box(h, w, self.short_side)
        y, x = self._crop_corner(h - box, w - box, crop)
        return self._normalize(self._resize(source[:, y : y + box, x : x + box], antialias=True))

    def _crop_corner(
        self, room_h: int, room_w: int, crop: int, centre: tuple[int, int] | None = None
    ) -> tuple[int, int]:
        """(y, x) of crop ``crop`` given the free room: the centre, or three along the long side."""
        y, x = centre if centre is not None else (room_h // 2, room_w // 2)
        if self.num_crops == 1:
            return y, x
        if room_w >= room_h:  # three crops along the long side
            return y, [0, x, room_w][crop]
        return [0, y, room_h][crop], x

    def _official_crop(self, source: torch.Tensor, crop: int) -> torch.Tensor:
        """Whole frames resized to ``short_side`` (``official_resize_shape``, plain bilinear on uint8), then the crop:
        uint8 (T, 3, s, s)."""
        _, h, w, _ = source.shape
        new_h, new_w = official_resize_shape(h, w, self.short_side)
        frames = source.permute(0, 3, 1, 2)  # (T, H, W, 3) -> (T, 3, H, W), channels-last memory
        if (new_h, new_w) != (h, w):
            frames = F.interpolate(frames, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=False)
        size = self.crop_size
        centre = int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0))
        y, x = self._crop_corner(new_h - size, new_w - size, crop, centre)
        return frames[:, :, y : y + size, x : x + size]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(crop_size={self.crop_size}, short_side={self.short_side}, "
            f"num_crops={self.num_crops}, preprocess={self.preprocess!r})"
        )


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def build_video_transform(
    train: bool,
    *,
    crop_size: int = 224,
    short_side: Sequence[int] = (256, 320),
    test_short_side: int = 256,
    num_crops: int = 3,
    hflip: float = 0.5,
    preprocess: str = "glore",
    augment: str = "glore",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> ClipTrainTransform | ClipEvalTransform:
    """Build the training or test transform of video clips: uint8 frames (T, H, W, 3) -> normalised float clip
    (3, T, crop_size, crop_size).

    Args:
        train: random augmentation (True) or test crops (False).
        crop_size: side of the square crop.
        short_side: training: (min, max) of the random short side.
        test_short_side: the short side at test.
        num_crops: test: crops per clip, 1 (centre) or 3 (both ends and the centre of the long side).
        hflip: training: flip probability.
        preprocess: ``"glore"`` or ``"official"`` (see the module); also picks the default ``mean``/``std``.
        augment: training: ``"glore"`` (short side, crop, flip) or ``"official"`` (``OFFICIAL_AUGMENT``).
        mean: per-channel mean (of [0, 1] pixels); None: the ``preprocess`` preset's.
        std: per-channel standard deviation; None: the preset's.

    Returns:
        A callable ``transform(frames, generator=None, *, crop=0) -> torch.Tensor``.

    Raises:
        ValueError: an argument is out of its range; the message names it.
    """
    crop_size = _positive_int("crop_size", crop_size)
    if (
        isinstance(short_side, str)
        or not isinstance(short_side, Sequence)
        or len(short_side) != 2
        or not crop_size <= short_side[0] <= short_side[1]
    ):
        raise ValueError(f"short_side: expected (min, max) with crop_size {crop_size} <= min <= max, got {short_side}")
    if _positive_int("test_short_side", test_short_side) < crop_size:
        raise ValueError(f"test_short_side: expected >= crop_size {crop_size}, got {test_short_side}")
    if num_crops not in (1, 3):
        raise ValueError(f"num_crops: expected 1 (centre) or 3 (both ends and centre), got {num_crops!r}")
    if preprocess not in PREPROCESS:
        raise ValueError(f"preprocess: expected one of {', '.join(PREPROCESS)}, got {preprocess!r}")
    if augment not in AUGMENT:
        raise ValueError(f"augment: expected one of {', '.join(AUGMENT)}, got {augment!r}")
    hflip = check_probability("hflip", hflip)
    default_mean, default_std = PREPROCESS[preprocess]
    mean = check_channels("mean", default_mean if mean is None else mean)
    std = check_channels("std", default_std if std is None else std, positive=True)
    if train:
        sides = (int(short_side[0]), int(short_side[1]))
        return ClipTrainTransform(crop_size, short_side=sides, hflip=hflip, augment=augment, mean=mean, std=std)
    return ClipEvalTransform(
        crop_size, short_side=int(test_short_side), num_crops=num_crops, preprocess=preprocess, mean=mean, std=std
    )
