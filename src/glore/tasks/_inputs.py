"""Raw files as network inputs: what the tasks' ``load_input`` share.

A task turns one image or video file into an evaluation batch with the preprocessing of its evaluation dataset:
the same reader (``glore.data.read_image``, with the transform's JPEG draft size; ``glore.data.video.read_frames``)
and the same transform object, so that ``glore predict`` and ``glore eval`` give the network the same tensor for
the same file. The built-in generated data (``relational*``) has no files; for a file of such a picture its own
normalisation applies (``RELATIONAL_MEAN``/``RELATIONAL_STD``, no resizing).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch

__all__ = [
    "dataset_option",
    "generated",
    "generated_image_tensor",
    "input_batch",
    "read_input_image",
    "video_dataset",
    "video_views",
]


def generated(name: str) -> bool:
    """Whether the ``glore.data`` dataset ``name`` generates its samples (no files; normalised by itself)."""
    from glore.data import _BUILT_IN

    return isinstance(name, str) and name.lower() in _BUILT_IN


def input_batch(inputs: torch.Tensor, path: str, **meta: Any) -> Any:
    """``glore.data.Batch`` of one file's views ``inputs`` (views, ...), with ``meta`` of one sample."""
    from glore.data import Batch

    return Batch(inputs, None, {"file": [path], **{k: [v] for k, v in meta.items()}}, 0)


def read_input_image(path: str, *, draft_size: int | None = None) -> Any:
    """The RGB PIL image of ``path``, decoded as the datasets decode it (``glore.data.read_image``).

    Raises:
        ValueError: the file is not a readable image; the message names it.
    """
    from glore.data import ImageReadError
    from glore.data._base import read_image

    try:
        return read_image(path, draft_size=draft_size)
    except ImageReadError as error:
        raise ValueError(f"INPUT {path!r}: not a readable image ({error})") from None


def generated_image_tensor(path: str) -> torch.Tensor:
    """An image file normalised as the generated datasets normalise their pictures: (3, H, W)."""
    from glore.data import RELATIONAL_MEAN, RELATIONAL_STD
    from glore.data.transforms import normalize, to_tensor

    return normalize(to_tensor(read_input_image(path)), RELATIONAL_MEAN, RELATIONAL_STD)


def video_dataset(path: str, kwargs: Mapping[str, Any]) -> Any:
    """A test-mode ``VideoDataset`` of the one video ``path`` with the options in ``kwargs`` that it takes (those of
    a dataset built on it: sizes, sampling, preprocessing preset, normalisation); nothing is read yet."""
    from glore.data.video import VideoDataset

    accepted = inspect.signature(VideoDataset.__init__).parameters
    options = {k: v for k, v in kwargs.items() if k in accepted and k not in ("videos", "classes", "on_error")}
    options["train"] = False
    return VideoDataset([(path, 0)], ["?"], on_error="raise", **options)


def video_views(path: str, kwargs: Mapping[str, Any]) -> torch.Tensor:
    """Every evaluation view of one video file (clips x crops), sampled and transformed by ``VideoDataset`` with
    the options in ``kwargs`` that it takes (those of a dataset built on it: sizes, sampling, normalisation).

    Returns:
        (views, 3, T, H, W).

    Raises:
        ValueError: the file cannot be decoded; the message names it.
    """
    from glore.data.video import VideoReadError

    dataset = video_dataset(path, kwargs)
    try:
        views = [dataset[i][0] for i in range(len(dataset))]  # type: ignore[index]
    except VideoReadError as error:
        raise ValueError(f"INPUT {path!r}: not a readable video ({error})") from None
    return torch.stack(views)  # (views, 3, T, H, W)


def dataset_option(name: str, kwargs: Mapping[str, Any], key: str) -> Any:
    """``kwargs[key]``, else the default of that keyword argument of the ``glore.data`` dataset ``name`` (or of
    ``VideoDataset``, which the video sets pass their options to); None when neither has it."""
    from glore.data import _DATASETS
    from glore.data.video import VideoDataset

    if key in kwargs:
        return kwargs[key]
    for cls in (_DATASETS.get(name.lower()), VideoDataset):
        parameter = inspect.signature(cls.__init__).parameters.get(key) if cls is not None else None
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return parameter.default
    return None
