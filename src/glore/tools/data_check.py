"""``glore data check ROOT``: find the videos of a dataset that cannot be decoded or are too short, before training.

The videos are those glore reads: with ``--dataset auto`` (the default) the UCF101 or HMDB51 split files, the Kinetics
CSV annotations or lists (``{split}.csv``, ``{split}.txt``, the official ``raw/list_cvt`` tree) when ROOT has them,
else every file with a video extension under ROOT (``--dataset files``). Each is opened and its first and last frames
decoded (``--full``: every frame), by several processes; the unreadable ones, those shorter than ``--min-frames``
(default: the span of a clip, ``(--num-frames - 1) * --interval + 1``) and one-frame videos are listed (one per line,
with the reason) and the command exits 1 when there is any, 0 when all are fine (2 for bad arguments or no videos).
A warning says when the clip's span is longer than every video. Training with ``data.on_error: skip`` leaves
unreadable videos out and counts them; this command says which they are.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

__all__ = ["add_arguments", "check_video", "dataset_videos", "decodable_frames", "probe_video", "run"]

DATASETS = ("auto", "files", "kinetics", "videofolder", "ucf101", "hmdb51")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``glore data``."""
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    check = sub.add_parser("check", help="list the videos under ROOT that cannot be decoded or are too short")
    check.add_argument("root", help="dataset folder: its split files, lists or CSVs, or every video file under it")
    check.add_argument(
        "--dataset",
        choices=DATASETS,
        default="auto",
        help="how to find the videos: auto (split files, lists or CSVs when ROOT has them, else files), files "
        "(every .mp4 .avi .mkv .webm .mov under ROOT) or a dataset name (default auto)",
    )
    check.add_argument("--split", action="append", help="a split to check (repeat; default: every split found)")
    check.add_argument("--fold", type=int, default=1, help="ucf101/hmdb51: the official split, 1-3 (default 1)")
    check.add_argument("--workers", type=int, default=2, help="processes that decode (default 2)")
    check.add_argument("--num-frames", type=int, default=8, help="frames of a clip (default 8)")
    check.add_argument("--interval", type=int, default=8, help="frames between a clip's frames (default 8)")
    check.add_argument(
        "--min-frames",
        type=int,
        default=None,
        help="videos with fewer frames are reported (default: the clip's span, (num_frames - 1) * interval + 1)",
    )
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


def probe_video(path: str, min_frames: int = 1, full: bool = False) -> tuple[int, str | None]:
    """``(frames, reason)``: the video's frame count (0 when it cannot be opened) and what is wrong with it, None
    when it decodes and has ``min_frames`` frames (see ``check_video``); a one-frame video is always reported."""
    from glore.data.video import END_SLACK, VideoReadError, read_frames, video_info

    frames = 0
    try:
        frames, _ = video_info(path)
        if frames == 1:
            return frames, "1 frame: a still image, not a video (every frame of every clip would be this one)"
        if frames < min_frames:
            return frames, f"{frames} frames, fewer than --min-frames {min_frames}"
        if full:
            decoded = decodable_frames(path)
            if decoded < frames - END_SLACK:
                return frames, f"only {decoded} of its {frames} frames decode"
        else:  # two reads: the last frame is reached by seeking, the middle is not decoded
            read_frames(path, [0])
            read_frames(path, [frames - 1])
    except VideoReadError as error:
        return frames, str(error).removeprefix(f"{path}: ")
    except Exception as error:  # noqa: BLE001 - a broken file may fail in any way; report it, keep scanning
        return frames, f"{type(error).__name__}: {error}"
    return frames, None


def check_video(path: str, min_frames: int = 1, full: bool = False) -> str | None:
    """``None`` when the video decodes and has ``min_frames`` frames, else the reason.

    Args:
        path: the video file.
        min_frames: the least number of frames (as the container records them) a usable video has; a one-frame
            video is reported whatever this is.
        full: decode every frame and require all but ``glore.data.video.END_SLACK`` of them, instead of decoding
            the first frame and the last one (reached by seeking in a video over two seconds long). A corrupt middle
            is found only with ``full``; in training it fails the clips that cross it, each handled per
            ``on_error``.
    """
    return probe_video(path, min_frames, full)[1]


