"""Can data loading keep a ResNet-50 busy? Loader images/s against training images/s, measured in one run.

The loader reads generated JPEGs (ImageNet-like sizes, around 500 x 375) from a temporary ``imagefolder``,
decodes them with Pillow in DataLoader workers and applies the training transform (random resized crop to 224,
flip) or the evaluation transform (resize to 256, centre crop 224, JPEG draft decoding). The model side is a
ResNet-50 forward + backward + SGD step on random input of the same size. The ratio loader / model above 1 means
the loader keeps up.

On a CPU-only machine both compete for the same cores during real training, so the two rates are measured one after
the other and the ratio says how many times faster the loader is than the step; on a GPU machine the loader runs on
the CPU and the model on the GPU.

Usage::

    python benchmarks/bench_data.py                       # workers 0 1 2, CPU model
    python benchmarks/bench_data.py --workers 2 4 8 --device cuda --model-batch 64
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from glore.data import build_transform, collate, create_dataset


def make_jpegs(root: str, num_images: int, num_classes: int = 8, seed: int = 0) -> None:
    """Write ``num_images`` JPEGs of ImageNet-like size and content into ``root/train/<class>/``.

    Content is a smooth random field plus noise, so that the files compress like photographs (about 100 kB at
    quality 90) rather than like flat colours.
    """
    rng = np.random.default_rng(seed)
    for index in range(num_images):
        width, height = int(rng.integers(400, 640)), int(rng.integers(300, 480))
        coarse = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
        array = np.asarray(image, dtype=np.int16) + rng.integers(-20, 21, (height, width, 3), dtype=np.int16)
        folder = os.path.join(root, "train", f"class{index % num_classes:02d}")
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).save(
            os.path.join(folder, f"{index:05d}.jpg"), quality=90
        )


def loader_rate(root: str, *, train: bool, workers: int, batch_size: int, image_size: int, epochs: int) -> float:
    """Images/s of a DataLoader over the folder: decode + transform + collate, after one warm-up epoch."""
    dataset = create_dataset("imagefolder", root, "train", transform=build_transform(train, image_size))
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        collate_fn=collate,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
    )
    for _ in loader:  # warm-up: starts the workers, fills the page cache
        pass
    count, start = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            count += len(batch.targets)
    return count / (time.perf_counter() - start)


def model_rate(*, device: str, batch_size: int, image_size: int, steps: int, channels_last: bool) -> float:
    """Images/s of ResNet-50 training steps (forward, backward, SGD) on random input, after two warm-up steps."""
    from glore.models import create_model  # imported here: the loader part does not need the model zoo

    model = create_model("resnet50").to(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    inputs = torch.randn(batch_size, 3, image_size, image_size, device=device).to(memory_format=memory_format)
    targets = torch.randint(0, 1000, (batch_size,), device=device)

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(2):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-images", type=int, default=192, help="JPEGs generated")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="DataLoader worker counts")
    parser.add_argument("--batch-size", type=int, default=32, help="loader batch size")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=2, help="timed passes over the images per loader setting")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model-batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4, help="timed ResNet-50 training steps")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for the model (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, model on {args.device}, {torch.get_num_threads()} threads"
    )
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        make_jpegs(root, args.num_images)
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)
        print(
            f"{args.num_images} JPEGs, {size / args.num_images / 1e3:.0f} kB each, "
            f"written in {time.perf_counter() - start:.1f} s"
        )
        model = model_rate(
            device=args.device,
            batch_size=args.model_batch,
            image_size=args.image_size,
            steps=args.steps,
            channels_last=args.channels_last,
        )
        print(f"ResNet-50 training, batch {args.model_batch} at {args.image_size}: {model:.1f} images/s\n")
        print("| pipeline | workers | loader images/s | loader / ResNet-50 step |")
        print("|---|---:|---:|---:|")
        for train in (True, False):
            for workers in args.workers:
                rate = loader_rate(
                    root,
                    train=train,
                    workers=workers,
                    batch_size=args.batch_size,
                    image_size=args.image_size,
                    epochs=args.epochs,
                )
                name = "train (RandomResizedCrop + flip)" if train else "eval (resize 256 + centre crop)"
                print(f"| {name} | {workers} | {rate:.0f} | {rate / model:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
