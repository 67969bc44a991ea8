"""What the file-backed datasets share: reading an image with Pillow, the ``on_error`` policy, and ``collate``."""

from __future__ import annotations

import logging
import numbers
import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from PIL import Image
from torch.utils.data import Dataset

from .transforms import to_tensor

__all__ = [
    "Batch",
    "collate",
    "ImageListDataset",
    "ImageReadError",
    "read_image",
    "ON_ERROR",
    "check_on_error",
    "check_split",
    "check_root",
    "check_classes",
]

logger = logging.getLogger("glore.data")

ON_ERROR = ("raise", "skip")

Transform = Callable[..., torch.Tensor]


class Batch(NamedTuple):
    """A collated batch.

    Attributes:
        inputs: the stacked inputs, or any pytree of stacked tensors (e.g. images (n, C, H, W)); an empty tensor of
            shape (0,) when every sample was skipped.
        targets: the stacked targets, or any pytree of them (class labels: int64 of shape (n,)).
        meta: per-sample metadata by key (``{"id": [...], "size": [...]}``): a list of the samples' values for each
            key the samples' meta dicts have; ``{}`` when samples carry none.
        skipped: how many samples of this batch could not be read and were dropped (``on_error="skip"``).
    """

    inputs: Any
    targets: Any
    meta: dict[str, list[Any]]
    skipped: int


def _stack(values: list[Any]) -> Any:
    """Stack a list of same-structured values: tensors, numbers, or dicts/lists/tuples of them."""
    first = values[0]
    if isinstance(first, torch.Tensor):
        return torch.stack(values)
    if isinstance(first, numbers.Integral):
        return torch.as_tensor(values, dtype=torch.long)
    if isinstance(first, numbers.Real):
        return torch.as_tensor(values, dtype=torch.float32)
    if isinstance(first, dict):
        return {key: _stack([v[key] for v in values]) for key in first}
    if isinstance(first, list | tuple):
        return type(first)(_stack(list(parts)) for parts in zip(*values, strict=True))
    raise TypeError(f"collate: cannot stack values of type {type(first).__name__}; expected tensors or numbers")


def collate(batch: Sequence[tuple[Any, ...] | None]) -> Batch:
    """Stack ``(input, target)`` or ``(input, target, meta)`` samples into a ``Batch``, dropping the ``None`` of
    unreadable samples.

    Inputs and targets may be tensors, numbers or nested dicts/lists/tuples of them (stacked leaf by leaf); ``meta``
    is a dict whose values are kept as per-sample lists. Use it as every DataLoader's ``collate_fn``; summing
    ``Batch.skipped`` over an epoch gives the number of samples skipped in it.

    Args:
        batch: the samples the DataLoader gathered; ``None`` for a sample skipped under ``on_error="skip"``.

    Returns:
        ``Batch(inputs, targets, meta, skipped)``.
    """
    kept = [sample for sample in batch if sample is not None]
    skipped = len(batch) - len(kept)
    if not kept:
        return Batch(torch.empty(0), torch.empty(0, dtype=torch.long), {}, skipped)
    if any(not isinstance(s, tuple | list) or len(s) not in (2, 3) for s in kept):
        raise TypeError("collate: expected samples (input, target) or (input, target, meta)")
    inputs = _stack([sample[0] for sample in kept])
    targets = _stack([sample[1] for sample in kept])
    meta: dict[str, list[Any]] = {}
    if len(kept[0]) == 3:
        for key in kept[0][2]:
            meta[key] = [sample[2].get(key) for sample in kept]
    return Batch(inputs, targets, meta, skipped)


def check_on_error(on_error: object) -> str:
    """Return ``on_error`` if it is "raise" or "skip", else raise a ValueError naming it."""
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    return str(on_error)


def check_split(split: object, aliases: dict[str, str], dataset: str) -> str:
    """Map ``split`` through ``aliases`` (accepted name -> canonical name), or raise a ValueError naming it."""
    if not isinstance(split, str) or split not in aliases:
        raise ValueError(f"split must be one of {sorted(aliases)} for {dataset}, got {split!r}")
    return aliases[split]


