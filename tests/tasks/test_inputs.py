"""Task.load_input: a raw file becomes the tensor the task's evaluation dataset makes of it; unreadable files are
named; the base Task's defaults."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from glore.engine import Task, build_task, load_config
from glore.models import create_model


def _task(**sections):
    return build_task(load_config(sections))


def test_a_png_of_a_generated_picture_is_the_generated_sample(tmp_path):
    """The generated data's samples have no file; a PNG of one is normalised exactly as the dataset normalises it."""
    task = _task(data={"name": "relational", "transform": "none", "image_size": 32, "kwargs": {"image_size": 32}})
    dataset = task.build_dataset("val", train=False)
    for index in (0, 3):
        path = tmp_path / f"scene{index}.png"
        Image.fromarray(dataset.scene(index).image).save(path)
        batch = task.load_input(str(path))
        assert batch.inputs.shape == (1, 3, 32, 32) and batch.meta == {"file": [str(path)]}
        assert torch.equal(batch.inputs[0], dataset[index][0])
    seg = _task(
        task="segmentation",
        task_args={"aux_weight": 0.0},
        data={"name": "relational_seg", "transform": "none", "kwargs": {"image_size": 40}},
    )
    dataset = seg.build_dataset("val", train=False)
    path = tmp_path / "seg.png"
    Image.fromarray(dataset.generate(2)[0]).save(path)
    batch = seg.load_input(str(path))
    assert torch.equal(batch.inputs[0], dataset[2][0]) and batch.meta["size"] == [(40, 40)]


def test_an_image_file_goes_through_the_evaluation_transform(tmp_path):
    root = tmp_path / "images"
    for split in ("train", "val"):
        (root / split / "a").mkdir(parents=True)
        rng = np.random.default_rng(0)
        Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(root / split / "a" / "x.jpg")
    task = _task(data={"name": "imagefolder", "root": str(root), "image_size": 24, "eval_crop_ratio": 0.75})
    file = root / "val" / "a" / "x.jpg"
    batch = task.load_input(str(file))
    assert batch.inputs.shape == (1, 3, 24, 24)  # shorter side 32, centre crop 24
    assert torch.equal(batch.inputs[0], task.build_dataset("val", train=False)[0][0])
    assert task.input_size() == (24, 24)
    assert task.input_normalization() == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_unreadable_files_are_named(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match=r"INPUT '.*notes.jpg': not a readable image"):
        _task().load_input(str(bad))
    with pytest.raises(ValueError, match=r"INPUT '.*notes.jpg': not a readable image"):
        _task(task="segmentation", data={"name": "relational_seg"}).load_input(str(bad))
    pytest.importorskip("av")
    video = _task(task="video", data={"name": "videofolder", "root": str(tmp_path)})
    with pytest.raises(ValueError, match=r"INPUT '.*notes.jpg': not a readable video"):
        video.load_input(str(bad))


def test_the_base_task_defaults():
    class Plain(Task):
        def eval_step(self, model, batch):
            return model(batch.inputs) * 2

    task = Plain(load_config({}))
    with pytest.raises(NotImplementedError, match="Plain.load_input"):
        task.load_input("x.png")
    model = torch.nn.Identity()
    from glore.data import Batch

    x = torch.randn(1, 3, 4, 4)
    assert torch.equal(task.predict(model, Batch(x, None, {}, 0)), x * 2)  # predict is eval_step by default
    with torch.device("meta"):
        net = create_model("resnet_small_3d")
    assert task.input_size(net) == (8, 32, 32)  # the network's default config
    assert task.input_size() == (64, 64)  # data.image_size without a network
