"""glore's one augmentation stack: images, images with their masks, and video clips.

Every transform is one callable per sample, called as torchvision.transforms.v2 users expect, with one random
source, a ``torch.Generator`` (None: torch's global generator, which the engine's ``SeededDataset`` seeds from
``(seed, epoch, index)`` before every sample, so a resumed run draws the same augmentation):

=============================================  ==========================================  =========================
call                                           builds it                                   module
=============================================  ==========================================  =========================
``t(pil_image, generator=None) -> tensor``     ``build_transform(train, image_size, ...)``  ``image``
``t(pil_image, masks, generator=None)``        ``build_seg_transform(train, ...)``          ``segmentation``
``-> (tensor, [mask tensors])``
``t(frames, generator=None, *, crop=0)``       ``build_video_transform(train, ...)``        ``video``
``-> clip (3, T, H, W)``
=============================================  ==========================================  =========================

``functional`` holds the pieces they share (conversions, draws, checks, pad/crop, colour jitter, HLS jitter).
``load_transform("package.module:name")`` imports a user's transform factory (``data.transform`` of a config).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .functional import IMAGENET_MEAN, IMAGENET_STD, normalize, to_tensor
from .image import EvalTransform, TrainTransform, build_transform
from .segmentation import SegEvalTransform, SegTrainTransform, build_seg_transform
from .video import ClipEvalTransform, ClipTrainTransform, build_video_transform

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ClipEvalTransform",
    "ClipTrainTransform",
    "EvalTransform",
    "SegEvalTransform",
    "SegTrainTransform",
    "TrainTransform",
    "build_seg_transform",
    "build_transform",
    "build_video_transform",
    "load_transform",
    "normalize",
    "to_tensor",
]


def load_transform(spec: str) -> Callable[..., Any]:
    """Import the transform factory ``spec`` names: ``"package.module:name"`` (``name`` may be dotted:
    ``"package.module:Class.method"``).

    The factory is called as ``factory(train=True)`` for the training split and ``factory(train=False)`` for
    evaluation, and returns the transform the dataset gets, called as glore's own for that kind of data (see the
    table above): an image, an image with its masks, or decoded frames.

    Raises:
        ValueError: ``spec`` is not ``"module:name"``, the module cannot be imported, it has no such name, or the
            object is not callable; the message names ``data.transform``.
    """
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise ValueError(f"data.transform: expected 'standard', 'none' or 'package.module:callable', got {spec!r}")
    module_name, attribute = spec.split(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"data.transform: cannot import {module_name!r} ({error})") from error
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"data.transform: {module_name!r} has no {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"data.transform: {spec!r} is a {type(target).__name__}, not a callable")
    return target
