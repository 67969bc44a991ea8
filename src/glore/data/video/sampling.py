"""Which frames a clip takes: ``sample_indices`` (T frames every ``interval`` from a start; short videos per
``short_video``), ``clip_starts`` (test clips spread over a video) and the test ``PROTOCOLS``."""

from __future__ import annotations

import math

__all__ = ["PROTOCOLS", "SHORT_VIDEO", "clip_starts", "sample_indices"]

SHORT_VIDEO = ("official", "loop", "pad")
"""How a video shorter than a clip's span is sampled (see ``sample_indices``)."""
PROTOCOLS: dict[str, tuple[int, int]] = {"single_clip": (1, 1), "multi_view": (10, 3)}
"""Test protocols: (clips, crops) per video. ``single_clip`` is the official test (``test/test-single-clip.py``)."""


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
