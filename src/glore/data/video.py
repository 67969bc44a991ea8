"""Video datasets: Kinetics in the layouts people have, UCF101 and HMDB51 split files, decoding with PyAV, clip
sampling and clip transforms.

Decoding (``read_frames``) opens a file with PyAV (FFmpeg inside the wheel), seeks to the key frame before the first
frame needed, decodes with FFmpeg's own threads and stops at the last frame needed; the container is always closed.

Sampling follows the official GloRe and Non-local recipes: T frames every ``interval`` frames (8 x 8 by default),
from a random position in training; at test, ``num_clips`` clips evenly spaced over the video times
``num_crops`` spatial crops. A video shorter than the span is sampled as ``short_video`` says: ``"official"``
(consecutive frames 0, 1, 2, ... wrapping around, as the official sampler), ``"loop"`` (every ``interval`` frames,
wrapping around) or ``"pad"`` (every ``interval`` frames, the last frame repeated, as SlowFast).

Test protocols by name (``protocol``): ``"single_clip"``, the official test (one centre clip, one centre crop), and
``"multi_view"``, 10 clips x 3 crops (both ends and the centre of the long side).

Preprocessing presets (``preprocess``): ``"glore"`` (crop then resize with antialiasing, ImageNet mean/std) and
``"official"``, the official code's (the whole frame resized to the short side with plain bilinear interpolation, then
cropped; MXNet's mean and std, ``OFFICIAL_MEAN``/``OFFICIAL_STD``) for the official networks and their converted
checkpoints. Training augmentation (``augment``): ``"glore"`` (short side drawn from ``short_side``, random crop,
flip) or ``"official"`` (aspect jitter, short side, random crop, flip, HLS and pixel jitter: ``OFFICIAL_AUGMENT``).

Layouts (``layout="auto"`` picks by what is in ``root``):

- ``folder``: ``root/{split}/{class}/*.mp4`` (also .avi, .mkv, .webm, .mov);
- ``csv``: the official Kinetics annotations ``root/{split}.csv`` (``label,youtube_id,time_start,time_end,split``)
  with the videos ``{youtube_id}_{start:06}_{end:06}.mp4`` anywhere under ``root/{split}/``;
- ``list``: lines ``id label path``: ``root/{split}.txt`` with paths relative to ``root``, or any ``list_file`` with
  paths relative to ``video_root`` (both may contain ``{split}``), class names from ``class_file`` (lines ``index
  name``); the official GloRe tree ``root/raw/list_cvt/kinetics_{split}[_avi].txt`` + ``mapping_table.txt`` with the
  videos in ``root/raw/data/{split}_avi-288p/`` (or ``{split}/``) is found by itself.

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
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ._base import check_on_error, check_split
from .transforms.functional import hls_jitter, randint
from .transforms.video import OFFICIAL_AUGMENT, OFFICIAL_MEAN, OFFICIAL_STD, build_video_transform

__all__ = [
    "END_SLACK",
    "OFFICIAL_AUGMENT",
    "OFFICIAL_MEAN",
    "OFFICIAL_STD",
    "PROTOCOLS",
    "SHORT_VIDEO",
    "VIDEO_EXTENSIONS",
    "HMDB51",
    "Kinetics",
    "UCF101",
    "VideoDataset",
    "VideoFolder",
    "VideoReadError",
    "clip_starts",
    "hls_jitter",
    "read_class_file",
    "read_frames",
    "sample_indices",
    "video_info",
]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov")
_LOG = logging.getLogger(__name__)
_STILLS: set[str] = set()  # one-frame videos already reported by this process
_SPLITS = {"train": "train", "val": "val", "validate": "val", "test": "test"}

SHORT_VIDEO = ("official", "loop", "pad")
"""How a video shorter than a clip's span is sampled (see ``sample_indices``)."""
PROTOCOLS: dict[str, tuple[int, int]] = {"single_clip": (1, 1), "multi_view": (10, 3)}
"""Test protocols: (clips, crops) per video. ``single_clip`` is the official test (``test/test-single-clip.py``)."""


class VideoReadError(OSError):
    """A video could not be opened or decoded, or has too few frames; the message names the file."""


def video_info(path: str | os.PathLike[str]) -> tuple[int, float]:
    """``(number of frames, frames per second)`` of a video's first video stream.

    The frame count comes from the container when it records one, else from the duration times the rate.

    Raises:
        VideoReadError: the file cannot be opened, has no video stream or is an image (JPEG, PNG, ...).
    """
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path}: no video stream")
            kind = container.format.name
            if kind == "image2" or kind.endswith("_pipe"):  # FFmpeg's image readers: one still picture
                raise VideoReadError(f"{path}: an image ({kind.removesuffix('_pipe')}), not a video")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
            frames = int(stream.frames or 0)
            if frames <= 0:
                duration = stream.duration * stream.time_base if stream.duration else (container.duration or 0) / 1e6
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


