"""Decoding video files with PyAV (FFmpeg inside the wheel): ``video_info`` and ``read_frames``.

``read_frames`` seeks to the key frame before the first frame needed, decodes with FFmpeg's own threads and stops at
the last frame needed; the container is always closed. A file that cannot be read raises ``VideoReadError``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["END_SLACK", "VideoReadError", "read_frames", "video_info"]

_LOG = logging.getLogger("glore.data.video")


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
