"""segfolder, relational_seg and the joint image + mask transforms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from glore.data import build_seg_transform, collate, create_dataset
from glore.data.segmentation import MaskError
from glore.data.transforms.functional import pad_crop
from glore.tools.demo_data import _MARKER_COLOURS, RelationalSegDataset

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


def _denormalise(tensor: torch.Tensor) -> np.ndarray:
    """(3, H, W) normalised -> (H, W, 3) in [0, 255]."""
    return (tensor.permute(1, 2, 0).numpy() * STD + MEAN) * 255.0


# -- segfolder ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def segfolder(tmp_path: Path) -> Path:
    """3 classes; train: a.jpg + sub/b.png with L and P masks; val: c.png."""
    root = tmp_path / "seg"
    root.mkdir()
    (root / "classes.txt").write_text("sky\nroad\n\ncar\n")
    rng = np.random.default_rng(0)
    for split, rel, ext in (("train", "a", ".jpg"), ("train", "sub/b", ".png"), ("val", "c", ".png")):
        image = root / "images" / split / (rel + ext)
        mask = root / "masks" / split / (rel + ".png")
        image.parent.mkdir(parents=True, exist_ok=True)
        mask.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(image)
        values = (np.arange(12 * 16) % 3).reshape(12, 16).astype(np.uint8)
        values[0, :4] = 255
        if rel == "sub/b":  # a palette PNG: indices are the values
            pil = Image.fromarray(values, mode="P")
            pil.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (252 * 3) + [255, 255, 255])
            pil.save(mask)
        else:
            Image.fromarray(values).save(mask)
    (root / "images" / "train" / "notes.txt").write_text("not an image")
    return root


def test_segfolder_samples(segfolder: Path) -> None:
    dataset = create_dataset("segfolder", segfolder, "train")
    assert dataset.classes == ["sky", "road", "car"] and dataset.num_classes == 3 and len(dataset) == 2
    expected = (np.arange(12 * 16) % 3).reshape(12, 16)
    expected[0, :4] = 255
    for index, name in enumerate(["a", "sub/b"]):
        image, mask, meta = dataset[index]
        assert image.shape == (3, 12, 16) and mask.dtype == torch.int64
        assert torch.equal(mask, torch.from_numpy(expected))
        assert meta["id"] == name and meta["size"] == (12, 16)
    batch = collate([dataset[0], dataset[1]])
    assert batch.targets.shape == (2, 12, 16) and batch.meta["id"] == ["a", "sub/b"]


def test_segfolder_bad_input(segfolder: Path) -> None:
    mask = segfolder / "masks" / "val" / "c.png"
    values = np.zeros((12, 16), dtype=np.uint8)
    values[5, 5], values[6, 6] = 3, 200
    Image.fromarray(values).save(mask)
    dataset = create_dataset("segfolder", segfolder, "val")
    with pytest.raises(
        MaskError, match=r"mask .*c\.png.* has values \[3, 200\] that are neither a class nor the ignore"
    ):
        dataset[0]
    assert collate([create_dataset("segfolder", segfolder, "val", on_error="skip")[0]]).skipped == 1
    Image.fromarray(np.zeros((10, 16), dtype=np.uint8)).save(mask)
    with pytest.raises(MaskError, match=r"mask .*c\.png.* is 16x10 \(WxH\) but its image .*c\.png.* is 16x12"):
        dataset[0]
    mask.unlink()
    with pytest.raises(FileNotFoundError, match=r"mask .*masks/val/c\.png.* for image .*images/val/c\.png.* not found"):
        create_dataset("segfolder", segfolder, "val")
    with pytest.raises(ValueError, match="ignore_index 1 is a class index"):
        create_dataset("segfolder", segfolder, "train", ignore_index=1)
    (segfolder / "classes.txt").unlink()
    with pytest.raises(FileNotFoundError, match="class list .*classes.txt.* not found"):
        create_dataset("segfolder", segfolder, "train")


# -- joint transforms --------------------------------------------------------------------------------------------------


def _coded(height: int = 16, width: int = 24) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """An image whose red channel is 20 * the label, blocks of 4x4 labels in 0..5, and instance ids."""
    labels = np.kron(np.arange(height * width // 16).reshape(height // 4, width // 4) % 6, np.ones((4, 4), int))
    labels = labels.astype(np.uint8)
    rgb = np.stack([labels * 20, np.full_like(labels, 100), np.full_like(labels, 50)], axis=-1).astype(np.uint8)
    instances = (labels.astype(np.int32) * 1000 + 7).astype(np.int32)
    return Image.fromarray(rgb), labels, instances


def test_train_transform_keeps_image_and_masks_aligned() -> None:
    image, labels, instances = _coded()
    transform = build_seg_transform(True, crop_size=(20, 30), scale=(1.0, 1.0), hflip=0.5)
    flipped_any = set()
    for seed in range(8):
        torch.manual_seed(seed)
        tensor, (mask, inst) = transform(image, [labels, instances])
        assert tensor.shape == (3, 20, 30) and mask.shape == (20, 30) and inst.shape == (20, 30)
        red = _denormalise(tensor)[..., 0]
        inside = mask != 255
        # a 16x24 image in a 20x30 crop: padding everywhere outside it, with the ignore label and the mean colour
        assert int(inside.sum()) == 16 * 24
        np.testing.assert_allclose(red[inside.numpy()], mask[inside].numpy() * 20.0, atol=1e-3)
        np.testing.assert_allclose(tensor[:, ~inside].numpy(), 0.0, atol=0.01)  # mean padding normalises to ~0
        assert torch.equal(inst[inside], mask[inside].int() * 1000 + 7) and bool((inst[~inside] == 0).all())
        flipped_any.add(bool(mask[0, 0] == 255))  # padded at the right, so a flip puts the padding left
    assert flipped_any == {True, False}  # both flipped and unflipped outcomes occurred


def test_scale_uses_nearest_for_masks() -> None:
    image, labels, instances = _coded()
    transform = build_seg_transform(True, crop_size=(32, 48), scale=(2.0, 2.0), hflip=0.0)
    tensor, (mask, inst) = transform(image, [labels, instances])
    assert torch.equal(mask, torch.from_numpy(np.kron(labels, np.ones((2, 2), np.uint8))))
    assert set(inst.unique().tolist()) <= set(np.unique(instances).tolist())
    assert tensor.shape == (3, 32, 48)


def test_random_crop_is_a_window_and_deterministic() -> None:
    image, labels, _ = _coded(32, 48)
    transform = build_seg_transform(True, crop_size=(8, 12), scale=(1.0, 1.0), hflip=0.0)
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        outs.append(transform(image, [labels]))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1][0], outs[1][1][0])
    mask = outs[0][1][0].numpy()
    windows = [labels[y : y + 8, x : x + 12] for y in range(32 - 7) for x in range(48 - 11)]
    assert any(np.array_equal(mask, w) for w in windows)
    generator = torch.Generator().manual_seed(3)
    assert torch.equal(transform(image, [labels], generator=generator)[1][0], outs[0][1][0])


def test_jitter_changes_only_the_image() -> None:
    image, labels, _ = _coded()
    plain = build_seg_transform(True, crop_size=(16, 24), scale=(1.0, 1.0), hflip=0.0)
    jittered = build_seg_transform(True, crop_size=(16, 24), scale=(1.0, 1.0), hflip=0.0, color_jitter=0.4)
    torch.manual_seed(0)
    a, (mask_a,) = plain(image, [labels])
    torch.manual_seed(0)
    b, (mask_b,) = jittered(image, [labels])
    assert torch.equal(mask_a, mask_b) and not torch.allclose(a, b)
    assert (_denormalise(b) >= -1e-3).all() and (_denormalise(b) <= 255 + 1e-3).all()


def test_eval_transform_resizes_the_image_only() -> None:
    image, labels, _ = _coded()
    tensor, (mask,) = build_seg_transform(False, resize=0.5)(image, [labels])
    assert tensor.shape == (3, 8, 12) and torch.equal(mask, torch.from_numpy(labels))
    tensor, _ = build_seg_transform(False, resize=(10, 20))(image, [labels])
    assert tensor.shape == (3, 10, 20)
    tensor, _ = build_seg_transform(False)(image, [labels])
    np.testing.assert_allclose(_denormalise(tensor), np.asarray(image, dtype=np.float64), atol=1e-3)


def test_pad_crop_fills() -> None:
    image = np.full((2, 2, 3), 9, np.uint8)
    mask = np.ones((2, 2), np.uint8)
    out, (m,) = pad_crop(image, [mask], (-1, 0, 3, 3), image_fill=(1, 2, 3), mask_fills=(255,))
    assert out[0, 0].tolist() == [1, 2, 3] and out[1, 0].tolist() == [9, 9, 9] and out[1, 2].tolist() == [1, 2, 3]
    assert m.tolist() == [[255, 255, 255], [1, 1, 255], [1, 1, 255]]


def test_transform_arguments() -> None:
    with pytest.raises(ValueError, match="crop_size must be"):
        build_seg_transform(True, crop_size=(0, 4))
    with pytest.raises(ValueError, match="scale must be"):
        build_seg_transform(True, scale=(2.0, 0.5))
    with pytest.raises(ValueError, match="hflip must be"):
        build_seg_transform(True, hflip=2)
    with pytest.raises(ValueError, match="resize must be"):
        build_seg_transform(False, resize=-1.0)
    image, labels, _ = _coded()
    with pytest.raises(ValueError, match=r"masks\[0\] has shape \(3, 3\), expected the image's"):
        build_seg_transform(True)(image, [np.zeros((3, 3), np.uint8)])


# -- relational_seg ----------------------------------------------------------------------------------------------------


def test_relational_seg_is_deterministic_and_split_apart() -> None:
    a = RelationalSegDataset("train", num_samples=5)
    b = create_dataset("relational_seg", split="train", num_samples=5)
    for i in range(5):
        assert np.array_equal(a.generate(i)[0], b.generate(i)[0]) and np.array_equal(a.generate(i)[1], b.generate(i)[1])
    val = RelationalSegDataset("val", num_samples=5)
    assert not np.array_equal(a.generate(0)[0], val.generate(0)[0])
    image, mask, meta = a[1]
    assert image.shape == (3, 64, 64) and mask.dtype == torch.int64 and meta == {"id": "train/1", "size": (64, 64)}
    assert a.classes == ["background", "red", "green", "blue"] and a.ignore_index == 255


def _marker(image: np.ndarray, mask: np.ndarray) -> tuple[str, np.ndarray]:
    """The marker's colour name (by its mean colour) and its pixel coordinates."""
    where = np.argwhere(mask == 255)
    rgb = image[mask == 255].mean(0) / 255.0
    name = min(_MARKER_COLOURS, key=lambda n: np.abs(rgb - np.mean(_MARKER_COLOURS[n], axis=0)).sum())
    return name, where


