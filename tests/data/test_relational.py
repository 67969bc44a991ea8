"""The built-in relational dataset: determinism, splits, labels, geometry, arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from glore.data import RelationalDataset, collate, create_dataset


def test_interface() -> None:
    dataset = create_dataset("relational", split="val", num_samples=10, image_size=48)
    assert len(dataset) == 10
    assert dataset.classes == ["different", "same"] and dataset.num_classes == 2
    image, target = dataset[3]
    assert image.shape == (3, 48, 48) and image.dtype == torch.float32
    assert target in (0, 1) and isinstance(target, int)
    assert len(create_dataset("relational")) == 8000


def test_same_index_same_image_across_instances() -> None:
    a = create_dataset("relational", num_samples=20, seed=1)
    b = create_dataset("relational", num_samples=20, seed=1)
    for index in (0, 7, 19):
        assert torch.equal(a[index][0], b[index][0]) and a[index][1] == b[index][1]
    assert torch.equal(a[-1][0], a[19][0])


def test_splits_and_seeds_differ() -> None:
    train = create_dataset("relational", split="train", num_samples=20)
    val = create_dataset("relational", split="val", num_samples=20)
    test = create_dataset("relational", split="test", num_samples=20)
    other_seed = create_dataset("relational", split="train", num_samples=20, seed=1)
    for index in range(5):
        assert not torch.equal(train[index][0], val[index][0])
        assert not torch.equal(val[index][0], test[index][0])
        assert not torch.equal(train[index][0], other_seed[index][0])


def test_labels_are_balanced_and_follow_the_shapes() -> None:
    dataset = RelationalDataset("train", num_samples=400, num_shapes=4)
    labels = []
    for index in range(len(dataset)):
        scene = dataset.scene(index)
        red, blue = scene.objects[:2]
        assert (red.colour, blue.colour) == ("red", "blue")
        assert scene.label == int(red.shape == blue.shape)
        labels.append(scene.label)
    assert dataset.targets == labels
    assert 0.4 < np.mean(labels) < 0.6
    # "different" pairs use every other shape
    pairs = {(s.objects[0].shape, s.objects[1].shape) for s in map(dataset.scene, range(400)) if not s.label}
    assert len(pairs) == 4 * 3


def test_pair_is_far_apart_and_objects_do_not_overlap() -> None:
    dataset = RelationalDataset("train", num_samples=100, image_size=64, min_distance=0.55, num_distractors=3)
    for index in range(len(dataset)):
        objects = dataset.scene(index).objects
        (l0, t0, r0, b0), (l1, t1, r1, b1) = objects[0].box, objects[1].box
        assert math.hypot((l0 + r0 - l1 - r1) / 2, (t0 + b0 - t1 - b1) / 2) >= 0.55 * 64
        for i, a in enumerate(objects):
            assert 0 <= a.box[0] < a.box[2] <= 64 and 0 <= a.box[1] < a.box[3] <= 64
            for b in objects[i + 1 :]:
                assert a.box[2] <= b.box[0] or b.box[2] <= a.box[0] or a.box[3] <= b.box[1] or b.box[3] <= a.box[1]


def test_objects_are_drawn_in_their_colours() -> None:
    dataset = RelationalDataset("train", num_samples=30, num_distractors=0, noise=0.0)
    for index in range(len(dataset)):
        scene = dataset.scene(index)
        for obj, channel in zip(scene.objects, (0, 2), strict=True):
            left, top, right, bottom = obj.box
            patch = scene.image[top:bottom, left:right].astype(int)
            # at least a third of the box is the object's colour: its channel well above the others
            dominant = patch[..., channel] - np.delete(patch, channel, axis=2).max(axis=2)
            assert (dominant > 100).mean() > 0.3


def test_normalisation_and_transform() -> None:
    dataset = create_dataset("relational", num_samples=4, noise=0.0, transform=lambda t: t.flip(-1))
    plain = create_dataset("relational", num_samples=4, noise=0.0)
    image, _ = plain[0]
    scene = plain.scene(0)
    expected = (torch.from_numpy(scene.image).permute(2, 0, 1).float() / 255 - 0.5) / 0.25
    assert torch.allclose(image, expected)
    assert torch.equal(dataset[0][0], image.flip(-1))


def test_dataloader_workers() -> None:
    dataset = create_dataset("relational", num_samples=12, image_size=32)
    batches = list(DataLoader(dataset, batch_size=5, num_workers=2, collate_fn=collate))
    assert [len(b.targets) for b in batches] == [5, 5, 2]
    assert sum(b.skipped for b in batches) == 0
    assert torch.equal(batches[1].inputs[0], dataset[5][0])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_samples": 0}, "num_samples"),
        ({"image_size": 16}, "image_size"),
        ({"num_shapes": 1}, "num_shapes"),
        ({"num_shapes": 7}, "num_shapes"),
        ({"num_distractors": -1}, "num_distractors"),
        ({"object_size": (0.3, 0.2)}, "object_size"),
        ({"min_distance": 0.84, "object_size": (0.3, 0.35)}, "min_distance"),
        ({"noise": "high"}, "noise"),
        ({"seed": 1.5}, "seed"),
        ({"split": "dev"}, "split"),
    ],
)
def test_bad_arguments_name_themselves(kwargs: dict, name: str) -> None:
    with pytest.raises((TypeError, ValueError), match=name):
        create_dataset("relational", **kwargs)


def test_index_out_of_range() -> None:
    with pytest.raises(IndexError):
        create_dataset("relational", num_samples=3)[3]
