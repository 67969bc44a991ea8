"""Video datasets: Kinetics in the layouts people have, UCF101 and HMDB51 split files, decoding with PyAV, clip
sampling and clip transforms.

Decoding (``read_frames``) opens a file with PyAV (FFmpeg inside the wheel), seeks to the key frame before the first
frame needed, decodes with FFmpeg's own threads and stops at the last frame needed; the container is always closed.

Sampling follows the official GloRe and Non-local recipes: T frames every ``interval`` frames (8 x 8 by default),
from a random position in training; at test, ``num_clips`` clips evenly spaced over the video times
``num_crops`` spatial crops (10 x 3). A video shorter than the span loops (indices wrap around), so every clip has T
frames.

Layouts (``layout="auto"`` picks by what is in ``root``):

- ``folder``: ``root/{split}/{class}/*.mp4`` (also .avi, .mkv, .webm, .mov);
- ``csv``: the official Kinetics annotations ``root/{split}.csv`` (``label,youtube_id,time_start,time_end,split``)
  with the videos ``{youtube_id}_{start:06}_{end:06}.mp4`` anywhere under ``root/{split}/``;
- ``list``: ``root/{split}.txt`` of lines ``id label path`` (the official GloRe lists; path relative to ``root``).

``videofolder`` is the ``folder`` layout alone, for any video classification set.

``ucf101`` reads ``ucfTrainTestlist/`` (``classInd.txt``, ``trainlist0N.txt``, ``testlist0N.txt``) and ``hmdb51``
reads ``testTrainMulti_7030_splits/{class}_test_split{N}.txt`` (1 train, 2 test, 0 unused).

Samples are ``(clip (3, T, H, W) float normalised, label, {"video": index, "view": view, "path": path})``. A video
that cannot be decoded raises ``VideoReadError`` naming it (``on_error="raise"``) or is logged, returned as None and
counted by ``glore.data.collate`` (``on_error="skip"``).
"""

from __future__ import annotations

import csv
import logging
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ._base import check_on_error, check_split
from .transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "END_SLACK",
    "VIDEO_EXTENSIONS",
    "HMDB51",
    "Kinetics",
    "UCF101",
    "VideoDataset",
    "VideoFolder",
    "VideoReadError",
    "clip_starts",
    "read_frames",
    "sample_indices",
    "video_info",
]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov")
_LOG = logging.getLogger(__name__)
_SPLITS = {"train": "train", "val": "val", "validate": "val", "test": "test"}


class VideoReadError(OSError):
    """A video could not be opened or decoded, or has too few frames; the message names the file."""


def video_info(path: str | os.PathLike[str]) -> tuple[int, float]:
    """``(number of frames, frames per second)`` of a video's first video stream.

    The frame count comes from the container when it records one, else from the duration times the rate.

    Raises:
        VideoReadError: the file cannot be opened or has no video stream.
    """
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path}: no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
            frames = int(stream.frames or 0)
            if frames <= 0:
                duration = stream.duration * stream.time_base if stream.duration else container.duration / 1e6
                frames = int(round(float(duration or 0) * fps))
    except VideoReadError:
        raise
    except (av.FFmpegError, OSError, ValueError, TypeError) as error:
        raise VideoReadError(f"{path}: cannot be opened ({type(error).__name__}: {error})") from error
    if frames <= 0:
        raise VideoReadError(f"{path}: no frames")
    return frames, fps


END_SLACK = 3
"""How many frames a video may end before the frame count its container records (or its duration suggests) and
still be read: a wanted index up to this far past the last decoded frame reads as the last frame. Containers often
count a frame or two that do not decode; a file that ends earlier is truncated, and unreadable."""