def sample_indices(
    num_frames: int, num_samples: int, interval: int, start: int, *, short_video: str = "loop"
) -> list[int]:
    """``num_samples`` frame indices every ``interval`` frames from ``start``.

    When the clip runs past the end (a video shorter than the span ``(num_samples - 1) * interval + 1``),
    ``short_video`` says what to take: ``"official"`` the consecutive frames 0, 1, 2, ... wrapping around (the official
    samplers' ``(list(range(num_frames)) * num_samples)[:num_samples]``), ``"loop"`` every ``interval`` frames wrapping
    around, ``"pad"`` every ``interval`` frames with the last frame repeated (SlowFast).

    Raises:
        ValueError: ``num_frames`` is not positive, or ``short_video`` is not one of ``SHORT_VIDEO``.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames: expected a positive count, got {num_frames}")
    if short_video not in SHORT_VIDEO:
        raise ValueError(f"short_video: expected one of {', '.join(SHORT_VIDEO)}, got {short_video!r}")
    if start + (num_samples - 1) * interval < num_frames:
        return [start + k * interval for k in range(num_samples)]
    if short_video == "official":
        return [k % num_frames for k in range(num_samples)]
    if short_video == "pad":
        return [min(start + k * interval, num_frames - 1) for k in range(num_samples)]
    return [(start + k * interval) % num_frames for k in range(num_samples)]


def clip_starts(num_frames: int, span: int, num_clips: int) -> list[int]:
    """First frames of ``num_clips`` clips of ``span`` frames spread evenly over the video (the centre of each
    of ``num_clips`` equal segments, as the Non-local test protocol does), rounded half up: one clip starts at
    ceil((num_frames - span) / 2), the official single-clip test's start."""
    room = max(num_frames - span, 0)
    return [math.floor(room * (k + 0.5) / num_clips + 0.5) for k in range(num_clips)]


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


def _find_videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())


def _class_index(classes: Sequence[str]) -> dict[str, int]:
    return {name: k for k, name in enumerate(classes)}


def _warn_missing_classes(where: object, split: str, classes: Sequence[str], labels: set[int]) -> None:
    missing = [name for k, name in enumerate(classes) if k not in labels]
    if missing:
        _LOG.warning(
            "%s: %d of the %d classes have no video in the %r split (first: %s)",
            where,
            len(missing),
            len(classes),
            split,
            ", ".join(missing[:3]),
        )


def _folder_layout(root: Path, split: str, classes: Sequence[str] | None) -> tuple[list[tuple[str, int]], list[str]]:
    base = root / split
    found = sorted(d.name for d in base.iterdir() if d.is_dir()) if base.is_dir() else []
    if not found:
        raise FileNotFoundError(f"root: no class folders in {base} (expected {split}/<class>/*.mp4)")
    names = found if classes is None else list(classes)
    index = _class_index(names)
    extra = [name for name in found if name not in index]
    if extra:
        raise ValueError(
            f"classes: {base} has the class folder {extra[0]!r}, which is not one of the {len(names)} classes "
            f"of the training split ({len(extra)} such folders)"
        )
    videos = [(str(p), index[name]) for name in found for p in _find_videos(base / name)]
    if classes is not None:
        _warn_missing_classes(base, split, names, {y for _, y in videos})
    return videos, names


def _csv_layout(root: Path, split: str, classes: Sequence[str] | None) -> tuple[list[tuple[str, int]], list[str]]:
    path = root / f"{split}.csv"
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    needed = {"label", "youtube_id", "time_start", "time_end"}
    if not rows or not needed <= set(rows[0]):
        raise ValueError(f"{path}: expected the columns label,youtube_id,time_start,time_end,split")
    names = sorted({r["label"] for r in rows}) if classes is None else list(classes)
    index = _class_index(names)
    for line, row in enumerate(rows, start=2):  # every row, downloaded or not: the class sets must agree
        if row["label"] not in index:
            raise ValueError(
                f"{path}, line {line}: label {row['label']!r} is not one of the {len(names)} classes of the "
                "training split"
            )
    files = {p.name: p for p in _find_videos(root / split)} if (root / split).is_dir() else {}
    videos = []
    for row in rows:
        name = f"{row['youtube_id']}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}"
        found = next((files[name + ext] for ext in VIDEO_EXTENSIONS if name + ext in files), None)
        if found is None:
            continue  # Kinetics videos disappear from YouTube: a missing file is left out, counted below
        videos.append((str(found), index[row["label"]]))
    if len(videos) < len(rows):
        _LOG.warning("%s: %d of %d annotated videos are not under %s", path, len(rows) - len(videos), len(rows), root)
    if classes is not None:
        _warn_missing_classes(path, split, names, {index[r["label"]] for r in rows})
    return videos, names


