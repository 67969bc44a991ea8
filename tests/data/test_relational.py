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


# -- the demos' construction: what a network without GloRe cannot see ---------------------------------------------


def _demo_config(name: str):
    from glore.engine import load_config
    from glore.tools.demo import find_demo_config

    return load_config(find_demo_config(name))


def _network(config, **changes):
    """The demo recipe's network, randomly initialised, in eval mode (BatchNorm with its initial statistics), in
    float64 so that an exact identity holds to 1e-12 and a broken one shows."""
    from glore.models import create_model

    m = config.model
    kwargs = {**m.kwargs, **changes}
    glore = kwargs.pop("glore", m.glore)
    if "head" in kwargs:  # the FCN has no backbone units in the demo
        if kwargs["head"] == "fcn":
            kwargs.pop("unit_args", None)
        return create_model(m.name, num_classes=3, **kwargs).double().eval()
    glore_args = {"zero_init": False} if glore else {}  # an active unit, not the identity of a new one
    net = create_model(m.name, num_classes=2, glore=glore, glore_args=glore_args, **kwargs)
    return net.double().eval()


def test_pair_gap_and_pairing_decide_the_label() -> None:
    dataset = RelationalDataset("train", num_samples=40, relation="colour", min_gap=35, object_size=(0.14, 0.19))
    for index in range(len(dataset)):
        scene = dataset.scene(index)
        (l0, t0, r0, b0), (l1, t1, r1, b1) = scene.objects[0].box, scene.objects[1].box
        gap_x, gap_y = max(l1 - r0, l0 - r1), max(t1 - b0, t0 - b1)
        assert max(gap_x, gap_y) >= 35
        assert scene.label == int(scene.objects[0].colour == scene.objects[1].colour)
        # the pairing alone decides: the same placement with the other colour pairs has the other labels
        for pair in (("red", "red"), ("red", "blue"), ("blue", "red"), ("blue", "blue")):
            other = dataset.scene(index, pair=pair)
            assert other.label == int(pair[0] == pair[1])
            assert [o.box for o in other.objects] == [o.box for o in scene.objects]
            assert [o.shape for o in other.objects] == [o.shape for o in scene.objects]
    with pytest.raises(ValueError, match="pair must be two of"):
        dataset.scene(0, pair=("red", "green"))
    with pytest.raises(ValueError, match="min_gap"):
        RelationalDataset(min_gap=40, object_size=(0.2, 0.25))
    with pytest.raises(ValueError, match="relation"):
        RelationalDataset(relation="size")


def _pair_logits(model, images: list[torch.Tensor]) -> torch.Tensor:
    """Logit of "same" minus logit of "different" for the four pairs (a, a), (a, b), (b, a), (b, b)."""
    with torch.no_grad():
        out = model(torch.stack(images).double())  # (4, 2)
    return out[:, 1] - out[:, 0]


def test_classification_baseline_is_additive_in_the_two_objects() -> None:
    """The demo's baseline sees one object at a time: its logit is u(first) + v(second), so (a, a) + (b, b) equals
    (a, b) + (b, a), and at most 3 of a placement's 4 pairs are on the right side; a GloRe unit breaks this."""
    config = _demo_config("demo.yaml")
    dataset = create_dataset(config.data.name, split="val", num_samples=6, **config.data.kwargs)
    torch.manual_seed(0)
    baseline, glore = _network(config, glore=None), _network(config)
    pairs = (("red", "red"), ("red", "blue"), ("blue", "red"), ("blue", "blue"))
    broken = 0
    for index in range(len(dataset)):
        images = []
        for pair in pairs:
            scene = dataset.scene(index, pair=pair)
            images.append((torch.from_numpy(scene.image).permute(2, 0, 1).float() / 255 - 0.5) / 0.25)
        base = _pair_logits(baseline, images)
        scale = base.abs().max().item() + 1e-6
        assert abs((base[0] + base[3] - base[1] - base[2]).item()) < 1e-10 * scale
        labels = torch.tensor([1, 0, 0, 1], dtype=torch.bool)
        assert int(((base > 0) == labels).sum()) <= 3
        g = _pair_logits(glore, images)
        broken += abs((g[0] + g[3] - g[1] - g[2]).item()) > 1e-7 * (g.abs().max().item() + 1e-6)
    assert broken == len(dataset)


def test_video_baseline_is_additive_in_the_two_colours() -> None:
    config = _demo_config("demo_video.yaml")
    dataset = create_dataset(config.data.name, split="val", num_samples=4, **config.data.kwargs)
    torch.manual_seed(0)
    baseline, glore = _network(config, glore=None), _network(config)
    for index in range(len(dataset)):
        clips = []
        for pair in ((0, 0), (0, 1), (1, 0), (1, 1)):
            clip, label = dataset.clip(index, colours=pair)
            assert label == int(pair[0] == pair[1])
            clips.append((torch.from_numpy(clip).float().permute(3, 0, 1, 2) - 0.5) / 0.25)  # (3, T, H, W)
        base, g = _pair_logits(baseline, clips), _pair_logits(glore, clips)
        assert abs((base[0] + base[3] - base[1] - base[2]).item()) < 1e-10 * (base.abs().max().item() + 1e-6)
        assert abs((g[0] + g[3] - g[1] - g[2]).item()) > 1e-7 * (g.abs().max().item() + 1e-6)


def test_segmentation_plain_head_cannot_see_the_marker_from_an_object() -> None:
    """With the marker's colour changed (the rest of the image kept), the plain FCN's logits on every object pixel
    stay the same, so it labels at most half of them right with two colours; the GloRe head's change."""
    from glore.data import RelationalSegDataset

    config = _demo_config("demo_segmentation.yaml")
    dataset = RelationalSegDataset("val", num_samples=4, **config.data.kwargs)
    torch.manual_seed(0)
    plain = _network(config, head="fcn")
    glore = _network(config, head="glore", unit_args={"zero_init": False})  # as the recipe's head starts

    def logits(model, image: np.ndarray) -> torch.Tensor:
        x = (torch.from_numpy(image).permute(2, 0, 1).double() / 255 - 0.5) / 0.25
        with torch.no_grad():
            out = model(x[None])
        return (out["out"] if isinstance(out, dict) else out)[0]  # (K, H, W)

    for index in range(len(dataset)):
        (red, red_mask), (green, green_mask) = dataset.generate(index, "red"), dataset.generate(index, "green")
        objects = (red_mask != 0) & (red_mask != 255)
        assert objects.any() and np.array_equal(objects, (green_mask != 0) & (green_mask != 255))
        assert set(np.unique(red_mask[objects])) == {1} and set(np.unique(green_mask[objects])) == {2}
        assert np.array_equal(red[~(red_mask == 255)], green[~(red_mask == 255)])  # only the marker differs
        where = torch.from_numpy(objects)
        a, b = logits(plain, red)[:, where], logits(plain, green)[:, where]
        assert torch.allclose(a, b, rtol=0, atol=1e-10 * (a.abs().max().item() + 1e-6))
        c, d = logits(glore, red)[:, where], logits(glore, green)[:, where]
        assert (c - d).abs().max() > 1e-7 * c.abs().max()