def _decode(path: str, wanted: list[int], allow_seek: bool, threads: int) -> tuple[dict[int, np.ndarray], bool]:
    """Decode the frames shown at the times of ``wanted`` (sorted, unique indices): for each, the last frame whose
    index (timestamp times frame rate, rounded) is at or before it, so decoding stops one frame after the last one
    wanted (or at the end of the stream).

    Returns:
        The frames found by wanted index, and whether a seek landed after the first wanted frame (nothing found).
    """
    import av

    found: dict[int, np.ndarray] = {}
    pending = wanted[::-1]  # pending[-1]: the next wanted index
    with av.open(path) as container:
        if not container.streams.video:
            raise VideoReadError(f"{path}: no video stream")
        stream = container.streams.video[0]
        if threads == 0:
            stream.thread_type = "AUTO"  # frame and slice threads, as many as FFmpeg sees fit
        else:
            stream.thread_count = threads
        fps = float(stream.average_rate or stream.guessed_rate or 25.0)
        base = float(stream.time_base or 0) or 1.0 / fps
        start_pts = stream.start_time or 0
        seek = allow_seek and wanted[0] > 2 * fps
        if seek:  # jump to the key frame before the first frame needed
            container.seek(start_pts + int(wanted[0] / fps / base), stream=stream, backward=True, any_frame=False)
        last: Any = None  # the last decoded frame, converted to RGB once, when first needed
        last_rgb: np.ndarray | None = None
        last_index = -1

        def shown() -> np.ndarray:
            nonlocal last_rgb
            if last_rgb is None:
                last_rgb = last.to_ndarray(format="rgb24")
            return last_rgb

        for frame in container.decode(stream):
            index = last_index + 1 if frame.pts is None else int(round((frame.pts - start_pts) * base * fps))
            if pending and pending[-1] < index:
                if last is None:
                    if seek:
                        return found, True
                    last, last_rgb = frame, None  # decoding from the start: nothing is shown before the first frame
                while pending and pending[-1] < index:  # the frame before this one is the last at or before them
                    found[pending.pop()] = shown()
            if not pending:
                break
            last, last_rgb, last_index = frame, None, max(index, last_index)
        while pending and last is not None and pending[-1] - last_index <= END_SLACK:  # the stream ended
            found[pending.pop()] = shown()
    return found, False


def read_frames(path: str | os.PathLike[str], indices: Sequence[int], *, threads: int = 0) -> np.ndarray:
    """Decode the frames ``indices`` (0-based, any order, repeats allowed) of a video as RGB.

    Frame ``i`` is the frame shown at time ``i / fps`` (``fps``: the stream's average rate, as in ``video_info``),
    to half a frame: the last frame whose index ``round(timestamp * fps)`` is at most ``i``, so a variable-rate video,
    or one with gaps in its timestamps, reads without holes (a constant-rate video: exactly its frame ``i``).

    Seeks to the key frame before the first frame needed (when that is over two seconds in) and stops one frame after
    the last one, so a short clip of a long video costs little; a seek that lands after the first frame needed (a
    broken index) falls back to decoding from the start. FFmpeg decodes with its own threads (``threads=0``:
    ``thread_type="AUTO"``); the container is always closed. Indices up to ``END_SLACK`` frames past the last
    decoded frame read as the last frame.

    Args:
        path: the video file.
        indices: frame indices.
        threads: decoding threads: 0 lets FFmpeg choose (frame and slice threads: lowest latency), 1 decodes in the
            calling thread (about a fifth less CPU per clip, measured: better when loader workers fill every core).

    Returns:
        uint8 array (len(indices), H, W, 3).

    Raises:
        ValueError: ``indices`` is empty or has a negative index.
        VideoReadError: the file cannot be opened or decoded, or ends before a needed frame.
    """
    import av

    wanted = sorted({int(i) for i in indices})
    if not wanted or wanted[0] < 0:
        raise ValueError(f"indices: expected non-negative frame indices, got {list(indices)[:8]}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ValueError(f"threads: expected an int >= 0 (0: FFmpeg chooses), got {threads!r}")
    try:
        found, overshot = _decode(str(path), wanted, allow_seek=True, threads=threads)
        if overshot:
            _LOG.debug("%s: seeking overshot frame %d; decoding from the start", path, wanted[0])
            found, _ = _decode(str(path), wanted, allow_seek=False, threads=threads)
    except VideoReadError:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError) as error:
        raise VideoReadError(f"{path}: cannot be decoded ({type(error).__name__}: {error})") from error
    missing = [i for i in wanted if i not in found]
    if missing:
        raise VideoReadError(f"{path}: frame {missing[0]} could not be decoded ({len(found)} of {len(wanted)} found)")
    return np.stack([found[int(i)] for i in indices])


