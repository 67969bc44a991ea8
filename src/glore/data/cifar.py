"""``cifar10`` and ``cifar100``: the python pickle batches as distributed.

::

    cifar-10-batches-py/   data_batch_1 .. data_batch_5, test_batch, batches.meta
    cifar-100-python/      train, test, meta          (fine labels are used)

``root`` may be that folder or the folder holding it. Each batch is a pickled dict with bytes keys: ``b"data"``
(n, 3072) uint8 in channel-major order, ``b"labels"`` (CIFAR-10) or ``b"fine_labels"`` (CIFAR-100); the meta file
holds ``b"label_names"`` or ``b"fine_label_names"``. Everything is loaded into memory once (about 180 MB for the
training set); ``__getitem__`` builds a PIL image from the (32, 32, 3) array and applies the transform.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ._base import Transform, check_on_error, check_root, check_split
from .transforms import to_tensor

__all__ = ["CIFAR", "CIFAR10", "CIFAR100"]

_SPLITS = {"train": "train", "val": "test", "test": "test"}


def _load_pickle(path: str) -> dict[bytes, Any]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CIFAR batch file {path!r} not found")
    try:
        with open(path, "rb") as handle:
            data = pickle.load(handle, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise ValueError(f"cannot read CIFAR batch file {path!r}: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"CIFAR batch file {path!r} does not hold a dict")
    return data


def _get(data: dict[bytes, Any], key: bytes, path: str) -> Any:
    if key not in data:
        raise ValueError(f"CIFAR batch file {path!r} has no {key!r} entry")
    return data[key]


class CIFAR(Dataset):
    """CIFAR-10 or CIFAR-100 from the python pickle batches; images as (32, 32, 3) uint8 arrays in memory.

    Args:
        root: the batches folder (``cifar-10-batches-py`` or ``cifar-100-python``) or the folder holding it.
        split: "train" or "test" ("val" is an alias of "test").
        transform: callable applied to the RGB PIL image; ``to_tensor`` (floats in [0, 1]) if None.
        on_error: accepted for a uniform interface; the batches are read whole at construction, where a
            missing or corrupt file always raises.
        variant: "cifar10" or "cifar100"; set by ``CIFAR10`` and ``CIFAR100``.

    Attributes:
        data: uint8 array (n, 32, 32, 3).
        targets: list of int labels.
    """

    _FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}

    def __init__(
        self,
        root: str | os.PathLike[str] | None,
        split: str = "train",
        *,
        transform: Transform | None = None,
        on_error: str = "raise",
        variant: str = "cifar10",
    ) -> None:
        if variant not in self._FOLDERS:
            raise ValueError(f"variant must be one of {tuple(self._FOLDERS)}, got {variant!r}")
        root = check_root(root, variant)
        split = check_split(split, _SPLITS, variant)
        self.on_error = check_on_error(on_error)
        folder = self._FOLDERS[variant]
        if os.path.isdir(os.path.join(root, folder)):
            root = os.path.join(root, folder)
        if variant == "cifar10":
            files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
            meta_file, names_key, labels_key = "batches.meta", b"label_names", b"labels"
        else:
            files = ["train"] if split == "train" else ["test"]
            meta_file, names_key, labels_key = "meta", b"fine_label_names", b"fine_labels"

        meta_path = os.path.join(root, meta_file)
        names = _get(_load_pickle(meta_path), names_key, meta_path)
        self.classes = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]
        arrays, targets = [], []
        for name in files:
            path = os.path.join(root, name)
            batch = _get_batch(path, labels_key)
            arrays.append(batch[0])
            targets.extend(batch[1])
        self.data = np.concatenate(arrays)
        self.targets = targets
        bad = [t for t in targets if not 0 <= t < len(self.classes)]
        if bad:
            raise ValueError(f"{root!r}: label {bad[0]} outside 0..{len(self.classes) - 1}")
        self.root = root
        self.split = split
        self.variant = variant
        self.transform = transform

    @property
    def num_classes(self) -> int:
        """The number of classes (10 or 100)."""
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = Image.fromarray(self.data[index])
        tensor = to_tensor(image) if self.transform is None else self.transform(image)
        return tensor, self.targets[index]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(split={self.split!r}, num_samples={len(self)}, num_classes={self.num_classes}, "
            f"transform={self.transform!r})"
        )


def _get_batch(path: str, labels_key: bytes) -> tuple[np.ndarray, list[int]]:
    data = _load_pickle(path)
    raw = np.asarray(_get(data, b"data", path), dtype=np.uint8)
    labels = [int(v) for v in _get(data, labels_key, path)]
    if raw.ndim != 2 or raw.shape[1] != 3 * 32 * 32 or raw.shape[0] != len(labels):
        raise ValueError(
            f"CIFAR batch file {path!r}: expected data of shape (n, 3072) with n = {len(labels)} labels, "
            f"got {raw.shape}"
        )
    # (n, 3072) channel-major -> (n, 3, 32, 32) -> (n, 32, 32, 3) HWC
    images = raw.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


class CIFAR10(CIFAR):
    """CIFAR-10: 10 classes, 50,000 training and 10,000 test images. Arguments as ``CIFAR`` without ``variant``."""

    def __init__(
        self,
        root: str | os.PathLike[str] | None,
        split: str = "train",
        *,
        transform: Transform | None = None,
        on_error: str = "raise",
    ) -> None:
        super().__init__(root, split, transform=transform, on_error=on_error, variant="cifar10")


class CIFAR100(CIFAR):
    """CIFAR-100 with its 100 fine labels. Arguments as ``CIFAR`` without ``variant``."""

    def __init__(
        self,
        root: str | os.PathLike[str] | None,
        split: str = "train",
        *,
        transform: Transform | None = None,
        on_error: str = "raise",
    ) -> None:
        super().__init__(root, split, transform=transform, on_error=on_error, variant="cifar100")
