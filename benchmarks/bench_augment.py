"""glore's augmentation stack against kornia's: training samples/s per loader worker, measured in one run.

Each side runs the standard training transform of a task on one sample at a time, as a DataLoader worker does, in
one thread (``torch.set_num_threads(1)``: a worker's share of the machine), from the decoded input to the normalised
tensor:

- image: ImageNet-like photo (500 x 375, PIL) -> random resized crop 224 + flip + normalise;
- image + mask: a Cityscapes-like frame at half size (512 x 1024, PIL + uint8 mask) -> random scale 0.5-2, random crop
  256 x 512 (padded), flip, normalise;
- clip: 8 decoded frames (256 x 340) -> random short side 256-320, random crop 224, flip, normalise.

kornia works on float tensors, so its timing includes the PIL/uint8 -> float conversion; its geometry is
kornia.augmentation's ``RandomResizedCrop`` (image, image + mask with ``AugmentationSequential``) and
``VideoSequential`` (clips). The two sides do the same kind of work, not the same arithmetic (kornia's crops resample
float pixels; glore resizes uint8 with Pillow or torch's uint8 path). kornia is not a dependency of glore: install it
to run this comparison (``pip install kornia``); without it only glore's rates are printed.

Usage::

    python benchmarks/bench_augment.py                 # 3 rounds of 1 s per transform
    python benchmarks/bench_augment.py --seconds 2 --rounds 5
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from glore.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_seg_transform,
    build_transform,
    build_video_transform,
)


def rate(fn: Callable[[], object], seconds: float, rounds: int) -> float:
    """Calls per second: the best of ``rounds`` rounds of at least ``seconds`` each (after one warm-up call)."""
    fn()
    best = 0.0
    for _ in range(rounds):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            fn()
            count += 1
        best = max(best, count / (time.perf_counter() - start))
    return best


def inputs(seed: int = 0) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    photo = Image.fromarray(rng.integers(0, 256, (375, 500, 3), dtype=np.uint8))
    frame = Image.fromarray(rng.integers(0, 256, (512, 1024, 3), dtype=np.uint8))
    mask = rng.integers(0, 19, (512, 1024), dtype=np.uint8)
    frames = torch.from_numpy(rng.integers(0, 256, (8, 256, 340, 3), dtype=np.uint8))  # (T, H, W, 3)
    return {"photo": photo, "frame": frame, "mask": mask, "frames": frames}


def glore_transforms(data: dict[str, object]) -> dict[str, Callable[[], object]]:
    image = build_transform(True, 224)
    seg = build_seg_transform(True, crop_size=(256, 512), scale=(0.5, 2.0))
    clip = build_video_transform(True, crop_size=224, short_side=(256, 320))
    return {
        "image": lambda: image(data["photo"]),
        "image + mask": lambda: seg(data["frame"], [data["mask"]]),
        "clip": lambda: clip(data["frames"]),
    }


def kornia_transforms(data: dict[str, object]) -> dict[str, Callable[[], object]]:
    import kornia.augmentation as K

    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    image = K.AugmentationSequential(
        K.RandomResizedCrop((224, 224), scale=(0.08, 1.0)), K.RandomHorizontalFlip(), K.Normalize(mean, std)
    )
    seg = K.AugmentationSequential(
        K.RandomResizedCrop((256, 512), scale=(0.25, 1.0)),  # a crop of 1/4 to all of the frame, resized
        K.RandomHorizontalFlip(),
        data_keys=["input", "mask"],
    )
    norm = K.Normalize(mean, std)
    clip = K.VideoSequential(
        K.RandomResizedCrop((224, 224), scale=(0.49, 0.77)),  # 224^2 of a 256-320 short side
        K.RandomHorizontalFlip(),
        K.Normalize(mean, std),
        data_format="BTCHW",
        same_on_frame=True,
    )

    def to_float(picture: Image.Image) -> torch.Tensor:
        # (H, W, 3) uint8 -> (1, 3, H, W) float in [0, 1]
        return torch.from_numpy(np.array(picture)).permute(2, 0, 1)[None].float().div_(255)

    def segment() -> object:
        mask = torch.from_numpy(data["mask"])[None, None].float()  # (1, 1, H, W)
        x, m = seg(to_float(data["frame"]), mask)
        return norm(x), m.long()

    def video() -> object:
        x = data["frames"].permute(0, 3, 1, 2)[None].float().div_(255)  # (T, H, W, 3) -> (1, T, 3, H, W)
        return clip(x)

    return {"image": lambda: image(to_float(data["photo"])), "image + mask": segment, "clip": video}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one timing round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per transform (the best is kept)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = inputs()
    sides = {"glore": glore_transforms(data)}
    try:
        sides["kornia"] = kornia_transforms(data)
        import kornia

        print(f"torch {torch.__version__}, kornia {kornia.__version__}, 1 thread")
    except ImportError:
        print(f"torch {torch.__version__}, kornia not installed: glore only, 1 thread")
    print("| transform | glore samples/s | kornia samples/s | glore / kornia |")
    print("|---|---:|---:|---:|")
    for name in sides["glore"]:
        rates = {side: rate(fns[name], args.seconds, args.rounds) for side, fns in sides.items()}
        other = rates.get("kornia")
        ratio = f"{rates['glore'] / other:.2f}" if other else "-"
        print(
            f"| {name} | {rates['glore']:.1f} | {other:.1f} | {ratio} |"
            if other
            else f"| {name} | {rates['glore']:.1f} | - | - |"
        )


if __name__ == "__main__":
    main()