def sample_indices(num_frames: int, num_samples: int, interval: int, start: int) -> list[int]:
    """``num_samples`` frame indices every ``interval`` frames from ``start``, wrapping around a short video."""
    if num_frames < 1:
        raise ValueError(f"num_frames: expected a positive count, got {num_frames}")
    return [(start + k * interval) % num_frames for k in range(num_samples)]


def clip_starts(num_frames: int, span: int, num_clips: int) -> list[int]:
    """First frames of ``num_clips`` clips of ``span`` frames spread evenly over the video (the centre of each
    of ``num_clips`` equal segments, as the Non-local test protocol does)."""
    room = max(num_frames - span, 0)
    return [int(round(room * (k + 0.5) / num_clips)) for k in range(num_clips)]


class VideoDataset(Dataset):
    """Videos with labels, sampled into clips.

    Args:
        videos: (path, label) pairs.
        classes: class names.
        train: random clips with augmentation (True) or ``num_clips`` x ``num_crops`` views of each video (False).
        num_frames: frames per clip (T).
        interval: frames between sampled frames (tau).
        num_clips: test: temporal clips per video.
        num_crops: test: spatial crops per clip (1: centre; 3: both ends and the centre of the long side).
        crop_size: side of the square crop.
        short_side: training: (min, max) of the random short side; test: the short side, an int.
        test_short_side: the short side at test.
        hflip: training: flip probability.
        mean: per-channel mean (of [0, 1] pixels).
        std: per-channel standard deviation.
        on_error: "raise" or "skip".
        min_frames: videos with fewer frames are unreadable (0: any length, short videos loop).
        transform: a callable applied to each normalised clip (3, T, H, W) after the built-in sampling and
            augmentation (e.g. extra augmentation); None for none.
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
        num_clips: int = 10,
        num_crops: int = 3,
        crop_size: int = 224,
        short_side: Sequence[int] = (256, 320),
        test_short_side: int = 256,
        hflip: float = 0.5,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        on_error: str = "raise",
        min_frames: int = 0,
        transform: Any = None,
        decode_threads: int = 0,
    ) -> None:
        for name, value in (("num_frames", num_frames), ("interval", interval), ("num_clips", num_clips)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if num_crops not in (1, 3):
            raise ValueError(f"num_crops: expected 1 (centre) or 3 (both ends and centre), got {num_crops!r}")
        if len(short_side) != 2 or not 0 < short_side[0] <= short_side[1] or short_side[0] < crop_size:
            raise ValueError(
                f"short_side: expected (min, max) with crop_size {crop_size} <= min <= max, got {short_side}"
            )
        if test_short_side < crop_size:
            raise ValueError(f"test_short_side: expected >= crop_size {crop_size}, got {test_short_side}")
        if not videos:
            raise ValueError("videos: the dataset is empty (no video files found for this split)")
        self.videos = [(str(p), int(y)) for p, y in videos]
        self.classes = list(classes)
        self.num_classes = len(self.classes)
        self.train = train
        self.num_frames, self.interval = num_frames, interval
        self.num_clips, self.num_crops = num_clips, num_crops
        self.crop_size, self.short_side, self.test_short_side = crop_size, tuple(short_side), test_short_side
        self.hflip = hflip
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1, 1)
        self.on_error = check_on_error(on_error)
        self.min_frames = min_frames
        self.transform = transform
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

    def __len__(self) -> int:
        return len(self.videos) * self.num_views

    def _frames(self, path: str, clip: int) -> np.ndarray:
        total, _ = video_info(path)
        if total < self.min_frames:
            raise VideoReadError(f"{path}: {total} frames, fewer than min_frames={self.min_frames}")
        span = (self.num_frames - 1) * self.interval + 1
        if self.train:
            start = random.randint(0, max(total - span, 0))
        else:
            start = clip_starts(total, span, self.num_clips)[clip]
        indices = sample_indices(total, self.num_frames, self.interval, start)
        return read_frames(path, indices, threads=self.decode_threads)

    def _transform(self, frames: np.ndarray, crop: int) -> torch.Tensor:
        """Resize the short side, crop ``crop_size``, flip and normalise.

        Done as one crop of the source frames followed by one resize of that crop (resize-then-crop up to
        interpolation at the crop's border and the rounding of the box), on uint8 pixels in channels-last memory
        (torch's fast path, a fifth of the float path's time), then one conversion to float in the (3, T, H, W)
        layout and an in-place normalisation. Random draws, in order: short side, crop corner, flip.
        """
        t, h, w, _ = frames.shape
        size = self.crop_size
        short = random.randint(self.short_side[0], self.short_side[1]) if self.train else self.test_short_side
        scale = short / min(h, w)
        box = min(max(int(round(size / scale)), 1), h, w)  # the source pixels that become the crop
        if self.train:
            y, x = random.randint(0, h - box), random.randint(0, w - box)
        elif self.num_crops == 1:
            y, x = (h - box) // 2, (w - box) // 2
        elif w >= h:  # three crops along the long side
            y, x = (h - box) // 2, [0, (w - box) // 2, w - box][crop]
        else:
            y, x = [0, (h - box) // 2, h - box][crop], (w - box) // 2
        region = torch.from_numpy(np.ascontiguousarray(frames[:, y : y + box, x : x + box]))  # (T, box, box, 3)
        clip = region.permute(0, 3, 1, 2)  # (T, box, box, 3) -> (T, 3, box, box), channels-last memory
        if box != size:
            clip = F.interpolate(clip, size=(size, size), mode="bilinear", align_corners=False, antialias=box > size)
        if self.train and random.random() < self.hflip:
            clip = clip.flip(-1)
        out = torch.empty((3, t, size, size), dtype=torch.float32)
        out.copy_(clip.permute(1, 0, 2, 3))  # (T, 3, H, W) -> (3, T, H, W), uint8 -> float
        return out.div_(255).sub_(self.mean).div_(self.std)

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
        clip = self._transform(frames, crop)
        if self.transform is not None:
            clip = self.transform(clip)
        return clip, label, {"video": video, "view": view, "path": path}


def _find_videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())


def _folder_layout(root: Path, split: str) -> tuple[list[tuple[str, int]], list[str]]:
    base = root / split
    classes = sorted(d.name for d in base.iterdir() if d.is_dir()) if base.is_dir() else []
    if not classes:
        raise FileNotFoundError(f"root: no class folders in {base} (expected {split}/<class>/*.mp4)")
    videos = [(str(p), k) for k, name in enumerate(classes) for p in _find_videos(base / name)]
    return videos, classes


def _csv_layout(root: Path, split: str, classes: Sequence[str] | None) -> tuple[list[tuple[str, int]], list[str]]:
    path = root / f"{split}.csv"
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    needed = {"label", "youtube_id", "time_start", "time_end"}
    if not rows or not needed <= set(rows[0]):
        raise ValueError(f"{path}: expected the columns label,youtube_id,time_start,time_end,split")
    names = sorted({r["label"] for r in rows}) if classes is None else list(classes)
    index = {name: k for k, name in enumerate(names)}
    files = {p.name: p for p in _find_videos(root / split)} if (root / split).is_dir() else {}
    videos = []
    for line, row in enumerate(rows, start=2):
        name = f"{row['youtube_id']}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}"
        found = next((files[name + ext] for ext in VIDEO_EXTENSIONS if name + ext in files), None)
        if found is None:
            continue  # Kinetics videos disappear from YouTube: a missing file is left out, counted below
        if row["label"] not in index:
            raise ValueError(f"{path}, line {line}: label {row['label']!r} is not one of the {len(names)} classes")
        videos.append((str(found), index[row["label"]]))
    if len(videos) < len(rows):
        _LOG.warning("%s: %d of %d annotated videos are not under %s", path, len(rows) - len(videos), len(rows), root)
    return videos, names


def _list_layout(root: Path, split: str) -> tuple[list[tuple[str, int]], list[str]]:
    path = root / f"{split}.txt"
    videos = []
    for line, text in enumerate(path.read_text().splitlines(), start=1):
        if not text.strip():
            continue
        parts = text.split()
        if len(parts) < 3 or not parts[1].isdigit():
            raise ValueError(f"{path}, line {line}: expected 'id label path', got {text!r}")
        videos.append((str(root / " ".join(parts[2:])), int(parts[1])))
    num = max((y for _, y in videos), default=-1) + 1
    return videos, [str(k) for k in range(num)]


class Kinetics(VideoDataset):
    """Kinetics (or any video classification set) in one of the layouts of the module docstring.

    Args:
        root: the dataset folder.
        split: "train", "val" or "test".
        layout: "auto", "folder", "csv" or "list".
        classes: class names in label order (default: sorted names found in the split; give the training split's
            for a validation split that lacks some classes).
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
        on_error: str = "raise",
        train: bool | None = None,
        **kwargs: Any,
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"root: {root} is not a folder")
        split = check_split(split, _SPLITS, "kinetics")
        if layout == "auto":
            has = {kind: (root / f"{split}.{kind}").is_file() for kind in ("csv", "txt")}
            layout = "csv" if has["csv"] else "list" if has["txt"] else "folder"
        if layout == "csv":
            videos, names = _csv_layout(root, split, classes)
        elif layout == "list":
            videos, names = _list_layout(root, split)
        elif layout == "folder":
            videos, names = _folder_layout(root, split)
        else:
            raise ValueError(f"layout: expected 'auto', 'folder', 'csv' or 'list', got {layout!r}")
        if classes is not None and layout != "csv":
            names = list(classes)
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
    subclasses read their files in ``_read``."""

    name = ""

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        *,
        fold: int = 1,
        on_error: str = "raise",
        train: bool | None = None,
        **kwargs: Any,
    ) -> None:
        split = check_split(split, {"train": "train", "val": "test", "test": "test"}, self.name)
        if fold not in (1, 2, 3):
            raise ValueError(f"fold: expected 1, 2 or 3, got {fold!r}")
        videos, classes = self._read(Path(root), split, fold)
        train = split == "train" if train is None else train
        super().__init__(videos, classes, train=train, on_error=on_error, **kwargs)

    def _read(self, root: Path, split: str, fold: int) -> tuple[list[tuple[str, int]], list[str]]:
        raise NotImplementedError


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

    def _read(self, root: Path, split: str, fold: int) -> tuple[list[tuple[str, int]], list[str]]:
        lists = root / "ucfTrainTestlist"
        class_file = lists / "classInd.txt"
        if not class_file.is_file():
            raise FileNotFoundError(f"root: no {class_file} (expected the official ucfTrainTestlist folder)")
        classes = []
        for line, text in enumerate(class_file.read_text().splitlines(), start=1):
            if text.strip():
                parts = text.split()
                if len(parts) != 2 or not parts[0].isdigit():
                    raise ValueError(f"{class_file}, line {line}: expected 'index name', got {text!r}")
                classes.append(parts[1])
        index = {name: k for k, name in enumerate(classes)}
        video_root = root / "UCF-101" if (root / "UCF-101").is_dir() else root
        list_file = lists / f"{split}list0{fold}.txt"
        videos = []
        for line, text in enumerate(list_file.read_text().splitlines(), start=1):
            if not text.strip():
                continue
            relative = text.split()[0]
            name = relative.split("/")[0]
            if name not in index:
                raise ValueError(f"{list_file}, line {line}: class {name!r} is not in {class_file.name}")
            videos.append((str(video_root / relative), index[name]))
        return videos, classes


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

    def _read(self, root: Path, split: str, fold: int) -> tuple[list[tuple[str, int]], list[str]]:
        split_dir = next((d for d in (root / "testTrainMulti_7030_splits", root / "splits") if d.is_dir()), None)
        if split_dir is None:
            raise FileNotFoundError(f"root: no testTrainMulti_7030_splits/ (or splits/) folder in {root}")
        files = sorted(split_dir.glob(f"*_test_split{fold}.txt"))
        if not files:
            raise FileNotFoundError(f"{split_dir}: no *_test_split{fold}.txt files")
        classes = [f.name[: -len(f"_test_split{fold}.txt")] for f in files]
        video_root = root / "videos" if (root / "videos").is_dir() else root
        tag = "1" if split == "train" else "2"
        videos = []
        for k, (name, path) in enumerate(zip(classes, files, strict=True)):
            for line, text in enumerate(path.read_text().splitlines(), start=1):
                if not text.strip():
                    continue
                parts = text.split()
                if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                    raise ValueError(f"{path}, line {line}: expected 'video tag' with tag 0, 1 or 2, got {text!r}")
                if parts[1] == tag:
                    videos.append((str(video_root / name / parts[0]), k))
        return videos, classes