def check_root(root: str | os.PathLike[str] | None, dataset: str) -> str:
    """Return ``root`` as a string if it names an existing directory, else raise naming ``root``."""
    if root is None:
        raise ValueError(f"root is required for {dataset} (data.root of a recipe): the folder holding the dataset")
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root (data.root) must be a path (str or os.PathLike), got {type(root).__name__}")
    root = os.fspath(root)
    if not os.path.isdir(root):
        what = "it does not exist" if not os.path.exists(root) else "it is a file"
        raise FileNotFoundError(f"root (data.root) {root!r} for {dataset} is not a directory ({what})")
    return root


def check_classes(expected: Sequence[str], found: Sequence[str], *, expected_from: str, found_from: str) -> None:
    """Raise a ValueError naming the first difference when two class lists differ (names, order or count).

    Labels are indices into the class list, so a network trained on ``expected`` scores data labelled by ``found``
    correctly only when the two lists are equal: the same count is not enough (``['cat', 'dog']`` against
    ``['cat', 'fox']`` scores every fox as a dog).

    Args:
        expected: the class names the labels are meant to follow (the training split's, a checkpoint's).
        found: the class names of the data at hand.
        expected_from: where ``expected`` comes from, for the message ("the 'train' split", "checkpoint 'best.pt'").
        found_from: where ``found`` comes from.

    Raises:
        ValueError: the lists differ; the message names both sources and the first differing class.
    """
    a, b = [str(c) for c in expected], [str(c) for c in found]
    if a == b:
        return
    if len(a) != len(b):
        only = sorted(set(a) ^ set(b))[:4]
        raise ValueError(
            f"{found_from} has {len(b)} classes but {expected_from} has {len(a)}; in one and not the other: {only}"
        )
    i = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
    raise ValueError(
        f"class {i} is {a[i]!r} in {expected_from} but {b[i]!r} in {found_from}: its labels would be scored as "
        "other classes; give both the same class folders"
    )


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


class ImageListDataset(Dataset):
    """A list of (image file, label) pairs read with Pillow in ``__getitem__``.

    Args:
        samples: (path, label) pairs.
        classes: class names; ``classes[label]`` names a label.
        transform: callable applied to the RGB PIL image; ``to_tensor`` (floats in [0, 1], no resizing) if None.
        on_error: "raise" to raise an ``OSError`` naming the file of an unreadable sample, "skip" to log a warning
            naming it and return None (dropped and counted by ``collate``).
        boxes: optional crop box (left, top, right, bottom) per sample.
    """

    def __init__(
        self,
        samples: Sequence[tuple[str, int]],
        classes: Sequence[str],
        *,
        transform: Transform | None = None,
        on_error: str = "raise",
        boxes: Sequence[tuple[float, float, float, float]] | None = None,
    ) -> None:
        self.samples = list(samples)
        self.classes = list(classes)
        self.transform = transform
        self.on_error = check_on_error(on_error)
        self.boxes = None if boxes is None else list(boxes)
        if self.boxes is not None and len(self.boxes) != len(self.samples):
            raise ValueError(f"boxes must have one entry per sample ({len(self.samples)}), got {len(self.boxes)}")

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return len(self.classes)

    @property
    def targets(self) -> list[int]:
        """The label of every sample, in order."""
        return [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | None:
        path, label = self.samples[index]
        box = None if self.boxes is None else self.boxes[index]
        try:
            image = read_image(path, box=box, draft_size=getattr(self.transform, "draft_size", None))
        except ImageReadError as error:
            if self.on_error == "raise":
                raise
            logger.warning("skipping sample %d: %s", index, error)
            return None
        tensor = to_tensor(image) if self.transform is None else self.transform(image)
        return tensor, label

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_samples={len(self)}, num_classes={self.num_classes}, "
            f"on_error={self.on_error!r}, transform={self.transform!r})"
        )
