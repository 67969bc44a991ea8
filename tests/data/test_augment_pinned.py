"""Pinned samples of the standard transforms: the same seeds give the same tensors release after release.

Each sample is drawn after seeding torch's global generator as the engine's ``SeededDataset`` does, and once more
with an explicit ``torch.Generator`` of the same seed (the two must agree: one random source). Two checksums a tensor:
its sum and a position-weighted sum (float64), to 1e-6.

The numbers were computed on the transforms before they became one stack (``data/transforms.py``,
``data/joint_transforms.py`` and the clip code of ``data/video.py``) and are unchanged by it, except where the draws
moved to torch's generator or to the shared tensor colour jitter (stated at each; docs/data.md):
- image training with ``color_jitter > 0``: PIL's ImageEnhance (uint8, rounded after each step) became the float
  jitter the segmentation transform already used (the same factors and order);
- video training clips: Python's ``random`` became torch's generator (the same distributions, other draws).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from glore.data.transforms import build_seg_transform, build_transform, build_video_transform


def image(seed: int, size: tuple[int, int] = (37, 29)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def mask(seed: int, size: tuple[int, int] = (37, 29)) -> np.ndarray:
    return np.random.default_rng(seed + 100).integers(0, 5, (size[1], size[0]), dtype=np.uint8)


def frames(seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed + 200).integers(0, 256, (4, 30, 40, 3), dtype=np.uint8))


def sums(x: torch.Tensor) -> tuple[float, float]:
    x = x.double().flatten()
    weights = torch.arange(x.numel(), dtype=torch.float64).remainder(97)
    return float(x.sum()), float((x * weights).sum())


def twice(call, seed: int) -> list[torch.Tensor]:
    """``call(generator)`` after seeding the global generator (generator None), and with an explicit generator."""
    torch.default_generator.manual_seed(seed)
    first = call(None)
    second = call(torch.Generator().manual_seed(seed))
    return [first, second]


IMAGE = {
    # before the one stack (PIL's jitter): (654.907984, 31987.031979), (736.666661, 36222.200584),
    # (1185.384753, 56000.94186)
    "train_jitter": [(702.312587, 34254.601612), (775.907398, 38080.43534), (1236.872056, 58445.639977)],
    "train": [(406.072334, 20174.423209), (385.255728, 19364.652412), (108.086004, 4558.383168)],
    "eval": [(358.0774, 17349.755516), (344.491936, 16160.062173), (350.05576, 17263.159742)],
}
SEG = {
    "train": [
        ((659.654629, 30735.965951), (32136.0, 1708967.0)),
        ((191.068876, 8678.717064), (968.0, 46132.0)),
        ((700.406125, 29752.117446), (996.0, 46784.0)),
    ],
    "eval": [
        ((394.831826, 17950.675039), (2208.0, 106671.0)),
        ((366.451625, 17174.764521), (2157.0, 102622.0)),
        ((431.961002, 21683.557793), (2146.0, 103080.0)),
    ],
}
VIDEO = {
    # before (Python's random): (694.942338, 34387.839198), (719.636583, 32484.92495), (686.23046, 33183.132713)
    ("glore", True): [(674.729296, 34234.88565), (779.658496, 38041.544276), (723.822437, 35534.898447)],
    ("glore", False): [(691.631367, 31705.318955), (715.066262, 35557.30558), (734.160582, 35642.242718)],
    # before (Python's random): (1525.897512, 71589.6189), (845.577499, 42380.600909), (-396.36214, -19479.239803)
    ("official", True): [(-548.36135, -28066.494414), (-319.573944, -16975.096477), (1158.460844, 55060.662151)],
    ("official", False): [(660.752351, 30528.42537), (674.346149, 33849.353972), (699.295956, 34713.779742)],
}


@pytest.mark.parametrize("name", sorted(IMAGE))
def test_image_samples_are_pinned(name):
    train, jitter = name != "eval", 0.4 if name == "train_jitter" else 0.0
    transform = build_transform(train, 24, color_jitter=jitter) if train else build_transform(False, 24)
    for seed, expected in enumerate(IMAGE[name]):
        for x in twice(lambda g, seed=seed: transform(image(seed), generator=g), 1000 + seed):
            assert sums(x) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("name", sorted(SEG))
def test_image_and_mask_samples_are_pinned(name):
    if name == "train":
        transform = build_seg_transform(True, crop_size=(20, 24), scale=(0.5, 2.0), color_jitter=0.3)
    else:
        transform = build_seg_transform(False, resize=(20, 30))
    for seed, (expected_image, expected_mask) in enumerate(SEG[name]):
        for x, masks in twice(lambda g, seed=seed: transform(image(seed), [mask(seed)], generator=g), 2000 + seed):
            assert sums(x) == pytest.approx(expected_image, abs=1e-6)
            assert sums(masks[0]) == expected_mask and masks[0].dtype == torch.uint8


@pytest.mark.parametrize("preset,train", sorted(VIDEO))
def test_clip_samples_are_pinned(preset, train):
    transform = build_video_transform(
        train, crop_size=16, short_side=(18, 26), test_short_side=20, augment=preset, preprocess=preset
    )
    for seed, expected in enumerate(VIDEO[(preset, train)]):
        crop = 0 if train else seed
        for clip in twice(lambda g, seed=seed, crop=crop: transform(frames(seed), generator=g, crop=crop), 3000 + seed):
            assert clip.shape == (3, 4, 16, 16)
            assert sums(clip) == pytest.approx(expected, abs=1e-6)


def test_the_video_dataset_draws_from_torch_alone():
    """Clip sampling and augmentation of a VideoDataset depend on torch's generator and on nothing else: reseeding
    Python's and numpy's generators changes nothing, reseeding torch's changes the clip."""
    import random

    from glore.data.video import VideoDataset

    data = VideoDataset([("unused.mp4", 0)], ["a"], num_frames=4, interval=2, crop_size=16, short_side=(18, 26))
    clips, starts = [], []
    for other in (0, 1):
        random.seed(other)
        np.random.seed(other)
        torch.manual_seed(5)
        starts.append(data.frame_indices(40))
        clips.append(data.transform(frames(0), crop=0))
    assert starts[0] == starts[1] and torch.equal(clips[0], clips[1])
    torch.manual_seed(6)
    assert not torch.equal(data.transform(frames(0), crop=0), clips[0])
