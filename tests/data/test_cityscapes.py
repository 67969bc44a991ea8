"""The cityscapes dataset on a generated layout, its label table against cityscapesscripts, and its bad inputs."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from recipe_layouts import write_cityscapes_sample

from glore.data import collate, create_dataset
from glore.data.cityscapes import (
    AVG_CLASS_SIZE,
    CITYSCAPES_CATEGORIES,
    CITYSCAPES_CLASSES,
    CITYSCAPES_PALETTE,
    LABEL_TO_TRAIN,
    LABELS,
    TRAIN_TO_LABEL,
    colorize,
    train_to_label_ids,
)
from glore.data.segmentation import MaskError

H, W = 24, 32


def _write(root: Path, split: str, city: str, frame: int, *, label_ids: np.ndarray | None = None) -> str:
    """One sample: a random image, labelIds (all 34 ids by default), instanceIds and colours; returns its id."""
    return write_cityscapes_sample(root, split, city, frame, size=(H, W), label_ids=label_ids)


@pytest.fixture
def cityscapes(tmp_path: Path) -> Path:
    """val: aachen (2 images) and bonn (1); train: one image."""
    root = tmp_path / "cityscapes"
    for city, frame in (("aachen", 1), ("aachen", 2), ("bonn", 3)):
        _write(root, "val", city, frame)
    _write(root, "train", "zurich", 4)
    return root


def test_label_table_equals_cityscapesscripts() -> None:
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as ev
    from cityscapesscripts.helpers import labels as cs

    assert len(LABELS) == len(cs.labels)
    for ours, theirs in zip(LABELS, cs.labels, strict=True):
        assert tuple(ours) == tuple(theirs)
    for label in cs.labels:
        if label.id >= 0:
            assert LABEL_TO_TRAIN[label.id] == label.trainId
    assert len(LABEL_TO_TRAIN) == 34
    for train_id, label_id in enumerate(TRAIN_TO_LABEL):
        assert cs.id2label[int(label_id)].trainId == train_id
        assert CITYSCAPES_CLASSES[train_id] == cs.trainId2label[train_id].name
        assert tuple(CITYSCAPES_PALETTE[train_id]) == cs.trainId2label[train_id].color
    assert AVG_CLASS_SIZE == ev.args.avgClassSize
    for category, train_ids in CITYSCAPES_CATEGORIES.items():
        expected = [lab.trainId for lab in cs.category2labels[category] if not lab.ignoreInEval]
        assert sorted(train_ids) == sorted(expected)
    assert "void" not in CITYSCAPES_CATEGORIES and len(CITYSCAPES_CATEGORIES) == 7


def test_label_id_round_trip_and_colours() -> None:
    train = np.array([[0, 5, 18, 255]])
    label_ids = train_to_label_ids(train)
    assert label_ids.tolist() == [[7, 17, 33, 0]] and label_ids.dtype == np.uint8
    back = LABEL_TO_TRAIN[label_ids]
    assert back.tolist() == [[0, 5, 18, 255]]
    colours = colorize(train)
    assert (
        colours.shape == (1, 4, 3) and colours[0, 0].tolist() == [128, 64, 128] and colours[0, 3].tolist() == [0, 0, 0]
    )


def test_samples(cityscapes: Path) -> None:
    dataset = create_dataset("cityscapes", cityscapes, "val")
    assert len(dataset) == 3 and dataset.num_classes == 19 and dataset.ignore_index == 255
    assert dataset.classes[0] == "road" and dataset.classes[18] == "bicycle"
    image, target, meta = dataset[2]
    assert image.shape == (3, H, W) and image.dtype == torch.float32
    assert target.shape == (H, W) and target.dtype == torch.int64
    assert meta["id"] == "bonn_000123_000003" and meta["size"] == (H, W)
    assert meta["file"].endswith("leftImg8bit/val/bonn/bonn_000123_000003_leftImg8bit.png")
    # every labelId maps through the table; the car instance region is car (13)
    label_ids = (np.arange(H * W) % 34).reshape(H, W)
    expected = LABEL_TO_TRAIN[label_ids]
    expected[:4, :5] = 13
    assert torch.equal(target, torch.from_numpy(expected).long())
    # normalised with ImageNet statistics by default
    raw = np.asarray(Image.open(meta["file"]), dtype=np.float32) / 255.0
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(image.permute(1, 2, 0).numpy(), (raw - mean) / std, atol=1e-5)
    assert [dataset[i][2]["id"] for i in range(3)] == [
        f"{c}_000123_00000{f}" for c, f in (("aachen", 1), ("aachen", 2), ("bonn", 3))
    ]
    assert len(create_dataset("cityscapes", cityscapes, "train")) == 1


def test_instances_and_collate(cityscapes: Path) -> None:
    dataset = create_dataset("cityscapes", cityscapes, "val", instances=True)
    batch = collate([dataset[0], dataset[1]])
    assert batch.inputs.shape == (2, 3, H, W)
    assert set(batch.targets) == {"mask", "instances"}
    assert batch.targets["mask"].dtype == torch.int64 and batch.targets["instances"].dtype == torch.int32
    assert batch.targets["instances"][0, 0, 0] == 26001 and batch.targets["instances"][1, 0, 0] == 26002
    assert batch.meta["id"] == ["aachen_000123_000001", "aachen_000123_000002"]
    assert batch.meta["size"] == [(H, W), (H, W)]


def test_missing_gtfine_file_is_named_at_construction(cityscapes: Path) -> None:
    missing = cityscapes / "gtFine" / "val" / "bonn" / "bonn_000123_000003_gtFine_labelIds.png"
    missing.unlink()
    # the official evaluation lists the gtFine files: an image without one is left out, and named
    with pytest.warns(UserWarning, match=r"bonn_000123_000003_leftImg8bit\.png.* pair with no gtFine labelIds"):
        assert len(create_dataset("cityscapes", cityscapes, "val")) == 2
    (cityscapes / "gtFine" / "train" / "zurich" / "zurich_000123_000004_gtFine_instanceIds.png").unlink()
    create_dataset("cityscapes", cityscapes, "train")  # instance ids are only needed with instances=True
    with pytest.raises(FileNotFoundError, match="zurich_000123_000004_gtFine_instanceIds.png"):
        create_dataset("cityscapes", cityscapes, "train", instances=True)


def test_missing_split_and_root(tmp_path: Path, cityscapes: Path) -> None:
    with pytest.raises(FileNotFoundError, match="has no 'leftImg8bit/test' folder"):
        create_dataset("cityscapes", cityscapes, "test")
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        create_dataset("cityscapes", tmp_path / "nowhere", "val")
    with pytest.raises(ValueError, match="split must be one of"):
        create_dataset("cityscapes", cityscapes, "extra")
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        create_dataset("cityscapes", cityscapes, "val", instance=True)


def test_corrupt_png_raise_and_skip(cityscapes: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = cityscapes / "gtFine" / "val" / "aachen" / "aachen_000123_000002_gtFine_labelIds.png"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated
    dataset = create_dataset("cityscapes", cityscapes, "val")
    with pytest.raises(OSError, match=r"cannot read mask .*aachen_000123_000002_gtFine_labelIds\.png"):
        dataset[1]
    skipping = create_dataset("cityscapes", cityscapes, "val", on_error="skip")
    with caplog.at_level(logging.WARNING, logger="glore.data"):
        batch = collate([skipping[i] for i in range(3)])
    assert batch.skipped == 1 and batch.inputs.shape[0] == 2
    assert "aachen_000123_000002_gtFine_labelIds.png" in caplog.text
    image = cityscapes / "leftImg8bit" / "val" / "bonn" / "bonn_000123_000003_leftImg8bit.png"
    image.write_bytes(b"not a png")
    with pytest.raises(OSError, match="bonn_000123_000003_leftImg8bit.png"):
        dataset[2]


def test_mask_of_another_size(cityscapes: Path) -> None:
    path = cityscapes / "gtFine" / "val" / "bonn" / "bonn_000123_000003_gtFine_labelIds.png"
    Image.fromarray(np.zeros((H, W + 2), dtype=np.uint8)).save(path)
    dataset = create_dataset("cityscapes", cityscapes, "val")
    with pytest.raises(
        MaskError, match=rf"mask .*bonn_000123_000003_gtFine_labelIds\.png.* is {W + 2}x{H} .* is {W}x{H}"
    ):
        dataset[2]
    assert collate([create_dataset("cityscapes", cityscapes, "val", on_error="skip")[2]]).skipped == 1


def test_mask_values_that_are_no_label(cityscapes: Path) -> None:
    path = cityscapes / "gtFine" / "val" / "bonn" / "bonn_000123_000003_gtFine_labelIds.png"
    values = np.full((H, W), 7, dtype=np.uint8)
    values[3, 3] = 40
    Image.fromarray(values).save(path)
    with pytest.raises(
        ValueError, match=r"bonn_000123_000003_gtFine_labelIds\.png.* has values \[40\] that are neither"
    ):
        create_dataset("cityscapes", cityscapes, "val")[2]
    Image.fromarray(np.zeros((H, W, 3), dtype=np.uint8)).save(path)
    with pytest.raises(MaskError, match="has mode 'RGB'; expected a single-channel"):
        create_dataset("cityscapes", cityscapes, "val")[2]
