"""Decoders compared: glore's PyAV ``read_frames`` against torchcodec's ``VideoDecoder``, on the same clips.

    python benchmarks/bench_decoders.py [--clips 40] [--repeats 5]

Needs torchcodec, which glore does not depend on: its wheel ships no FFmpeg and loads the system's libavcodec (Debian:
``apt-get install libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 libavdevice59 libavfilter8``),
and each release loads beside one torch release only. Without a torchcodec that loads, the script says so in one
line and exits 0.

Writes three videos to a temporary folder (``write_video`` of ``bench_video_data``: a textured background panning
3 px a frame, a moving square, light noise, so that every frame differs from its neighbours):
- ``tests``: 48x64 MPEG-4, 10 fps, a key frame every 10, 80 frames (the size, rate and key frames of the videos
  glore's tests generate);
- ``mpeg4``: 320x240 MPEG-4, 30 fps, a key frame every 30, 300 frames (``bench_video_data``'s video);
- ``x264``: 320x240 H.264 (libx264, B-frames), 30 fps, a key frame every 250 (x264's default), 300 frames.

On each it draws ``--clips`` training clips (8 frames every 8 from a random start; the start wraps on the ``tests``
video, as glore's ``loop`` sampling) and decodes each clip's frame indices, opening the file per clip as a
DataLoader worker does, with one thread (torch and FFmpeg), by:
- ``pyav``: ``glore.data.video.read_frames(path, indices, threads=1)``;
- ``tc exact``: ``VideoDecoder(path, seek_mode="exact", num_ffmpeg_threads=1).get_frames_at(indices)``
  (torchcodec scans the whole file on opening to index every frame);
- ``tc approx``: the same with ``seek_mode="approximate"`` (frame times from the header's rate, no scan).

Seek accuracy: each decoded frame is compared with a sequential decode of the whole video by PyAV (every frame, in
order, no seeking): ``exact`` counts frames equal to the requested frame pixel for pixel, ``nearest`` counts frames
whose closest sequential frame (mean absolute difference) is the requested one (a colour conversion that differs
by a level or two still finds its frame; a seek that lands on the wrong frame does not). ``max diff`` is the largest
pixel difference from the requested frame. Speed: the median over ``--repeats`` rounds of the wall-clock and CPU
time of all clips, the decoders interleaved in each round (each first in turn), so that a loaded machine slows each
alike; the ratio ``vs pyav`` of clips/s is read within this one run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_video_data import write_video  # noqa: E402

VIDEOS = {  # name: (frames, fps, (height, width), codec, frames between key frames)
    "tests": (80, 10, (48, 64), "mpeg4", 10),
    "mpeg4": (300, 30, (240, 320), "mpeg4", 30),
    "x264": (300, 30, (240, 320), "libx264", 250),
}


def load_torchcodec() -> tuple[type | None, str]:
    """torchcodec's ``VideoDecoder`` and its version, or ``(None, why it does not load)``."""
    try:
        import torchcodec
        from torchcodec.decoders import VideoDecoder
    except ImportError as error:
        return None, f"not installed ({error})"
    except (OSError, RuntimeError) as error:  # its libraries, or the system's FFmpeg, fail to load
        return None, f"does not load ({' '.join(str(error).split())[:200]})"
    return VideoDecoder, torchcodec.__version__


