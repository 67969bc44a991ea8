"""What the file-backed datasets share: the checks of their arguments (split, root, ``on_error``, class lists) and
``ImageListDataset``, a list of labelled image files. Reading images is ``image_decoding``, batching ``batching``."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

import torch
from torch.utils.data import Dataset

from .image_decoding import ImageReadError, read_image
from .transforms import to_tensor

__all__ = [
    "ImageListDataset",
    "ON_ERROR",
    "check_on_error",
    "check_split",
    "check_root",
    "check_classes",
]

logger = logging.getLogger("glore.data")

ON_ERROR = ("raise", "skip")

Transform = Callable[..., torch.Tensor]


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