def test_relational_seg_marker_rule_and_distance() -> None:
    dataset = RelationalSegDataset("val", num_samples=60, image_size=64)
    seen = set()
    for i in range(len(dataset)):
        image, mask = dataset.generate(i)
        colour, marker = _marker(image, mask)
        blobs = (mask != 0) & (mask != 255)
        assert blobs.any() and len(marker) > 0
        assert set(np.unique(mask[blobs]).tolist()) == {1 + list(_MARKER_COLOURS).index(colour)}
        # objects are grey (equal channels), far from the marker
        assert np.all(np.abs(image[blobs].astype(int)[:, 0] - image[blobs].astype(int)[:, 2]) < 60)
        centre = marker.mean(0)
        nearest = np.min(np.hypot(*(np.argwhere(blobs) - centre).T))
        # object centres are >= min_distance from the marker's: their pixels within half a diagonal of the centre
        assert nearest >= 0.35 * 64 - 0.3 * 64 * np.sqrt(2) / 2 - 1
        seen.add(colour)
    assert seen == {"red", "green", "blue"}


def test_relational_seg_match_rule() -> None:
    dataset = RelationalSegDataset("train", num_samples=40, rule="match")
    assert dataset.classes == ["background", "same", "different"] and dataset.num_classes == 3
    labels = set()
    for i in range(len(dataset)):
        _, mask = dataset.generate(i)
        labels |= set(np.unique(mask).tolist())
    assert labels == {0, 1, 2, 255}


def test_relational_seg_with_a_joint_transform_and_arguments() -> None:
    transform = build_seg_transform(True, crop_size=48, scale=(0.75, 1.25), mean=(0.5,) * 3, std=(0.25,) * 3)
    image, mask, _ = RelationalSegDataset("train", num_samples=2, transform=transform)[0]
    assert image.shape == (3, 48, 48) and mask.shape == (48, 48) and mask.dtype == torch.int64
    with pytest.raises(ValueError, match="rule must be one of"):
        RelationalSegDataset(rule="count")
    with pytest.raises(ValueError, match="num_classes must be in \\[3, 7\\]"):
        RelationalSegDataset(num_classes=9)
    with pytest.raises(ValueError, match="root must be None"):
        create_dataset("relational_seg", "/tmp", "train")
