"""A user's transform named in a config (``data.transform: "package.module:factory"``): imported when the config
loads, called with ``train``, and given to the datasets of each task in place of glore's own."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from recipe_layouts import write_imagefolder, write_segfolder, write_video

from glore.data import load_transform
from glore.engine import build_task, load_config
from glore.engine.config import ConfigError

FACTORIES = textwrap.dedent(
    """
    import numpy as np
    import torch

    def image(train):
        def transform(picture, generator=None):  # (3, 8, 8): 1 in training, 2 at evaluation
            return torch.full((3, 8, 8), 1.0 if train else 2.0) + torch.zeros(()).uniform_(generator=generator) * 0
        return transform

    def segment(train):
        def transform(picture, masks, generator=None):
            array = np.asarray(picture)[:8, :8]  # (8, 8, 3) top-left corner, unnormalised
            cut = [torch.from_numpy(m[:8, :8].copy()) for m in masks]
            return torch.from_numpy(array.copy()).permute(2, 0, 1).float(), cut
        return transform

    def clip(train):
        def transform(frames, generator=None, *, crop=0):  # (T, H, W, 3) uint8 -> (3, T, 8, 8) grey levels
            return frames[:, :8, :8].permute(3, 0, 1, 2).float() + (100.0 if train else 0.0)
        return transform

    NOT_CALLABLE = 3
    """
)


@pytest.fixture
def factories(tmp_path, monkeypatch) -> str:
    (tmp_path / "my_augment.py").write_text(FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_augment"


def test_a_classification_config_uses_the_factory(tmp_path, factories):
    root = write_imagefolder(tmp_path / "images", ["a", "b"], {"train": 1, "val": 1})
    data = {"name": "imagefolder", "root": str(root), "transform": f"{factories}:image", "num_workers": 0}
    task = build_task(load_config({"data": data}))
    image, label = task.build_dataset("train", train=True)[0]
    assert torch.equal(image, torch.full((3, 8, 8), 1.0)) and label == 0
    assert torch.equal(task.build_dataset("val", train=False)[1][0], torch.full((3, 8, 8), 2.0))
    # the settings glore's own transform would have read are refused as unused
    with pytest.raises(ConfigError, match="data.mean: .*data.transform is a user's factory"):
        load_config({"data": {**data, "mean": [0.5, 0.5, 0.5]}})


def test_a_segmentation_config_uses_the_factory(tmp_path, factories):
    root = write_segfolder(tmp_path / "seg", ["x", "y", "z"], {"train": 1, "val": 1}, (12, 16))
    data = {"name": "segfolder", "root": str(root), "transform": f"{factories}:segment", "num_workers": 0}
    task = build_task(load_config({"task": "segmentation", "data": data}))
    image, mask, meta = task.build_dataset("train", train=True)[0]
    assert image.shape == (3, 8, 8) and image.max() > 1  # grey levels: the factory's, not glore's normalisation
    assert mask.shape == (8, 8) and (mask[0] == 255).all()


def test_a_video_config_uses_the_factory(tmp_path, factories):
    video = write_video(tmp_path / "grey.mp4", frames=12)
    for split in ("train", "val"):
        (tmp_path / "videos" / split / "run").mkdir(parents=True)
        (tmp_path / "videos" / split / "run" / "r.mp4").write_bytes(video.read_bytes())
    kwargs = {"num_frames": 2, "interval": 1, "crop_size": 16, "short_side": [16, 16], "test_short_side": 16}
    data = {"name": "videofolder", "root": str(tmp_path / "videos"), "transform": f"{factories}:clip"}
    task = build_task(load_config({"task": "video", "data": {**data, "kwargs": kwargs, "num_workers": 0}}))
    clip, _, _ = task.build_dataset("train", train=True)[0]
    assert clip.shape == (3, 2, 8, 8) and clip.min() >= 100  # the training factory's
    clip, _, _ = task.build_dataset("val", train=False)[0]
    assert clip.shape == (3, 2, 8, 8) and clip.max() < 100


@pytest.mark.parametrize(
    "spec,message",
    [
        ("my_augment", "expected 'standard', 'none' or 'package.module:callable', got 'my_augment'"),
        ("no_such_module_here:image", "cannot import 'no_such_module_here'"),
        ("my_augment:missing", "'my_augment' has no 'missing'"),
        ("my_augment:NOT_CALLABLE", "'my_augment:NOT_CALLABLE' is a int, not a callable"),
    ],
)
def test_a_bad_factory_fails_when_the_config_loads(factories, spec, message):
    with pytest.raises(ConfigError, match=f"data.transform: {message}"):
        load_config({"data": {"name": "relational", "transform": spec}})
    with pytest.raises(ValueError, match=message):
        load_transform(spec)


def test_a_dotted_name_is_followed(factories):
    assert load_transform("glore.data.transforms:build_transform") is not None
    assert load_transform("pathlib:Path.cwd")() == Path.cwd()
