"""The pieces every glore transform is made of: conversions, normalisation, random draws, argument checks, and the
pixel operations shared by images, masks and clips.

Random draws take a ``torch.Generator`` (None: torch's global generator, which the engine's ``SeededDataset`` seeds
from ``(seed, epoch, index)`` before every sample). They are the only source of randomness of ``glore.data``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "to_tensor",
    "array_to_tensor",
    "masks_to_tensors",
    "normalize",
    "uniform",
    "randint",
    "coin",
    "check_channels",
    "check_range",
    "check_probability",
    "check_size_pair",
    "resize_pair",
    "pad_crop",
    "jitter",
    "hls_jitter",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------------------------------------------------------------
# Conversions.


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


def array_to_tensor(array: np.ndarray) -> torch.Tensor:
    """A uint8 array (H, W, 3) (a view of a PIL image, a flipped crop) as a float tensor (3, H, W) in [0, 1]."""
    if not array.flags.writeable or not array.flags.c_contiguous:
        array = np.array(array)
    # (H, W, 3) uint8 -> (3, H, W) float in [0, 1]
    return torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0)


def masks_to_tensors(masks: Sequence[np.ndarray]) -> list[torch.Tensor]:
    """Integer arrays (H, W) as tensors of their own dtype (uint16 as int32: torch lacks its arithmetic)."""
    out = []
    for mask in masks:
        if not mask.flags.writeable or not mask.flags.c_contiguous:
            mask = np.array(mask)
        if mask.dtype == np.uint16:
            mask = mask.astype(np.int32)
        out.append(torch.from_numpy(mask))
    return out


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


# ---------------------------------------------------------------------------------------------------------------------
# Random draws: one generator for everything.


def uniform(low: float, high: float, generator: torch.Generator | None = None) -> float:
    """A float uniform in [low, high)."""
    return low + (high - low) * torch.rand((), generator=generator).item()


def randint(low: int, high: int, generator: torch.Generator | None = None) -> int:
    """An int uniform in [low, high], both ends included."""
    return int(torch.randint(low, high + 1, (), generator=generator))


def coin(probability: float, generator: torch.Generator | None = None) -> bool:
    """True with ``probability``; draws nothing when it is 0."""
    return probability > 0 and torch.rand((), generator=generator).item() < probability


# ---------------------------------------------------------------------------------------------------------------------
# Argument checks: one ValueError naming the argument.


def check_channels(name: str, values: Sequence[float], *, positive: bool = False) -> tuple[float, ...]:
    """``values`` as a tuple of 1 or 3 finite floats (positive ones with ``positive``)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) not in (1, 3):
        raise ValueError(f"{name} must be a sequence of 1 or 3 numbers, got {values!r}")
    if not all(isinstance(v, numbers.Real) and math.isfinite(v) for v in values):
        raise ValueError(f"{name} must hold finite numbers, got {values!r}")
    if positive and not all(v > 0 for v in values):
        raise ValueError(f"{name} must hold positive numbers, got {values!r}")
    return tuple(float(v) for v in values)


def check_range(name: str, values: Sequence[float], low: float, high: float | None = None) -> tuple[float, float]:
    """``values`` as a pair (min, max) with ``low < min <= max <= high``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) != 2:
        raise ValueError(f"{name} must be a pair (min, max), got {values!r}")
    if not all(isinstance(v, numbers.Real) and math.isfinite(v) for v in values):
        raise ValueError(f"{name} must hold finite numbers, got {values!r}")
    a, b = (float(v) for v in values)
    if not (low < a <= b and (high is None or b <= high)):
        upper = "" if high is None else f" <= {high}"
        raise ValueError(f"{name} must satisfy {low} < min <= max{upper}, got {values!r}")
    return a, b


def check_probability(name: str, value: object, what: str = "a probability") -> float:
    """``value`` as a float in [0, 1]."""
    if isinstance(value, bool) or not (isinstance(value, numbers.Real) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be {what} in [0, 1], got {value!r}")
    return float(value)


def check_size_pair(name: str, value: object) -> tuple[int, int]:
    """``value`` (a positive int, or a pair of them) as (height, width)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) != 2
        or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise ValueError(f"{name} must be a positive int or a pair (height, width) of positive ints, got {value!r}")
    return int(value[0]), int(value[1])


# ---------------------------------------------------------------------------------------------------------------------
# Geometry of an image with its masks.


def _mask_image(mask: np.ndarray) -> Image.Image:
    """A PIL image holding ``mask`` exactly: mode L for uint8, mode I (int32) otherwise."""
    if mask.dtype == np.uint8:
        return Image.fromarray(mask, mode="L")
    return Image.fromarray(mask.astype(np.int32, copy=False), mode="I")


def resize_pair(
    image: Image.Image, masks: Sequence[np.ndarray], size: tuple[int, int]
) -> tuple[Image.Image, list[np.ndarray]]:
    """Resize the image (bilinear) and the masks (nearest) to ``size`` = (height, width)."""
    height, width = size
    if (width, height) == image.size:
        return image, list(masks)
    image = image.resize((width, height), Image.Resampling.BILINEAR)
    out = []
    for mask in masks:
        resized = np.asarray(_mask_image(mask).resize((width, height), Image.Resampling.NEAREST))
        out.append(resized.astype(mask.dtype, copy=False))
    return image, out


