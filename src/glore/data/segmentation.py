"""Segmentation datasets read from files: the shared base, and ``segfolder``, a generic layout of images and index
masks.

``segfolder`` layout::

    root/
      classes.txt                   one class name a line; line k names class k
      images/<split>/<name>.jpg     (or .png, ...; subfolders allowed)
      masks/<split>/<name>.png      index PNG (mode L or P) of the same size: class k, or the ignore label

Every image needs a mask of the same relative name (extension ``.png``); a missing one is reported when the dataset
is built. Samples are ``(image, target, meta)``: the image as a normalised float tensor (3, H, W) after the joint
transform (``glore.data.transforms``), the target as an int64 tensor (H, W) of class indices and
``ignore_index``, and ``meta = {"id": <relative name without extension>, "file": <image path>, "size": (H, W)}``
with the image's size as read.

Bad samples are found when read: an unreadable image or mask raises ``ImageReadError`` (an ``OSError``), a mask of
another size than its image or with values that are neither a class nor the ignore label raises ``MaskError`` (a
``ValueError``); each message names the file. With ``on_error="skip"`` the sample is logged, returned as None and
counted by ``collate``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ._base import check_on_error, check_root, check_split
from .folder import IMAGE_EXTENSIONS
from .image_decoding import ImageReadError, MaskError, read_image, read_mask
from .transforms import build_seg_transform

__all__ = ["SegmentationDataset", "SegFolder", "SegSample", "MaskError", "read_mask", "label_lut"]

logger = logging.getLogger("glore.data")

_SPLITS = {"train": "train", "val": "val", "test": "test"}

SegTransform = Any  # callable (image, masks, generator=None) -> (tensor, [mask tensors])


class SegSample(NamedTuple):
    """One sample's files: its id, the image, the label mask and (Cityscapes) the instance-id image or None."""

    id: str
    image: str
    mask: str
    instances: str | None = None


def label_lut(num_values: int, mapping: dict[int, int]) -> np.ndarray:
    """A lookup table raw value -> label of ``num_values`` entries: ``mapping[v]`` where given, -1 (invalid)
    elsewhere."""
    lut = np.full(num_values, -1, dtype=np.int16)
    for raw, label in mapping.items():
        lut[raw] = label
    return lut


class SegmentationDataset(Dataset):
    """Images with label masks (and optionally instance-id images) listed as ``SegSample``s, read in
    ``__getitem__``.

    Raw mask values go through ``lut`` (raw value -> class index or ``ignore_index``; -1 marks a value that is
    neither), so a dataset stored with other ids (Cityscapes labelIds) yields class indices.

    Args:
        samples: the samples' files.
        classes: class names; class k is ``classes[k]``.
        lut: int16 lookup table raw mask value -> class index, ``ignore_index``, or -1 (invalid).
        ignore_index: the label of pixels that are not scored.
        transform: joint transform ``(image, masks, generator=None) -> (tensor, masks)``; None normalises with the
            ImageNet mean and std at full resolution (``build_seg_transform(train=False)``).
        on_error: "raise" or "skip" for a bad sample (see the module docstring).
        instances: return ``{"mask": ..., "instances": ...}`` targets with the raw instance ids (int32).
    """

    def __init__(
        self,
        samples: Sequence[SegSample],
        classes: Sequence[str],
        *,
        lut: np.ndarray,
        ignore_index: int = 255,
        transform: SegTransform | None = None,
        on_error: str = "raise",
        instances: bool = False,
    ) -> None:
        self.samples = list(samples)
        self.classes = list(classes)
        self.lut = lut
        self.ignore_index = ignore_index
        self.transform = transform if transform is not None else build_seg_transform(train=False)
        self.on_error = check_on_error(on_error)
        self.instances = bool(instances)
        if self.instances and any(s.instances is None for s in self.samples):
            raise ValueError("instances=True needs an instance-id file for every sample")

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def _labels(self, raw: np.ndarray, path: str) -> np.ndarray:
        """Map raw mask values to class indices through the LUT; reject values it does not know."""
        if raw.size and (int(raw.min()) < 0 or int(raw.max()) >= len(self.lut)):
            bad = np.unique(raw[(raw < 0) | (raw >= len(self.lut))])[:8].tolist()
            raise MaskError(f"mask {path!r} has values {bad}; expected class values or the ignore label")
        labels = self.lut[raw]
        if raw.size and int(labels.min()) < 0:
            bad = np.unique(raw[labels < 0])[:8].tolist()
            valid = np.flatnonzero(self.lut >= 0).tolist()
            shown = valid if len(valid) <= 12 else f"{valid[:12]}..."
            raise MaskError(f"mask {path!r} has values {bad} that are neither a class nor the ignore label {shown}")
        return labels.astype(np.uint8 if self.lut.max() < 256 else np.int32)

    def load(self, index: int) -> tuple[Image.Image, list[np.ndarray]]:
        """Read sample ``index``: the RGB image and its masks (class indices, then raw instance ids if asked).

        Raises:
            ImageReadError: a file cannot be read.
            MaskError: a mask does not fit its image or has invalid values.
        """
        sample = self.samples[index]
        image = read_image(sample.image)
        files = [sample.mask] + ([sample.instances] if self.instances else [])
        masks = []
        for path in files:
            raw = read_mask(path)
            if raw.shape != (image.height, image.width):
                raise MaskError(
                    f"mask {path!r} is {raw.shape[1]}x{raw.shape[0]} (WxH) but its image {sample.image!r} is "
                    f"{image.width}x{image.height}; expected the same size"
                )
            masks.append(raw)
        masks[0] = self._labels(masks[0], sample.mask)
        if self.instances:
            masks[1] = masks[1].astype(np.int32, copy=False)
        return image, masks

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any, dict[str, Any]] | None:
        sample = self.samples[index]
        try:
            image, masks = self.load(index)
        except (ImageReadError, MaskError) as error:
            if self.on_error == "raise":
                raise
            logger.warning("skipping sample %d: %s", index, error)
            return None
        size = (image.height, image.width)
        tensor, masks_t = self.transform(image, masks)
        mask = masks_t[0].long()
        target: Any = {"mask": mask, "instances": masks_t[1].int()} if self.instances else mask
        return tensor, target, {"id": sample.id, "file": sample.image, "size": size}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_samples={len(self)}, num_classes={self.num_classes}, "
            f"ignore_index={self.ignore_index}, instances={self.instances}, on_error={self.on_error!r}, "
            f"transform={self.transform!r})"
        )


