"""Video loading against the model: decoded + augmented clips/s of one loader worker, and the training step of a
3D network on the same machine, measured in one run.

    python benchmarks/bench_video_data.py [--frames 300] [--model resnet50_3d] [--size 224] [--repeats 5]

Writes a 320x240, 30 fps MPEG-4 video (10 s) to a temporary folder, then times, in this process:
- ``decode``: ``read_frames`` of one training clip (8 frames every 8 from a random start), with FFmpeg's threads
  (the default) and with one thread (``decode_threads=1``);
- ``clip``: a whole training sample of ``glore.data.video.Kinetics`` (decode, short-side jitter 256-320, random 224
  crop, flip, normalisation), i.e. what one DataLoader worker produces (timed with one torch thread, as in a worker);
- ``view``: one test view (one of 10 clips x 3 crops, short side 256);
- ``step``: a forward + backward + SGD step of the model (R50 + the five official GloRe units) on a batch of one
  8 x 224 x 224 clip.
Each is the median over the repeats of wall-clock time and of this process's CPU time (all its threads: FFmpeg
decodes with several), so "clips/s per core" holds when all of a machine's cores are busy. It prints clips/s per
worker, the step's clips/s, and their ratio: the number of workers that keep this machine's model step fed. For
another device, divide its training clips/s by the clips/s per worker.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def write_video(
    path: Path, frames: int, fps: int = 30, size: tuple[int, int] = (240, 320), codec: str = "mpeg4", gop: int = 30
) -> None:
    """A camera-like video: a smooth textured background panning 3 px a frame, a square crossing it, light noise
    (random noise alone would be a worst case no real video is, at many times a real video's bit rate). MPEG-4 at
    1 Mbit/s; libx264 at its default quality (CRF 23)."""
    import av

    rng = np.random.default_rng(0)
    h, w = size
    coarse = torch.from_numpy(rng.integers(0, 256, (1, 3, h // 16, w // 8), dtype=np.uint8)).float()
    texture = torch.nn.functional.interpolate(coarse, size=(h, 2 * w), mode="bicubic", align_corners=False)
    texture = texture.clamp(0, 255)[0].permute(1, 2, 0).numpy()  # (1, 3, H, 2W) -> (H, 2W, 3)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        if codec == "mpeg4":
            stream.bit_rate = 1_000_000
        for i in range(frames):
            shift = (3 * i) % w
            image = texture[:, shift : shift + w].copy()
            y, x = (2 * i) % (h - 40), (5 * i) % (w - 40)
            image[y : y + 40, x : x + 40] = (230, 200, 40)
            image = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median wall-clock and CPU seconds of ``fn()`` over ``repeats`` calls (after one warm-up call)."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=300, help="frames of the generated video (30 fps)")
    parser.add_argument("--model", default="resnet50_3d", help="the network whose training step is timed")
    parser.add_argument("--size", type=int, default=224, help="crop side")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--codec", default="mpeg4", help="encoder of the generated video (mpeg4, libx264)")
    parser.add_argument("--gop", type=int, default=30, help="frames between key frames (x264's default is 250)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads for the model step (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from glore.data.video import Kinetics, read_frames, sample_indices, video_info
    from glore.models import create_model

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        video = root / "train" / "class0" / "clip.mp4"
        video.parent.mkdir(parents=True)
        write_video(video, args.frames, codec=args.codec, gop=args.gop)
        (root / "val").symlink_to(root / "train")
        total, fps = video_info(video)
        kbits = video.stat().st_size * 8 / 1000 / (total / fps)
        random.seed(0)

        def decode(threads: int = 0) -> None:
            start = random.randint(0, total - 57)
            read_frames(video, sample_indices(total, 8, 8, start), threads=threads)

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in a DataLoader worker, which torch runs with one thread
        data = Kinetics(root, "train", crop_size=args.size, short_side=(256, 320))
        views = Kinetics(root, "val", crop_size=args.size, test_short_side=256)  # 10 clips x 3 crops
        decode_s = timed(decode, args.repeats * 4)
        decode1_s = timed(lambda: decode(threads=1), args.repeats * 4)
        clip_s = timed(lambda: data[0], args.repeats * 4)
        view_s = timed(lambda: views[random.randrange(views.num_views)], args.repeats * 4)
        torch.set_num_threads(threads)

    model = create_model(args.model, num_classes=400, glore="res3:2,res4:3", glore_args={"normalize": False})
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(1, 3, 8, args.size, args.size)
    y = torch.zeros(1, dtype=torch.long)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    step_s = timed(step, args.repeats)
    print(
        f"video: {total} frames at {fps:g} fps, 320x240 {args.codec} at {kbits:.0f} kbit/s, key frame every "
        f"{args.gop}; clip 8x8, crop {args.size}; torch threads {torch.get_num_threads()}"
    )
    print(f"{'':34s} {'wall ms':>9s} {'clips/s':>8s} {'CPU ms':>9s} {'clips/s/core':>12s}")
    rows = [
        ("decode one training clip", decode_s),
        ("  the same, decode_threads=1", decode1_s),
        ("training sample (decode + augment)", clip_s),
        ("test view (decode + resize + crop)", view_s),
        (f"{args.model} + 5 GloRe train step", step_s),
    ]
    for name, (wall, cpu) in rows:
        print(f"{name:34s} {wall * 1e3:9.1f} {1 / wall:8.1f} {cpu * 1e3:9.1f} {1 / cpu:12.1f}")
    print(f"ratio (wall): one worker produces {step_s[0] / clip_s[0]:.0f}x the clips this machine's step consumes")
    print(f"ratio (CPU):  one core of loading feeds {step_s[1] / clip_s[1]:.0f} cores of training steps")
    print(f"workers for a device training at R clips/s: R / {1 / clip_s[0]:.0f} (wall), R / {1 / clip_s[1]:.0f} (CPU)")


if __name__ == "__main__":
    main()