def pad_crop(
    image: np.ndarray,
    masks: Sequence[np.ndarray],
    box: tuple[int, int, int, int],
    *,
    image_fill: Sequence[int],
    mask_fills: Sequence[int],
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Cut ``box`` = (top, left, height, width) out of the image (H, W, 3) and the masks (H, W); the parts of the box
    outside the image are filled with ``image_fill`` (one value per channel) and ``mask_fills`` (one per mask)."""
    top, left, height, width = box
    src_h, src_w = image.shape[:2]
    # The overlap of the box with the image, in image and in output coordinates.
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + height, src_h), min(left + width, src_w)
    fits = y0 == top and x0 == left and y1 == top + height and x1 == left + width
    if fits:
        return image[y0:y1, x0:x1], [mask[y0:y1, x0:x1] for mask in masks]
    out_image = np.empty((height, width, 3), dtype=image.dtype)
    out_image[...] = np.asarray(image_fill, dtype=image.dtype)
    out_masks = [np.full((height, width), fill, dtype=mask.dtype) for mask, fill in zip(masks, mask_fills, strict=True)]
    if y1 > y0 and x1 > x0:
        oy, ox = y0 - top, x0 - left
        out_image[oy : oy + y1 - y0, ox : ox + x1 - x0] = image[y0:y1, x0:x1]
        for out, mask in zip(out_masks, masks, strict=True):
            out[oy : oy + y1 - y0, ox : ox + x1 - x0] = mask[y0:y1, x0:x1]
    return out_image, out_masks


# ---------------------------------------------------------------------------------------------------------------------
# Colour.


def jitter(tensor: torch.Tensor, strength: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Photometric jitter of images (..., 3, H, W) in [0, 1]: brightness, contrast and saturation factors each
    uniform in [1 - strength, 1 + strength], applied in random order (as PIL's ``ImageEnhance`` does: blends with
    black, with the mean grey level, with the greyscale image), clamped to [0, 1]. A clip (3, T, H, W) is jittered as
    its frames (T, 3, H, W) with one set of factors."""
    low, high = max(0.0, 1.0 - strength), 1.0 + strength
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=tensor.dtype).view(3, 1, 1)
    for index in torch.randperm(3, generator=generator).tolist():
        factor = uniform(low, high, generator)
        if index == 0:  # brightness
            tensor = tensor * factor
        elif index == 1:  # contrast: around the mean grey level of each image
            grey = (tensor * weights).sum(-3).mean(dim=(-2, -1), keepdim=True).unsqueeze(-3)  # (..., 1, 1, 1)
            tensor = (tensor - grey) * factor + grey
        else:  # saturation: around the greyscale image
            grey = (tensor * weights).sum(-3, keepdim=True)  # (..., 1, H, W)
            tensor = (tensor - grey) * factor + grey
        tensor = tensor.clamp_(0.0, 1.0)
    return tensor


def _rgb_to_hls(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB in [0, 1] -> hue in degrees [0, 360), lightness and saturation in [0, 1]."""
    r, g, b = rgb.unbind(-3)
    vmax, vmin = rgb.amax(dim=-3), rgb.amin(dim=-3)
    diff = vmax - vmin
    light = (vmax + vmin) / 2
    flat = diff == 0
    safe = torch.where(flat, torch.ones_like(diff), diff)
    sat = torch.where(light < 0.5, diff / (vmax + vmin).clamp_min(1e-12), diff / (2 - vmax - vmin).clamp_min(1e-12))
    hue = torch.where(
        vmax == r, 60 * (g - b) / safe, torch.where(vmax == g, 120 + 60 * (b - r) / safe, 240 + 60 * (r - g) / safe)
    )
    hue = torch.where(hue < 0, hue + 360, hue)
    return torch.stack([torch.where(flat, 0, hue), light, torch.where(flat, 0, sat)], dim=-3)


def _hls_to_rgb(hls: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) hue in degrees, lightness and saturation in [0, 1] -> RGB in [0, 1] (the standard formula)."""
    hue, light, sat = hls.unbind(-3)
    m2 = torch.where(light <= 0.5, light * (1 + sat), light + sat - light * sat)
    m1 = 2 * light - m2

    def channel(h: torch.Tensor) -> torch.Tensor:
        h = torch.remainder(h, 1.0)
        rising = m1 + (m2 - m1) * h * 6
        falling = m1 + (m2 - m1) * (2 / 3 - h) * 6
        return torch.where(h < 1 / 6, rising, torch.where(h < 0.5, m2, torch.where(h < 2 / 3, falling, m1)))

    turn = hue / 360
    return torch.stack([channel(turn + 1 / 3), channel(turn), channel(turn - 1 / 3)], dim=-3)  # grey: m1 = m2


def hls_jitter(clip: torch.Tensor, offsets: Sequence[float]) -> torch.Tensor:
    """Shift hue, lightness and saturation of uint8 RGB frames, in OpenCV's 8-bit HLS units, as the official
    ``RandomHLS``: the frames are converted to HLS (hue in [0, 180] as degrees / 2, lightness and saturation in
    [0, 255], rounded), ``offsets`` added, each clipped to its range (hue to [0, 180]), and converted back to RGB.

    Args:
        clip: uint8 (..., 3, H, W) RGB frames.
        offsets: (hue, lightness, saturation) offsets.

    Returns:
        uint8 (..., 3, H, W).
    """
    hls = _rgb_to_hls(clip.double() / 255)  # float64: the 8-bit rounding as exact as OpenCV's
    units = torch.stack([hls[..., 0, :, :] / 2, hls[..., 1, :, :] * 255, hls[..., 2, :, :] * 255], dim=-3).round()
    shift = torch.tensor([float(o) for o in offsets], dtype=units.dtype).view(3, 1, 1)
    limit = torch.tensor([180.0, 255.0, 255.0]).view(3, 1, 1)
    units = torch.minimum(torch.clamp_min(units + shift, 0), limit)
    back = torch.stack([units[..., 0, :, :] * 2, units[..., 1, :, :] / 255, units[..., 2, :, :] / 255], dim=-3)
    return (_hls_to_rgb(back) * 255).round_().clamp_(0, 255).to(torch.uint8)