def _read_classes(path: str) -> list[str]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"class list {path!r} not found; expected one class name a line")
    with open(path, encoding="utf-8") as handle:
        classes = [line.strip() for line in handle if line.strip()]
    if not classes:
        raise ValueError(f"class list {path!r} is empty; expected one class name a line")
    return classes


class SegFolder(SegmentationDataset):
    """``segfolder``: ``images/<split>/`` and ``masks/<split>/`` of index PNGs, classes from ``classes.txt``.

    Args:
        root: the folder holding ``classes.txt``, ``images/`` and ``masks/``.
        split: "train", "val" or "test".
        transform: joint transform (``glore.data.transforms.build_seg_transform``).
        on_error: "raise" or "skip" for a bad sample.
        ignore_index: the mask value of unscored pixels (0-255, not a class index).
        classes_file: the class list's file name inside ``root``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None,
        split: str = "train",
        *,
        transform: SegTransform | None = None,
        on_error: str = "raise",
        ignore_index: int = 255,
        classes_file: str = "classes.txt",
    ) -> None:
        root = check_root(root, "segfolder")
        split = check_split(split, _SPLITS, "segfolder")
        check_on_error(on_error)
        classes = _read_classes(os.path.join(root, classes_file))
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int) or not 0 <= ignore_index <= 255:
            raise ValueError(f"ignore_index must be an int in [0, 255], got {ignore_index!r}")
        if ignore_index < len(classes):
            raise ValueError(f"ignore_index {ignore_index} is a class index ({len(classes)} classes in {classes_file})")
        image_dir = os.path.join(root, "images", split)
        mask_dir = os.path.join(root, "masks", split)
        for folder in (image_dir, mask_dir):
            if not os.path.isdir(folder):
                raise FileNotFoundError(f"root {root!r} has no {os.path.relpath(folder, root)!r} folder")
        samples: list[SegSample] = []
        for dirpath, dirnames, filenames in os.walk(image_dir, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                stem, ext = os.path.splitext(filename)
                if ext.lower() not in IMAGE_EXTENSIONS:
                    continue
                rel = os.path.relpath(os.path.join(dirpath, stem), image_dir)
                mask = os.path.join(mask_dir, rel + ".png")
                if not os.path.isfile(mask):
                    raise FileNotFoundError(f"mask {mask!r} for image {os.path.join(dirpath, filename)!r} not found")
                samples.append(SegSample(rel.replace(os.sep, "/"), os.path.join(dirpath, filename), mask))
        if not samples:
            raise FileNotFoundError(f"{image_dir!r} holds no images with extensions {IMAGE_EXTENSIONS}")
        mapping = {k: k for k in range(len(classes))}
        mapping[ignore_index] = ignore_index
        self.root = root
        self.split = split
        super().__init__(
            samples,
            classes,
            lut=label_lut(256, mapping),
            ignore_index=ignore_index,
            transform=transform,
            on_error=on_error,
        )
