"""Decoding image files with Pillow: ``read_image`` (RGB, optional crop box, JPEG draft decoding), ``read_mask``
(single-channel index PNGs as integer arrays), and the errors they raise naming the file."""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["ImageReadError", "MaskError", "read_image", "read_mask"]


class ImageReadError(OSError):
    """An image file is missing or cannot be decoded; the message names the file."""


def read_image(
    path: str, *, box: tuple[float, float, float, float] | None = None, draft_size: int | None = None
) -> Image.Image:
    """Open and fully decode an image file as RGB.

    Args:
        path: the image file.
        box: optional crop (left, top, right, bottom) in the file's pixel coordinates.
        draft_size: when set, a JPEG may be decoded at 1/2, 1/4 or 1/8 scale keeping both sides >= this size
            (ignored when ``box`` is set, whose coordinates refer to the full resolution).

    Raises:
        ImageReadError: the file is missing, truncated or not an image.
    """
    try:
        with Image.open(path) as image:
            if draft_size is not None and box is None and image.format == "JPEG":
                image.draft("RGB", (draft_size, draft_size))
            image = image.convert("RGB")  # decodes the whole file; a truncated one fails here
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ImageReadError(f"cannot read image {path!r}: {error}") from error
    if box is not None:
        image = image.crop(tuple(int(round(v)) for v in box))
    return image


class MaskError(ValueError):
    """A mask does not fit its image or holds values that are neither a class nor the ignore label; the message
    names the file."""


def read_mask(path: str) -> np.ndarray:
    """Decode a single-channel PNG (mode L, P, I;16 or I) into an integer array (H, W) of its raw values.

    Raises:
        ImageReadError: the file is missing, truncated or not an image.
        MaskError: the image has several channels.
    """
    try:
        with Image.open(path) as image:
            mode = image.mode
            if mode not in ("L", "P", "I", "I;16", "I;16B", "1"):
                raise MaskError(f"mask {path!r} has mode {mode!r}; expected a single-channel index PNG (L, P or I)")
            array = np.array(image)  # decodes the whole file; a truncated one fails here
    except MaskError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ImageReadError(f"cannot read mask {path!r}: {error}") from error
    if array.dtype == bool:
        array = array.astype(np.uint8)
    return array
