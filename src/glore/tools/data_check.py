"""``glore data check ROOT``: find the videos of a dataset that cannot be decoded or are too short, before training.

Every file with a video extension under ROOT is opened and its first and last frames decoded (``--full``: every
frame), by several processes; the unreadable and too-short ones are listed (one per line, with the reason) and the
command exits 1 when there is any, 0 when all are readable (2 for bad arguments or no videos). Training with
``data.on_error: skip`` leaves such videos out and counts them; this command says which they are.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

__all__ = ["add_arguments", "check_video", "decodable_frames", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``glore data``."""
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    check = sub.add_parser("check", help="list the videos under ROOT that cannot be decoded or are too short")
    check.add_argument("root", help="dataset folder, searched recursively for .mp4 .avi .mkv .webm .mov files")
    check.add_argument("--workers", type=int, default=2, help="processes that decode (default 2)")
    check.add_argument("--min-frames", type=int, default=1, help="videos with fewer frames are reported (default 1)")
    check.add_argument("--full", action="store_true", help="decode every frame (slow), not only the first and the last")


def decodable_frames(path: str) -> int:
    """How many frames of ``path``'s first video stream decode, reading the whole file.

    Raises:
        VideoReadError: the file cannot be opened, or decoding fails outright.
    """
    import av

    from glore.data.video import VideoReadError

    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            return sum(1 for _ in container.decode(stream))
    except (av.FFmpegError, OSError, ValueError) as error:
        raise VideoReadError(f"{path}: cannot be decoded ({type(error).__name__}: {error})") from error


def check_video(path: str, min_frames: int = 1, full: bool = False) -> str | None:
    """``None`` when the video decodes and has ``min_frames`` frames, else the reason.

    Args:
        path: the video file.
        min_frames: the least number of frames (as the container records them) a usable video has.
        full: decode every frame and require all but ``glore.data.video.END_SLACK`` of them, instead of decoding
            the first frame and the last one (reached by seeking in a video over two seconds long). A corrupt middle
            is found only with ``full``; in training it fails the clips that cross it, each handled per
            ``on_error``.
    """
    from glore.data.video import END_SLACK, VideoReadError, read_frames, video_info

    try:
        frames, _ = video_info(path)
        if frames < min_frames:
            return f"{frames} frames, fewer than --min-frames {min_frames}"
        if full:
            decoded = decodable_frames(path)
            if decoded < frames - END_SLACK:
                return f"only {decoded} of its {frames} frames decode"
        else:  # two reads: the last frame is reached by seeking, the middle is not decoded
            read_frames(path, [0])
            read_frames(path, [frames - 1])
    except VideoReadError as error:
        return str(error).removeprefix(f"{path}: ")
    except Exception as error:  # noqa: BLE001 - a broken file may fail in any way; report it, keep scanning
        return f"{type(error).__name__}: {error}"
    return None


def run(args: argparse.Namespace) -> int:
    """Run ``glore data check``; returns the exit status (1 when some videos are bad, 2 for bad arguments)."""
    from glore.data.video import VIDEO_EXTENSIONS

    root = Path(args.root)
    if not root.is_dir():
        print(f"glore data check: ROOT {str(root)!r} is not a folder", file=sys.stderr)
        return 2
    if args.workers < 1 or args.min_frames < 1:
        print("glore data check: --workers and --min-frames expect positive ints", file=sys.stderr)
        return 2
    paths = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
    if not paths:
        print(f"glore data check: no video files under {root}", file=sys.stderr)
        return 2
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        n = len(paths)
        reasons = list(pool.map(check_video, paths, [args.min_frames] * n, [args.full] * n, chunksize=8))
    bad = [(p, r) for p, r in zip(paths, reasons, strict=True) if r is not None]
    for path, reason in bad:
        print(f"{path}: {reason}")
    print(f"{len(paths) - len(bad)} of {len(paths)} videos readable, {len(bad)} bad", file=sys.stderr)
    return 1 if bad else 0
