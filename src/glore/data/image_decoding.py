"""Decoding image files with Pillow: ``read_image`` (RGB, optional crop box, JPEG draft decoding) and the
``ImageReadError`` it raises naming the file."""

from __future__ import annotations

from PIL import Image

__all__ = ["ImageReadError", "read_image"]


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
