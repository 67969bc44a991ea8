"""The video dataset classes: ``VideoDataset`` (videos with labels, decoded, sampled into clips and transformed) and
the thin named sets over it, ``Kinetics``, ``VideoFolder``, ``UCF101`` and ``HMDB51``, which read their layout
(``layouts``) and pass the (path, label) pairs on."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .._base import check_classes, check_on_error, check_split
from ..transforms.functional import randint
from ..transforms.video import build_video_transform
from .decoding import VideoReadError, read_frames, video_info
from .layouts import OFFICIAL_LISTS, csv_layout, folder_layout, hmdb51_split, list_layout, ucf101_split
from .sampling import PROTOCOLS, SHORT_VIDEO, clip_starts, sample_indices

__all__ = ["HMDB51", "Kinetics", "UCF101", "VideoDataset", "VideoFolder"]

_LOG = logging.getLogger("glore.data.video")
_STILLS: set[str] = set()  # one-frame videos already reported by this process
_SPLITS = {"train": "train", "val": "val", "validate": "val", "test": "test"}


class VideoDataset(Dataset):
    """Videos with labels, sampled into clips.

    Args:
        videos: (path, label) pairs.
        classes: class names.
        train: random clips with augmentation (True) or ``num_clips`` x ``num_crops`` views of each video (False).
        num_frames: frames per clip (T).
        interval: frames between sampled frames (tau).
        protocol: test views by name (``PROTOCOLS``): ``"single_clip"`` (1 x 1, the official test) or
            ``"multi_view"`` (10 x 3); None: ``num_clips`` x ``num_crops``.
        num_clips: test: temporal clips per video (default 10, or the protocol's).
        num_crops: test: spatial crops per clip, 1 (centre) or 3 (both ends and the centre of the long side);
            default 3, or the protocol's.
        crop_size: side of the square crop.
        short_side: training: (min, max) of the random short side.
        test_short_side: the short side at test.
        hflip: training: flip probability.
        preprocess: ``"glore"`` (crop, then resize with antialiasing) or ``"official"`` (the whole frame resized with
            plain bilinear interpolation, as the official code's OpenCV resize, then cropped at the official offsets);
            also picks the default ``mean``/``std`` (ImageNet's, or ``OFFICIAL_MEAN``/``OFFICIAL_STD``).
        augment: training augmentation, ``"glore"`` (short side, crop, flip) or ``"official"`` (``OFFICIAL_AUGMENT``:
            aspect jitter, short side, crop, flip, HLS and pixel jitter).
        short_video: how a video shorter than the span is sampled: ``"official"``, ``"loop"`` or ``"pad"``
            (``sample_indices``).
        mean: per-channel mean (of [0, 1] pixels); None: the ``preprocess`` preset's.
        std: per-channel standard deviation; None: the preset's.
        on_error: "raise" or "skip".
        min_frames: videos with fewer frames are unreadable (0: any length, short videos as ``short_video`` says).
        transform: the clip transform, called as ``transform(frames, crop=k)`` with the decoded uint8 frames
            (T, H, W, 3) and the test crop ``k`` (0 in training), returning the clip (3, T, H, W); None builds
            ``glore.data.transforms.build_video_transform`` from the options above.
        decode_threads: FFmpeg threads per video (``read_frames``' ``threads``): 0 lets FFmpeg choose; 1 spends
            about a fifth less CPU per clip, better when the loader's workers already fill every core.
    """

    def __init__(
        self,
        videos: Sequence[tuple[str, int]],
        classes: Sequence[str],
        *,
        train: bool = True,
        num_frames: int = 8,
        interval: int = 8,
        protocol: str | None = None,
        num_clips: int | None = None,
        num_crops: int | None = None,
        crop_size: int = 224,
        short_side: Sequence[int] = (256, 320),
        test_short_side: int = 256,
        hflip: float = 0.5,
        preprocess: str = "glore",
        augment: str = "glore",
        short_video: str = "pad",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        on_error: str = "raise",
        min_frames: int = 0,
        transform: Any = None,
        decode_threads: int = 0,
    ) -> None:
        if protocol is not None:
            if protocol not in PROTOCOLS:
                raise ValueError(f"protocol: expected one of {', '.join(PROTOCOLS)} (or null), got {protocol!r}")
            views = PROTOCOLS[protocol]
            for name, given, wanted in (("num_clips", num_clips, views[0]), ("num_crops", num_crops, views[1])):
                if given is not None and given != wanted:
                    raise ValueError(f"{name}: protocol {protocol!r} takes {wanted}, got {given}; set one of the two")
            num_clips, num_crops = views
        num_clips = 10 if num_clips is None else num_clips
        num_crops = 3 if num_crops is None else num_crops
        for name, value in (("num_frames", num_frames), ("interval", interval), ("num_clips", num_clips)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        clip_transform = build_video_transform(
            train,
            crop_size=crop_size,
            short_side=short_side,
            test_short_side=test_short_side,
            num_crops=num_crops,
            hflip=hflip,
            preprocess=preprocess,
            augment=augment,
            mean=mean,
            std=std,
        )
        if short_video not in SHORT_VIDEO:
            raise ValueError(f"short_video: expected one of {', '.join(SHORT_VIDEO)}, got {short_video!r}")
        if not videos:
            raise ValueError("videos: the dataset is empty (no video files found for this split)")
        self.videos = [(str(p), int(y)) for p, y in videos]
        self.classes = list(classes)
        self.num_classes = len(self.classes)
        self.train = train
        self.num_frames, self.interval = num_frames, interval
        self.protocol = protocol
        self.num_clips, self.num_crops = num_clips, num_crops
        self.crop_size, self.short_side, self.test_short_side = crop_size, tuple(short_side), test_short_side
        self.hflip = hflip
        self.preprocess, self.augment, self.short_video = preprocess, augment, short_video
        self.mean, self.std = clip_transform.mean, clip_transform.std  # (3, 1, 1, 1)
        self.on_error = check_on_error(on_error)
        self.min_frames = min_frames
        self.transform = clip_transform if transform is None else transform
        if isinstance(decode_threads, bool) or not isinstance(decode_threads, int) or decode_threads < 0:
            raise ValueError(f"decode_threads: expected an int >= 0 (0: FFmpeg chooses), got {decode_threads!r}")
        self.decode_threads = decode_threads

    @property
    def num_views(self) -> int:
        """Views per video: 1 in training, ``num_clips * num_crops`` at test."""
        return 1 if self.train else self.num_clips * self.num_crops

    @property
    def num_videos(self) -> int:
        """Number of videos."""
        return len(self.videos)

    @property
    def video_names(self) -> list[str]:
        """The videos' paths."""
        return [p for p, _ in self.videos]

    @property
    def span(self) -> int:
        """Frames a clip covers: ``(num_frames - 1) * interval + 1``."""
        return (self.num_frames - 1) * self.interval + 1

    def __len__(self) -> int:
        return len(self.videos) * self.num_views

    def frame_indices(self, total: int, clip: int = 0) -> list[int]:
        """The frames a clip of a video of ``total`` frames takes: a random start in training (drawn with
        torch's generator), else the start of test clip ``clip`` (``clip_starts``); short videos per ``short_video``."""
        if self.train:
            start = randint(0, max(total - self.span, 0))
        else:
            start = clip_starts(total, self.span, self.num_clips)[clip]
        return sample_indices(total, self.num_frames, self.interval, start, short_video=self.short_video)

    def _frames(self, path: str, clip: int) -> np.ndarray:
        total, _ = video_info(path)
        if total < self.min_frames:
            raise VideoReadError(f"{path}: {total} frames, fewer than min_frames={self.min_frames}")
        if total == 1 and path not in _STILLS:  # said once a process: glore data check lists them all
            _STILLS.add(path)
            _LOG.warning("%s: 1 frame, a still image: each of its clips repeats it (min_frames: 2 leaves it out)", path)
        return read_frames(path, self.frame_indices(total, clip), threads=self.decode_threads)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, dict[str, Any]] | None:
        video, view = divmod(index, self.num_views)
        clip, crop = divmod(view, self.num_crops) if not self.train else (0, 0)
        path, label = self.videos[video]
        try:
            frames = self._frames(path, clip)
        except VideoReadError as error:
            if self.on_error == "raise":
                raise
            _LOG.warning("skipping unreadable video: %s", error)
            return None
        clip = self.transform(torch.from_numpy(frames), crop=crop)
        return clip, label, {"video": video, "view": view, "path": path}


class Kinetics(VideoDataset):
    """Kinetics (or any video classification set) in one of the layouts of the module docstring.

    Args:
        root: the dataset folder.
        split: "train", "val" or "test".
        layout: "auto", "folder", "csv" or "list".
        classes: class names in label order (default: sorted names found in the split, or the list layout's
            class file); give the training split's to a validation split: a class the training split lacks is then
            an error naming it, and labels keep the training split's indices when the validation split lacks a class.
        list_file: ``list`` layout: the list of the split, relative to ``root``, ``{split}`` replaced by the split
            (default ``{split}.txt``, or the official tree's ``raw/list_cvt/kinetics_{split}[_avi].txt``).
        video_root: ``list`` layout: the folder the list's paths are relative to, relative to ``root`` (``{split}``
            replaced; default ``root``, or the official tree's ``raw/data/{split}_avi-288p`` or ``raw/data/{split}``).
        class_file: ``list`` layout: lines ``index name`` naming the classes, relative to ``root`` (default:
            ``mapping_table.txt`` beside the list when there is one, else the names "0", "1", ...).
        on_error: "raise" or "skip".
        **kwargs: sampling and transform options of ``VideoDataset`` (``train`` defaults to ``split == "train"``).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        *,
        layout: str = "auto",
        classes: Sequence[str] | None = None,
        list_file: str | None = None,
        video_root: str | None = None,
        class_file: str | None = None,
        on_error: str = "raise",
        train: bool | None = None,
        **kwargs: Any,
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"root: {root} is not a folder")
        split = check_split(split, _SPLITS, "kinetics")
        if layout == "auto":
            if (root / f"{split}.csv").is_file():
                layout = "csv"
            elif list_file or (root / f"{split}.txt").is_file() or (root / OFFICIAL_LISTS).is_dir():
                layout = "list"
            else:
                layout = "folder"
        if layout != "list" and (list_file or video_root or class_file):
            raise ValueError(f"list_file, video_root and class_file belong to layout 'list', not {layout!r}")
        if layout == "csv":
            videos, names = csv_layout(root, split, classes)
        elif layout == "list":
            videos, names = list_layout(root, split, classes, list_file, video_root, class_file)
        elif layout == "folder":
            videos, names = folder_layout(root, split, classes)
        else:
            raise ValueError(f"layout: expected 'auto', 'folder', 'csv' or 'list', got {layout!r}")
        self.layout = layout
        train = split == "train" if train is None else train
        super().__init__(videos, names, train=train, on_error=on_error, **kwargs)


class VideoFolder(Kinetics):
    """Any video classification set as class folders, ``root/{split}/{class}/*.mp4`` (also .avi, .mkv, .webm,
    .mov): ``kinetics`` with ``layout="folder"``.

    Args:
        root: the dataset folder.
        split: "train", "val" or "test".
        classes: class names in label order (default: the sorted folder names of the split).
        on_error: "raise" or "skip".
        train: random clips with augmentation, or test views (default: ``split == "train"``).
        **kwargs: sampling and transform options of ``VideoDataset``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        *,
        classes: Sequence[str] | None = None,
        on_error: str = "raise",
        train: bool | None = None,
        **kwargs: Any,
    ) -> None:
        if "layout" in kwargs:
            raise TypeError(
                f"layout: videofolder reads class folders only, got layout={kwargs['layout']!r}; "
                "use kinetics for the csv and list layouts"
            )
        super().__init__(root, split, layout="folder", classes=classes, on_error=on_error, train=train, **kwargs)


class _OfficialSplits(VideoDataset):
    """A dataset read from official split files: ``split`` "train" or "test" ("val" means "test") of ``fold`` 1-3;
    subclasses name themselves and their split-file reader (``layouts``)."""

    name = ""
    reader: Callable[[Path, str, int], tuple[list[tuple[str, int]], list[str]]]

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        *,
        fold: int = 1,
        classes: Sequence[str] | None = None,
        on_error: str = "raise",
        train: bool | None = None,
        **kwargs: Any,
    ) -> None:
        split = check_split(split, {"train": "train", "val": "test", "test": "test"}, self.name)
        if fold not in (1, 2, 3):
            raise ValueError(f"fold: expected 1, 2 or 3, got {fold!r}")
        videos, found = type(self).reader(Path(root), split, fold)
        if classes is not None:  # the split files name every class: the classes given must be the same list
            check_classes(classes, found, expected_from="classes (the training split's)", found_from=f"{root}")
        classes = found
        train = split == "train" if train is None else train
        super().__init__(videos, classes, train=train, on_error=on_error, **kwargs)


class UCF101(_OfficialSplits):
    """UCF101 with its official split files (``root/ucfTrainTestlist/``; videos under ``root/UCF-101/`` or ``root``).

    Args:
        root: the dataset folder.
        split: "train" or "test" ("val" means "test").
        fold: which of the three official splits, 1 to 3.
        on_error: "raise" or "skip".
        **kwargs: options of ``VideoDataset``.
    """

    name = "ucf101"
    reader = staticmethod(ucf101_split)


class HMDB51(_OfficialSplits):
    """HMDB51 with its official split files (``{class}_test_split{N}.txt``: 1 train, 2 test, 0 unused).

    Args:
        root: the dataset folder, with the split files in ``root/testTrainMulti_7030_splits/`` (or ``root/splits``)
            and the videos in ``root/videos/{class}/`` (or ``root/{class}/``).
        split: "train" or "test" ("val" means "test").
        fold: which of the three official splits, 1 to 3.
        on_error: "raise" or "skip".
        **kwargs: options of ``VideoDataset``.
    """

    name = "hmdb51"
    reader = staticmethod(hmdb51_split)