def read_class_file(path: str | os.PathLike[str]) -> list[str]:
    """Class names from a file of lines ``index name`` (tab or spaces; the official ``mapping_table.txt`` counts
    from 0, UCF101's ``classInd.txt`` from 1), in index order.

    Raises:
        ValueError: a line is not ``index name``, or the indices are not consecutive from 0 or 1.
    """
    path = Path(path)
    entries = []
    for line, text in enumerate(path.read_text().splitlines(), start=1):
        if not text.strip():
            continue
        parts = text.split(maxsplit=1)
        if len(parts) != 2 or not parts[0].isdigit():
            raise ValueError(f"{path}, line {line}: expected 'index name', got {text!r}")
        entries.append((int(parts[0]), parts[1].strip()))
    indices = [k for k, _ in entries]
    first = min(indices, default=0)
    if first not in (0, 1) or sorted(indices) != list(range(first, first + len(entries))):
        raise ValueError(f"{path}: expected the indices 0..N-1 (or 1..N), each once")
    return [name for _, name in sorted(entries)]


_OFFICIAL_LISTS = "raw/list_cvt"


def _official_list(root: Path, split: str) -> tuple[Path, Path]:
    """The list and video folder of ``split`` in the official GloRe tree (``raw/list_cvt``, ``raw/data``)."""
    lists, data = root / _OFFICIAL_LISTS, root / "raw" / "data"
    candidates = [
        (f"kinetics_{split}_avi.txt", f"{split}_avi-288p"),
        (f"kinetics_{split}_avi.txt", split),
        (f"kinetics_{split}.txt", split),
    ]
    for name, folder in candidates:
        if (lists / name).is_file() and (data / folder).is_dir():
            return lists / name, data / folder
    raise FileNotFoundError(
        f"root: {lists} has no kinetics_{split}_avi.txt or kinetics_{split}.txt whose videos are in "
        f"{data}/{split}_avi-288p or {data}/{split}; name them with list_file and video_root"
    )


def _list_layout(
    root: Path,
    split: str,
    classes: Sequence[str] | None,
    list_file: str | None,
    video_root: str | None,
    class_file: str | None,
) -> tuple[list[tuple[str, int]], list[str]]:
    if list_file is None and not (root / f"{split}.txt").is_file() and (root / _OFFICIAL_LISTS).is_dir():
        path, base = _official_list(root, split)
    else:
        path = root / (list_file.format(split=split) if list_file else f"{split}.txt")
        base = root / video_root.format(split=split) if video_root else root
    if not path.is_file():
        raise FileNotFoundError(f"list_file: no list {path} for the {split!r} split")
    if not base.is_dir():
        raise FileNotFoundError(f"video_root: {base} is not a folder")
    mapping = root / class_file if class_file else path.with_name("mapping_table.txt")
    if class_file and not mapping.is_file():
        raise FileNotFoundError(f"class_file: no file {mapping}")
    table = read_class_file(mapping) if mapping.is_file() else None
    if table is not None and classes is not None and list(classes) != table:
        raise ValueError(f"classes: {mapping} names other classes than the training split's")
    listed = []
    for line, text in enumerate(path.read_text().splitlines(), start=1):
        if not text.strip():
            continue
        parts = text.split(maxsplit=2)
        if len(parts) < 3 or not parts[1].lstrip("-").isdigit():
            raise ValueError(f"{path}, line {line}: expected 'id label path', got {text!r}")
        listed.append((line, int(parts[1]), parts[2].strip()))
    names = table if table is not None else list(classes) if classes is not None else None
    if names is None:
        names = [str(k) for k in range(max((y for _, y, _ in listed), default=-1) + 1)]
    for line, label, _ in listed:
        if not 0 <= label < len(names):
            raise ValueError(
                f"{path}, line {line}: label {label} is not a class index 0..{len(names) - 1}"
                + (" (the official test list has no labels)" if label < 0 else "")
            )
    videos = [(str(base / rel), label) for _, label, rel in listed if (base / rel).is_file()]
    if len(videos) < len(listed):
        _LOG.warning("%s: %d of %d listed videos are not under %s", path, len(listed) - len(videos), len(listed), base)
    if classes is not None or table is not None:
        _warn_missing_classes(path, split, names, {y for _, y, _ in listed})
    return videos, names


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
            elif list_file or (root / f"{split}.txt").is_file() or (root / _OFFICIAL_LISTS).is_dir():
                layout = "list"
            else:
                layout = "folder"
        if layout != "list" and (list_file or video_root or class_file):
            raise ValueError(f"list_file, video_root and class_file belong to layout 'list', not {layout!r}")
        if layout == "csv":
            videos, names = _csv_layout(root, split, classes)
        elif layout == "list":
            videos, names = _list_layout(root, split, classes, list_file, video_root, class_file)
        elif layout == "folder":
            videos, names = _folder_layout(root, split, classes)
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
