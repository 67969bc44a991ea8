"""build_transform: shapes, ranges, geometry and determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from glore.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transform, normalize, to_tensor

ZERO = (0.0, 0.0, 0.0)
ONE = (1.0, 1.0, 1.0)


def _gradient_image(width: int = 80, height: int = 60) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=2).astype(np.uint8))


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("size", [16, 33])
def test_output_shape_dtype_and_range(train: bool, size: int) -> None:
    transform = build_transform(train, size, mean=ZERO, std=ONE, color_jitter=0.4 if train else 0.0)
    out = transform(_gradient_image())
    assert out.shape == (3, size, size) and out.dtype == torch.float32
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_normalisation() -> None:
    image = Image.new("RGB", (50, 40), (255, 128, 0))
    out = build_transform(False, 8)(image)
    raw = torch.tensor([255, 128, 0], dtype=torch.float32) / 255
    expected = (raw - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(out, expected.view(3, 1, 1).expand(3, 8, 8), atol=1e-5)
    assert torch.allclose(normalize(to_tensor(image), IMAGENET_MEAN, IMAGENET_STD)[:, 0, 0], expected, atol=1e-6)


def test_eval_resizes_shorter_side_then_centre_crops() -> None:
    # 200 x 100 image: left quarter red, the rest green. The shorter side 100 becomes 64 / 0.875 ~ 73, so the
    # width becomes 146 and the centre crop of 64 keeps columns 41..105 of 146: the red quarter (0..36) is cut off.
    array = np.zeros((100, 200, 3), dtype=np.uint8)
    array[:, :50, 0] = 255
    array[:, 50:, 1] = 255
    out = build_transform(False, 64, mean=ZERO, std=ONE)(Image.fromarray(array))
    assert out.shape == (3, 64, 64)
    assert out[0].max() < 0.01 and out[1].min() > 0.99
    # with resize_ratio=1 of a 100 x 200 image (portrait), the crop is the middle 100 rows, scaled to 64
    tall = np.zeros((200, 100, 3), dtype=np.uint8)
    tall[50:150, :, 2] = 255
    out = build_transform(False, 64, mean=ZERO, std=ONE, resize_ratio=1.0)(Image.fromarray(tall))
    # the bilinear filter reaches one source pixel beyond the crop, into the black border rows
    assert out[2, 1:-1].min() > 0.99 and out[2].min() > 0.8


def test_train_full_crop_with_flip_is_the_mirrored_resize() -> None:
    image = _gradient_image(64, 64)
    flip = build_transform(True, 32, mean=ZERO, std=ONE, scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=1.0)
    keep = build_transform(True, 32, mean=ZERO, std=ONE, scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=0.0)
    assert torch.allclose(flip(image), keep(image).flip(-1))
    # the red channel grows left to right; flipped, it falls
    assert flip(image)[0, 0, 0] > flip(image)[0, 0, -1]


def test_train_is_deterministic_under_a_generator() -> None:
    transform = build_transform(True, 24, color_jitter=0.3)
    image = _gradient_image()
    a = transform(image, generator=torch.Generator().manual_seed(3))
    b = transform(image, generator=torch.Generator().manual_seed(3))
    c = transform(image, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    torch.manual_seed(5)
    d = transform(image)
    torch.manual_seed(5)
    assert torch.equal(d, transform(image))


def test_crop_box_stays_inside_and_respects_scale() -> None:
    transform = build_transform(True, 32, scale=(0.25, 0.5), ratio=(0.5, 2.0))
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        left, top, right, bottom = transform.crop_box(100, 80, generator)
        assert 0 <= left < right <= 100 and 0 <= top < bottom <= 80
        area = (right - left) * (bottom - top) / (100 * 80)
        assert 0.2 <= area <= 0.55
    # impossible ratios fall back to the centred crop of the nearest allowed aspect ratio
    narrow = build_transform(True, 8, scale=(0.9, 1.0), ratio=(3.0, 4.0))
    assert narrow.crop_box(30, 30, generator) == (0, 10, 30, 20)


def test_greyscale_input_gives_three_channels() -> None:
    out = build_transform(True, 12)(Image.new("L", (30, 30), 100))
    assert out.shape == (3, 12, 12)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"image_size": 0}, "image_size"),
        ({"image_size": 8.5}, "image_size"),
        ({"mean": (0.5, 0.5)}, "mean"),
        ({"std": (0.2, 0.0, 0.2)}, "std"),
        ({"scale": (0.5, 0.1)}, "scale"),
        ({"ratio": (0.0, 1.0)}, "ratio"),
        ({"hflip": 1.5}, "hflip"),
        ({"color_jitter": -0.1}, "color_jitter"),
        ({"train": False, "resize_ratio": 1.2}, "resize_ratio"),
    ],
)
def test_bad_arguments_name_themselves(kwargs: dict, name: str) -> None:
    args = {"train": True, "image_size": 32} | kwargs
    with pytest.raises((TypeError, ValueError), match=name):
        build_transform(**args)
