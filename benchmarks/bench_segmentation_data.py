"""Can the Cityscapes pipeline keep an FCN busy? Decode + joint augmentation images/s per worker, measured in one run.

Writes ``--num-images`` Cityscapes-sized samples (2048 x 1024 ``leftImg8bit`` PNGs with photograph-like content,
``gtFine`` labelIds and instanceIds PNGs) into a temporary layout, then times:

- ``decode``: reading one sample in the main process (image, labelIds, labelId -> train id table), no transform;
- ``augment``: the training transform alone on decoded samples (random scale 0.5-2.0, pad + random crop 512 x 1024,
  flip, optionally photometric jitter, normalisation);
- ``loader``: a DataLoader over the dataset with 0, 1, 2 ... workers (decode + augment + collate), per worker.

The model side, when ``create_model("fcn_resnet50")`` exists: a training step (forward, backward, SGD) of
fcn_resnet50 at the same crop on ``--device``, images/s. ``loader / model`` above 1 means the loader keeps up; on a
CPU-only machine both share the cores in real training, so the rates are measured one after the other.

Usage::

    python benchmarks/bench_segmentation_data.py                    # workers 0 1 2, CPU
    python benchmarks/bench_segmentation_data.py --workers 4 8 --device cuda --model-batch 8
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

from glore.data import build_seg_transform, collate, create_dataset
from glore.data.cityscapes import TRAIN_TO_LABEL


def make_cityscapes(root: str, num_images: int, size: tuple[int, int] = (1024, 2048), seed: int = 0) -> None:
    """Write ``num_images`` samples into ``root/{leftImg8bit,gtFine}/train/bench/``.

    Images are a smooth random field plus noise (PNG files of 3-4 MB, as Cityscapes' are 2-3 MB); labels are
    random polygons-like blocks of the 19 evaluated classes, with car instances.
    """
    rng = np.random.default_rng(seed)
    height, width = size
    img_dir = os.path.join(root, "leftImg8bit", "train", "bench")
    gt_dir = os.path.join(root, "gtFine", "train", "bench")
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(gt_dir, exist_ok=True)
    for index in range(num_images):
        stem = f"bench_000000_{index:06d}"
        coarse = rng.integers(0, 256, (height // 32, width // 32, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
        array = np.asarray(image, dtype=np.int16) + rng.integers(-12, 13, (height, width, 3), dtype=np.int16)
        Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).save(os.path.join(img_dir, stem + "_leftImg8bit.png"))
        train = rng.integers(0, 19, (height // 64, width // 64))
        labels = np.kron(TRAIN_TO_LABEL[train], np.ones((64, 64), np.uint8))  # (H, W) labelIds
        instances = labels.astype(np.uint16)
        cars = labels == 26
        instances[cars] = 26000 + (np.arange(cars.sum()) // 4096).astype(np.uint16)
        Image.fromarray(labels).save(os.path.join(gt_dir, stem + "_gtFine_labelIds.png"))
        Image.fromarray(instances).save(os.path.join(gt_dir, stem + "_gtFine_instanceIds.png"))


def decode_rate(dataset, repeats: int) -> tuple[float, list]:
    """Samples/s of ``dataset.load`` (PNG decode + label table), and the decoded samples."""
    samples = [dataset.load(i) for i in range(len(dataset))]  # warm-up: the page cache
    start = time.perf_counter()
    for _ in range(repeats):
        for i in range(len(dataset)):
            dataset.load(i)
    return repeats * len(dataset) / (time.perf_counter() - start), samples


def augment_rate(transform, samples: list, repeats: int) -> float:
    """Samples/s of the joint transform on already decoded samples."""
    torch.manual_seed(0)
    start = time.perf_counter()
    for _ in range(repeats):
        for image, masks in samples:
            transform(image, masks)
    return repeats * len(samples) / (time.perf_counter() - start)


def loader_rate(dataset, workers: int, batch_size: int, epochs: int) -> float:
    """Images/s of a DataLoader (decode + augment + collate) after one warm-up epoch."""
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        collate_fn=collate,
        persistent_workers=workers > 0,
        prefetch_factor=2 if workers > 0 else None,
    )
    for _ in loader:
        pass
    count, start = 0, time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            count += batch.inputs.shape[0]
    return count / (time.perf_counter() - start)


def model_rate(device: str, batch_size: int, crop: tuple[int, int], steps: int) -> float | None:
    """Images/s of fcn_resnet50 training steps on random input at the crop size; None if the model is not there."""
    from glore.models import create_model, list_models

    if "fcn_resnet50" not in list_models():
        return None
    model = create_model("fcn_resnet50", num_classes=19).to(device).train()
    optim = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch_size, 3, *crop, device=device)
    y = torch.randint(0, 19, (batch_size, *crop), device=device)

    def step() -> None:
        out = model(x)
        logits = out[0] if isinstance(out, tuple | list) else out
        logits = logits["out"] if isinstance(logits, dict) else logits
        loss = torch.nn.functional.cross_entropy(logits, y, ignore_index=255)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()

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
    parser.add_argument("--num-images", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2, help="timed passes over the images per loader setting")
    parser.add_argument("--crop", type=int, nargs=2, default=[512, 1024], metavar=("H", "W"))
    parser.add_argument("--color-jitter", type=float, default=0.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model-batch", type=int, default=2)
    parser.add_argument("--model-steps", type=int, default=2)
    parser.add_argument("--no-model", action="store_true", help="time the data side only")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    crop = (args.crop[0], args.crop[1])
    transform = build_seg_transform(True, crop_size=crop, scale=(0.5, 2.0), color_jitter=args.color_jitter)
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        make_cityscapes(root, args.num_images)
        print(f"wrote {args.num_images} samples of 2048x1024 in {time.perf_counter() - start:.1f} s")
        dataset = create_dataset("cityscapes", root, "train", transform=transform)
        decode, samples = decode_rate(dataset, repeats=2)
        augment = augment_rate(transform, samples, repeats=3)
        both = 1.0 / (1.0 / decode + 1.0 / augment)
        print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}")
        print(f"crop {crop[0]}x{crop[1]}, scale 0.5-2.0, flip, color_jitter {args.color_jitter}")
        print(f"decode  (1 process) : {decode:7.2f} images/s")
        print(f"augment (1 process) : {augment:7.2f} images/s")
        print(f"decode + augment    : {both:7.2f} images/s  (decode {both / decode:.0%} of the time)")
        rates = {}
        for workers in args.workers:
            rates[workers] = loader_rate(dataset, workers, args.batch_size, args.epochs)
            per = rates[workers] / max(workers, 1)
            print(f"loader, {workers} workers : {rates[workers]:7.2f} images/s  ({per:.2f} per worker)")
    model = None if args.no_model else model_rate(args.device, args.model_batch, crop, args.model_steps)
    if model is None:
        print("model: fcn_resnet50 is not registered (or --no-model): data side only")
        return
    print(f"model fcn_resnet50 train step on {args.device}, batch {args.model_batch}: {model:7.3f} images/s")
    for workers, rate in rates.items():
        print(f"loader / model, {workers} workers: {rate / model:6.2f}")
    per_worker = both
    print(f"workers needed to feed the model: {model / per_worker:.2f} (at {per_worker:.2f} images/s per worker)")


if __name__ == "__main__":
    main()
