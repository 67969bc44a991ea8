"""Datasets, transforms and batching.

``create_dataset(name, root, split, transform=..., on_error=...)`` builds any of the datasets below; use
``collate`` as every DataLoader's ``collate_fn``.

=============  ===============================================================  ==============================
name           layout                                                           splits
=============  ===============================================================  ==============================
cub200         CUB-200-2011 as distributed (``images.txt`` ... ``images/``)       train, test (val = test)
imagefolder    ``root/<split>/<class>/<image>``                                 train, val, test
cifar10        ``cifar-10-batches-py`` pickle batches                           train, test (val = test)
cifar100       ``cifar-100-python`` pickle batches, fine labels                 train, test (val = test)
relational     generated, no files (``glore.tools.demo_data``)                 train, val, test
cityscapes     ``leftImg8bit/`` + ``gtFine/`` as distributed (segmentation)      train, val, test
segfolder      ``images/<split>/``, ``masks/<split>/``, ``classes.txt``         train, val, test
relational_seg generated segmentation, no files (``glore.tools.demo_data``)   train, val, test
kinetics       class folders, official CSV or ``id label path`` list (video)    train, val, test
ucf101         ``ucfTrainTestlist/`` split files, fold 1-3 (video)              train, test (val = test)
hmdb51         ``*_test_split{N}.txt`` split files, fold 1-3 (video)            train, test (val = test)
relational_video generated video, no files (``glore.tools.demo_data``)       train, val, test
videofolder    ``root/<split>/<class>/<video>`` (video)                         train, val, test
=============  ===============================================================  ==============================
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from torch.utils.data import Dataset

from ._base import ImageListDataset, Transform, check_classes, check_on_error
from .batching import Batch, collate
from .cifar import CIFAR10, CIFAR100
from .cityscapes import CityscapesDataset
from .cub import CUB200
from .folder import ImageFolder
from .image_decoding import ImageReadError, read_image
from .segmentation import SegFolder, SegmentationDataset
from .transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_seg_transform,
    build_transform,
    build_video_transform,
    load_transform,
)
from .video import HMDB51, UCF101, Kinetics, VideoDataset, VideoFolder, VideoReadError

__all__ = [
    "create_dataset",
    "list_datasets",
    "collate",
    "check_classes",
    "Batch",
    "build_transform",
    "build_seg_transform",
    "build_video_transform",
    "load_transform",
    "ImageListDataset",
    "ImageReadError",
    "read_image",
    "CUB200",
    "ImageFolder",
    "CIFAR10",
    "CIFAR100",
    "RelationalDataset",
    "CityscapesDataset",
    "SegFolder",
    "SegmentationDataset",
    "RelationalSegDataset",
    "RelationalVideoDataset",
    "VideoDataset",
    "VideoReadError",
    "VideoFolder",
    "Kinetics",
    "UCF101",
    "HMDB51",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RELATIONAL_MEAN",
    "RELATIONAL_STD",
]

_GENERATED_MODULE = "glore.tools.demo_data"
"""Where the generated datasets of the demos live; ``glore.data`` imports it when one is first used."""
_GENERATED_NAMES = {
    "RelationalDataset",
    "RelationalSegDataset",
    "RelationalVideoDataset",
    "RELATIONAL_MEAN",
    "RELATIONAL_STD",
}


class _Registry(Mapping[str, Callable[..., Dataset]]):
    """Dataset classes by name. An entry given as ``"module:Name"`` is imported when it is first looked up, so that
    the generated datasets can live beside the demos without the core data package importing them."""

    def __init__(self, entries: Mapping[str, Callable[..., Dataset] | str]) -> None:
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> Callable[..., Dataset]:
        entry = self._entries[name]
        if isinstance(entry, str):
            module, attribute = entry.split(":")
            entry = self._entries[name] = getattr(importlib.import_module(module), attribute)
        return entry

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


_DATASETS = _Registry(
    {
        "cub200": CUB200,
        "imagefolder": ImageFolder,
        "cifar10": CIFAR10,
        "cifar100": CIFAR100,
        "relational": f"{_GENERATED_MODULE}:RelationalDataset",
        "cityscapes": CityscapesDataset,
        "segfolder": SegFolder,
        "relational_seg": f"{_GENERATED_MODULE}:RelationalSegDataset",
        "relational_video": f"{_GENERATED_MODULE}:RelationalVideoDataset",
        "kinetics": Kinetics,
        "ucf101": UCF101,
        "hmdb51": HMDB51,
        "videofolder": VideoFolder,
    }
)

# Datasets that need no files on disk.
_BUILT_IN = {"relational", "relational_seg", "relational_video"}


def __getattr__(name: str) -> Any:
    # glore.data.RelationalDataset ... and RELATIONAL_MEAN/STD: the demos' generated data, imported on first use.
    if name in _GENERATED_NAMES:
        return getattr(importlib.import_module(_GENERATED_MODULE), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def list_datasets() -> list[str]:
    """The names ``create_dataset`` accepts, sorted."""
    return sorted(_DATASETS)


def _extra_arguments(cls: Callable[..., Dataset]) -> list[str]:
    """The dataset-specific keyword arguments of ``cls`` (those beyond root, split, transform, on_error)."""
    common = {"self", "root", "split", "transform", "on_error"}
    names: list[str] = []
    for klass in getattr(cls, "__mro__", (cls,)):  # **kwargs passed on to a base class: its parameters count too
        init = klass.__init__ if isinstance(klass, type) else klass
        if klass is object or init is object.__init__:
            break
        params = inspect.signature(init).parameters
        names += [n for n, p in params.items() if n not in common and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            break
    return list(dict.fromkeys(names))


def create_dataset(
    name: str,
    root: str | os.PathLike[str] | None = None,
    split: str = "train",
    *,
    transform: Transform | None = None,
    on_error: str = "raise",
    **kwargs: Any,
) -> Dataset:
    """Build a dataset by name.

    Every dataset has ``num_classes`` and ``classes`` (names) and returns ``(image, target)``: a float tensor
    (C, H, W) after ``transform`` and an int. Files are read with Pillow in ``__getitem__``, so in the DataLoader's
    workers.

    Args:
        name: one of ``list_datasets()``: "cub200", "imagefolder", "cifar10", "cifar100", "relational",
            "cityscapes", "segfolder", "relational_seg".
        root: the dataset's folder; not used by "relational".
        split: "train", "val" or "test"; for cub200 and CIFAR, which only have a test split, "val" means "test".
        transform: callable applied to each RGB PIL image (``glore.data.build_transform``); None converts to a
            float tensor in [0, 1] without resizing. For "relational", which makes normalised tensors itself,
            it is applied to the tensor and must keep the label.
        on_error: "raise" (an unreadable image raises an ``OSError`` naming the file) or "skip" (a warning naming
            the file is logged, the sample is returned as None, and ``collate`` drops it and counts it in
            ``Batch.skipped``).
        **kwargs: dataset-specific options: cub200 ``crop_to_bbox``; imagefolder ``extensions``; relational
            ``num_samples``, ``image_size``, ``seed``, ``num_shapes``, ``num_distractors``, ``object_size``,
            ``min_distance``, ``noise``; cityscapes ``instances``; segfolder ``ignore_index``, ``classes_file``;
            relational_seg ``num_samples``, ``image_size``, ``seed``, ``rule``, ``num_classes``, ``num_blobs``,
            ``blob_size``, ``marker_size``, ``min_distance``, ``noise``; the video datasets (kinetics, videofolder,
            ucf101, hmdb51, relational_video) the sampling options of ``glore.data.video.VideoDataset`` (see there).

    The segmentation datasets (cityscapes, segfolder, relational_seg) return ``(image, mask, meta)`` instead: a
    normalised float tensor (3, H, W), an int64 mask (H, W) of class indices and ``ignore_index`` (255), and a meta
    dict (``id``, ``size``, and ``file`` for files); their ``transform`` is a joint transform
    (``glore.data.build_seg_transform``) called as ``transform(image, masks)``.

    Returns:
        The dataset.

    Raises:
        ValueError: unknown ``name``, ``split`` or ``on_error``, or a missing ``root``.
        TypeError: a keyword argument the dataset does not take.
        FileNotFoundError: ``root`` is not a directory or lacks the dataset's files.
    """
    if name is None:
        raise ValueError(f"name (data.name) is required: a config must name its dataset, one of {list_datasets()}")
    if not isinstance(name, str) or name.lower() not in _DATASETS:
        raise ValueError(f"name must be one of {list_datasets()}, got {name!r}")
    name = name.lower()
    check_on_error(on_error)
    cls = _DATASETS[name]
    allowed = _extra_arguments(cls)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        valid = ", ".join(allowed) if allowed else "none"
        raise TypeError(f"create_dataset({name!r}) got unexpected keyword argument(s) {unknown}; valid: {valid}")
    if name in _BUILT_IN:
        if root is not None:
            raise ValueError(f"root must be None for {name!r}, which generates its images; got {root!r}")
        return cls(split, transform=transform, on_error=on_error, **kwargs)
    return cls(root, split, transform=transform, on_error=on_error, **kwargs)