def _auto_dataset(root: Path) -> str:
    if (root / "ucfTrainTestlist").is_dir():
        return "ucf101"
    if (root / "testTrainMulti_7030_splits").is_dir() or (root / "splits").is_dir():
        return "hmdb51"
    listed = any((root / f"{s}.{ext}").is_file() for s in ("train", "val", "test") for ext in ("csv", "txt"))
    return "kinetics" if listed or (root / "raw" / "list_cvt").is_dir() else "files"


def dataset_videos(
    root: str | Path, dataset: str = "auto", splits: list[str] | None = None, fold: int = 1
) -> tuple[str, list[str], list[str]]:
    """The videos glore reads from ``root``: ``(dataset, paths, notes)``.

    ``dataset`` ``"auto"`` picks ucf101, hmdb51 or kinetics by the files in ``root``, else ``"files"`` (every file
    with a video extension). For a dataset, ``paths`` is the union of the videos of ``splits`` (default: every split
    that exists; a split that cannot be read is left out with a note).

    Raises:
        ValueError: a split named in ``splits`` cannot be read (the dataset's one-line reason).
    """
    from glore.data import create_dataset
    from glore.data.video import VIDEO_EXTENSIONS

    root = Path(root)
    name = _auto_dataset(root) if dataset == "auto" else dataset
    if name == "files":
        paths = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
        return name, paths, []
    names = splits or (["train", "test"] if name in ("ucf101", "hmdb51") else ["train", "val", "test"])
    paths: dict[str, None] = {}
    notes = []
    for split in names:
        kwargs = {"fold": fold} if name in ("ucf101", "hmdb51") else {}
        try:
            data = create_dataset(name, root, split, **kwargs)
        except (OSError, ValueError) as error:
            if splits:
                raise ValueError(f"--split {split}: {error}") from None
            notes.append(f"{split}: not checked ({error})")
            continue
        paths.update(dict.fromkeys(data.video_names))
    return name, sorted(paths), notes


def run(args: argparse.Namespace) -> int:
    """Run ``glore data check``; returns the exit status (1 when some videos are bad, 2 for bad arguments)."""
    root = Path(args.root)
    if not root.is_dir():
        print(f"glore data check: ROOT {str(root)!r} is not a folder", file=sys.stderr)
        return 2
    counts = {"--workers": args.workers, "--num-frames": args.num_frames, "--interval": args.interval}
    if args.min_frames is not None:
        counts["--min-frames"] = args.min_frames
    for flag, value in counts.items():
        if value < 1:
            print(f"glore data check: {flag} expects a positive int, got {value}", file=sys.stderr)
            return 2
    span = (args.num_frames - 1) * args.interval + 1
    min_frames = span if args.min_frames is None else args.min_frames
    try:
        kind, paths, notes = dataset_videos(root, args.dataset, args.split, args.fold)
    except (OSError, ValueError) as error:
        print(f"glore data check: {error}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"glore data check: {note}", file=sys.stderr)
    if not paths:
        print(f"glore data check: no video files under {root} ({kind})", file=sys.stderr)
        return 2
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        n = len(paths)
        results = list(pool.map(probe_video, paths, [min_frames] * n, [args.full] * n, chunksize=8))
    bad = [(p, reason) for p, (_, reason) in zip(paths, results, strict=True) if reason is not None]
    for path, reason in bad:
        print(f"{path}: {reason}")
    longest = max(frames for frames, _ in results)
    if 0 < longest < span:
        print(
            f"glore data check: warning: a clip of --num-frames {args.num_frames} every --interval {args.interval} "
            f"spans {span} frames, longer than every video (the longest has {longest}): every clip is sampled as a "
            "short video (data.kwargs.short_video)",
            file=sys.stderr,
        )
    print(f"{len(paths) - len(bad)} of {len(paths)} videos readable, {len(bad)} bad", file=sys.stderr)
    return 1 if bad else 0
