"""Video datasets: Kinetics in the layouts people have, UCF101 and HMDB51 split files, decoding with PyAV, clip
sampling and clip transforms, one module a concern: ``decoding`` (PyAV), ``sampling`` (which frames),
``layouts`` (which files and labels), ``datasets`` (the classes); the clip transforms are
``glore.data.transforms.video``. Everything is re-exported here.

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

from ..transforms.functional import hls_jitter
from ..transforms.video import OFFICIAL_AUGMENT, OFFICIAL_MEAN, OFFICIAL_STD, official_resize_shape
from .datasets import HMDB51, UCF101, Kinetics, VideoDataset, VideoFolder
from .decoding import END_SLACK, VideoReadError, read_frames, video_info
from .layouts import VIDEO_EXTENSIONS, read_class_file
from .sampling import PROTOCOLS, SHORT_VIDEO, clip_starts, sample_indices

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
    "official_resize_shape",
    "read_class_file",
    "read_frames",
    "sample_indices",
    "video_info",
]
