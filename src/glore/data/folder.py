"""``imagefolder``: one folder per class under ``train/`` and ``val/`` (ImageNet after the usual re-sorting).

::

    root/
      train/<class>/<image>.jpg ...
      val/<class>/<image>.jpg ...

Classes are the sorted folder names of the split; labels are their indices. Only files whose extension is in
``extensions`` are listed (case-insensitive); other files and hidden folders are ignored.
"""

from __future__ import annotations

import collections
import os
import warnings
from collections.abc import Sequence

from ._base import ImageListDataset, Transform, check_on_error, check_root, check_split

__all__ = ["ImageFolder", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")

_SPLITS = {"train": "train", "val": "val", "test": "test"}


class ImageFolder(ImageListDataset):
    """Images sorted into one folder per class, under ``root/<split>/``.

    Args:
        root: the folder holding ``train/`` and ``val/`` (and optionally ``test/``).
        split: "train", "val" or "test": the subfolder read.
        transform: callable applied to the RGB PIL image (see ``glore.data.transforms.build_transform``).
        on_error: "raise" or "skip" for a corrupt image (see ``ImageListDataset``).
        extensions: file extensions counted as images, lower case with the dot.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None,
        split: str = "train",
        *,
        transform: Transform | None = None,
        on_error: str = "raise",
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
    ) -> None:
        root = check_root(root, "imagefolder")
        split = check_split(split, _SPLITS, "imagefolder")
        check_on_error(on_error)
        if isinstance(extensions, str) or not all(isinstance(e, str) and e.startswith(".") for e in extensions):
            raise ValueError(f"extensions must be a sequence of strings like '.jpg', got {extensions!r}")
        extensions = tuple(e.lower() for e in extensions)
        split_dir = os.path.join(root, split)
        if not os.path.isdir(split_dir):
            raise FileNotFoundError(f"root {root!r} has no {split!r} folder ({split_dir!r} is not a directory)")
        classes = sorted(
            entry.name for entry in os.scandir(split_dir) if entry.is_dir() and not entry.name.startswith(".")
        )
        if not classes:
            raise FileNotFoundError(f"{split_dir!r} holds no class folders; expected one folder of images per class")
        samples: list[tuple[str, int]] = []
        for label, name in enumerate(classes):
            class_dir = os.path.join(split_dir, name)
            for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for filename in sorted(filenames):
                    if os.path.splitext(filename)[1].lower() in extensions:
                        samples.append((os.path.join(dirpath, filename), label))
        if not samples:
            raise FileNotFoundError(f"{split_dir!r} holds no images with extensions {extensions}")
        counts = collections.Counter(label for _, label in samples)
        empty = [name for label, name in enumerate(classes) if not counts[label]]
        if empty:
            warnings.warn(
                f"{split_dir!r}: class folder(s) {empty[:5]} hold no images with extensions {extensions}; they stay "
                "classes (labels follow the folders' sorted names) but have no samples in this split",
                stacklevel=2,
            )
        self.root = root
        self.split = split
        super().__init__(samples, classes, transform=transform, on_error=on_error)