def sequential_frames(path: Path) -> np.ndarray:
    """Every frame of a video, in order, decoded by PyAV without seeking: uint8 (N, H, W, 3)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(stream)])


def clip_indices(total: int, clips: int, rng: random.Random) -> list[list[int]]:
    """``clips`` training clips of 8 frames every 8 from random starts, wrapping around a video shorter than 57."""
    span = 8 * 7 + 1
    starts = [rng.randrange(max(total - span + 1, 1)) for _ in range(clips)]
    return [[(start + 8 * t) % total for t in range(8)] for start in starts]


def accuracy(frames: np.ndarray, indices: list[int], reference: np.ndarray) -> tuple[int, int, int]:
    """``(exact, nearest, max diff)`` of decoded ``frames`` (T, H, W, 3) against the sequential ``reference``."""
    exact = nearest = worst = 0
    flat = reference.reshape(len(reference), -1).astype(np.int16)  # (N, H, W, 3) -> (N, H*W*3)
    for frame, index in zip(frames, indices, strict=True):
        diff = np.abs(frame.astype(np.int16) - reference[index]).max()
        worst = max(worst, int(diff))
        exact += int(diff == 0)
        distance = np.abs(flat - frame.reshape(1, -1).astype(np.int16)).mean(axis=1)  # (N,)
        nearest += int(int(distance.argmin()) == index)
    return exact, nearest, worst


def rounds(decoders: dict[str, Callable[[list[int]], np.ndarray]], clips: list[list[int]], repeats: int):
    """Median (wall, CPU) seconds per clip of each decoder over ``repeats`` interleaved rounds of all ``clips``."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in decoders}
    for decode in decoders.values():  # warm-up: libraries loaded, files in the page cache
        decode(clips[0])
    names = list(decoders)
    for round_ in range(repeats):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:  # each decoder first in turn
            decode = decoders[name]
            start, start_cpu = time.perf_counter(), time.process_time()
            for indices in clips:
                decode(indices)
            times[name].append(
                ((time.perf_counter() - start) / len(clips), (time.process_time() - start_cpu) / len(clips))
            )
    return {
        name: (statistics.median(t[0] for t in values), statistics.median(t[1] for t in values))
        for name, values in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=40, help="clips drawn on each video")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds over all clips")
    args = parser.parse_args()

    VideoDecoder, version = load_torchcodec()
    if VideoDecoder is None:
        print(f"bench_decoders: torchcodec {version}; only PyAV is here, nothing to compare")
        return

    import av

    from glore.data.video import read_frames

    torch.set_num_threads(1)  # as in a DataLoader worker
    print(
        f"torchcodec {version} (system FFmpeg, libavcodec {'.'.join(map(str, _system_libavcodec()))}), "
        f"PyAV {av.__version__} (its own FFmpeg, libavcodec {av.library_versions['libavcodec']}), torch "
        f"{torch.__version__}; 8x8 clips, one thread, the file opened per clip"
    )

    def tc(path: Path, mode: str) -> Callable[[list[int]], np.ndarray]:
        def decode(indices: list[int]) -> np.ndarray:
            decoder = VideoDecoder(
                str(path), seek_mode=mode, num_ffmpeg_threads=1, device="cpu", dimension_order="NHWC"
            )
            return decoder.get_frames_at(indices).data.numpy()

        return decode

    header = f"{'video':6s} {'decoder':10s} {'ms/clip':>8s} {'clips/s':>8s} {'CPU ms':>7s} {'vs pyav':>8s}"
    print(f"{header} {'exact':>9s} {'nearest':>9s} {'max diff':>8s}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (frames, fps, size, codec, gop) in VIDEOS.items():
            path = Path(tmp) / f"{name}.mp4"
            write_video(path, frames, fps=fps, size=size, codec=codec, gop=gop)
            reference = sequential_frames(path)
            clips = clip_indices(len(reference), args.clips, random.Random(0))
            decoders = {
                "pyav": partial(read_frames, path, threads=1),
                "tc exact": tc(path, "exact"),
                "tc approx": tc(path, "approximate"),
            }
            results = {}
            for decoder, decode in decoders.items():
                counts = np.zeros(3, dtype=np.int64)
                for indices in clips:
                    exact, nearest, worst = accuracy(decode(indices), indices, reference)
                    counts += (exact, nearest, 0)
                    counts[2] = max(counts[2], worst)
                results[decoder] = counts
            speed = rounds(decoders, clips, args.repeats)
            wanted = 8 * len(clips)
            for decoder, (wall, cpu) in speed.items():
                exact, nearest, worst = results[decoder]
                print(
                    f"{name:6s} {decoder:10s} {wall * 1e3:8.2f} {1 / wall:8.1f} {cpu * 1e3:7.2f} "
                    f"{speed['pyav'][0] / wall:7.2f}x {exact:4d}/{wanted:<4d} {nearest:4d}/{wanted:<4d} {worst:8d}"
                )


def _system_libavcodec() -> tuple[int, int, int]:
    """The version of the libavcodec that torchcodec loaded (the newest ``libavcodec.so.N`` the system has)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("avcodec")
    if name is None:
        return (0, 0, 0)
    packed = ctypes.CDLL(name).avcodec_version()
    return (packed >> 16, (packed >> 8) & 0xFF, packed & 0xFF)


if __name__ == "__main__":
    main()
