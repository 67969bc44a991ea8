"""``glore predict`` on checkpoints of the three tasks: classes with names, masks and overlays, video classes; and
for each task, the scores ``glore predict FILE`` computes are the ones ``glore eval`` computes for the same file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from glore.cli import main
from glore.tasks import ClassificationTask, SegmentationTask, VideoTask

OUTPUT = {"tensorboard": False, "plots": False, "report": False}
TRAIN = {"epochs": 1, "device": "cpu", "progress": "off", "log_every": 1}


@pytest.fixture
def record(monkeypatch):
    """``record(cls, method)`` wraps ``cls.method(model, batch)`` and returns the list its (inputs, output) pairs
    go to."""

    def make(cls: type, method: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
        outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        original = getattr(cls, method)

        def wrapper(self: Any, model: Any, batch: Any) -> Any:
            out = original(self, model, batch)
            outputs.append((batch.inputs.clone(), out.detach().float().clone()))
            return out

        monkeypatch.setattr(cls, method, wrapper)
        return outputs

    return make


def _train(tmp_path: Path, recipe: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``recipe`` as a YAML file, train it for an epoch with ``glore train``: (recipe file, best.pt)."""
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["train", str(path), "--output", str(tmp_path / "run")]) == 0
    return path, tmp_path / "run" / "best.pt"


def _eval_then_predict(record, cls: type, recipe: Path, checkpoint: Path, file: Path) -> tuple[torch.Tensor, ...]:
    """The network inputs and outputs of ``glore eval`` on the recipe's validation split (``eval_step``'s,
    concatenated over batches), then of ``glore predict`` on ``file`` (``Task.predict``'s):
    ``(eval_inputs, eval_outputs, predict_inputs, predict_outputs)``."""
    evaluated = record(cls, "eval_step")
    assert main(["eval", str(recipe), "--checkpoint", str(checkpoint)]) == 0
    eval_inputs, eval_outputs = (torch.cat(list(parts)) for parts in zip(*evaluated, strict=True))
    predicted = record(cls, "predict")
    args = ["predict", str(checkpoint), str(file)]
    if cls is SegmentationTask:
        args += ["--output", str(checkpoint.parent / "predicted")]
    assert main(args) == 0
    assert len(predicted) == 1
    return eval_inputs, eval_outputs, *predicted[0]


def _noise_image(path: Path, height: int, width: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    coarse = rng.random((height // 8 + 1, width // 8 + 1, 3))  # smooth blobs: a photo more than pixel noise
    image = np.kron(coarse, np.ones((8, 8, 1)))[:height, :width] * 255
    Image.fromarray(image.astype(np.uint8)).save(path)


def test_classification_predict_gives_the_logits_eval_gives(tmp_path, record, capsys):
    root = tmp_path / "images"
    for split, seed in (("train", 0), ("val", 5)):
        for k, name in enumerate(("cat", "dog")):
            (root / split / name).mkdir(parents=True)
            # a JPEG over twice the resize size: the datasets decode it at reduced scale (Image.draft)
            _noise_image(root / split / name / "a.jpg", 90 + 10 * k, 130, seed + k)
    recipe = {
        "model": {"name": "resnet_small", "glore": "res4:1", "kwargs": {"widths": [8, 8, 16, 16], "stem_width": 8}},
        "data": {"name": "imagefolder", "root": str(root), "image_size": 32, "batch_size": 2, "num_workers": 0},
        "train": TRAIN,
        "output": OUTPUT,
    }
    recipe_file, checkpoint = _train(tmp_path, recipe)
    file = root / "val" / "cat" / "a.jpg"
    capsys.readouterr()
    inputs, evaluated, predict_inputs, predicted = _eval_then_predict(
        record, ClassificationTask, recipe_file, checkpoint, file
    )
    assert evaluated.shape == (2, 2) and predict_inputs.shape == (1, 3, 32, 32) and predicted.shape == (1, 2)
    assert torch.equal(predict_inputs[0], inputs[0])  # the same file: the same tensor, bit for bit
    # the same logits (up to the rounding of a batch of two against a batch of one)
    torch.testing.assert_close(predicted[0], evaluated[0], rtol=0, atol=1e-5)
    # the printed probabilities are eval's
    line = capsys.readouterr().out.strip().splitlines()[-1]
    probs = evaluated[0].softmax(0)
    shown = {name: float(p) for name, p in (part.rsplit(" ", 1) for part in line.split(": ", 1)[1].split(", "))}
    assert shown == {"cat": round(float(probs[0]), 3), "dog": round(float(probs[1]), 3)}
    # squashing the photo to a square, as glore predict once did, gives the network another input
    from glore.engine import load_model
    from glore.tasks._inputs import read_input_image

    d = yaml.safe_load(recipe_file.read_text())["data"]
    squashed = np.asarray(read_input_image(str(file)).resize((32, 32), Image.BILINEAR), dtype=np.float32) / 255
    x = (
        torch.from_numpy(squashed).permute(2, 0, 1) - torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    ) / torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    assert d["image_size"] == 32
    with torch.no_grad():
        assert not torch.allclose(load_model(checkpoint)(x[None])[0], evaluated[0], atol=1e-4)


def test_segmentation_predict_gives_the_probabilities_eval_gives(tmp_path, record):
    root = tmp_path / "seg"
    root.mkdir()
    (root / "classes.txt").write_text("ground\nsky\nthing\n")
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "masks" / split).mkdir(parents=True)
        _noise_image(root / "images" / split / "a.png", 40, 56, 1 if split == "train" else 2)
        mask = rng.integers(0, 3, (40, 56)).astype(np.uint8)
        Image.fromarray(mask, mode="L").save(root / "masks" / split / "a.png")
    recipe = {
        "task": "segmentation",
        # the evaluation the recipes can ask for: resized, sliding windows, two scales and flips
        "task_args": {
            "aux_weight": 0.4,
            "crop_size": [32, 32],
            "eval_resize": 0.8,
            "mode": "slide",
            "crop": [24, 24],
            "stride": [16, 16],
            "scales": [1.0, 0.75],
            "flip": True,
        },
        "model": {"name": "fcn_resnet_small", "kwargs": {"head_channels": 16, "num_nodes": 4, "num_state": 8}},
        "data": {"name": "segfolder", "root": str(root), "mean": [0.4, 0.5, 0.6], "batch_size": 1, "num_workers": 0},
        "train": TRAIN,
        "output": {**OUTPUT, "best_metric": "miou"},
    }
    recipe_file, checkpoint = _train(tmp_path, recipe)
    file = root / "images" / "val" / "a.png"
    inputs, evaluated, predict_inputs, predicted = _eval_then_predict(
        record, SegmentationTask, recipe_file, checkpoint, file
    )
    assert predict_inputs.shape == (1, 3, 32, 45)  # resized by 0.8
    assert torch.equal(predict_inputs, inputs)
    assert evaluated.shape == predicted.shape == (1, 3, 40, 56)  # at the file's resolution
    torch.testing.assert_close(predicted, evaluated, rtol=0, atol=1e-6)
    with Image.open(checkpoint.parent / "predicted" / "a_mask.png") as png:
        assert png.size == (56, 40)


def _write_video(path: Path, frames: int, height: int, width: int, seed: int) -> None:
    av = pytest.importorskip("av")
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
        for _ in range(frames):
            frame = np.kron(rng.integers(0, 256, (height // 8, width // 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_video_predict_gives_the_view_logits_eval_gives(tmp_path, record, capsys):
    root = tmp_path / "videos"
    for split in ("train", "val"):
        for k, name in enumerate(("jump", "run")):
            _write_video(root / split / name / "a.mp4", 12 + 4 * k, 32, 48, 3 * k + (split == "val"))
    recipe = {
        "task": "video",
        "model": {"name": "resnet_small_3d", "glore": "res4:1"},
        "data": {
            "name": "videofolder",
            "root": str(root),
            "mean": [0.45, 0.45, 0.45],
            "std": [0.25, 0.25, 0.25],
            "batch_size": 2,
            "num_workers": 0,
            "kwargs": {"num_frames": 4, "interval": 2, "crop_size": 24},
            "train_kwargs": {"short_side": [26, 30]},
            "val_kwargs": {"num_clips": 2, "num_crops": 3, "test_short_side": 28},  # 2 x 3 views a video
        },
        "train": TRAIN,
        "output": {**OUTPUT, "best_metric": "video_top1"},
    }
    recipe_file, checkpoint = _train(tmp_path, recipe)
    file = root / "val" / "jump" / "a.mp4"
    capsys.readouterr()
    inputs, evaluated, predict_inputs, predicted = _eval_then_predict(record, VideoTask, recipe_file, checkpoint, file)
    assert evaluated.shape == (12, 2) and predicted.shape == (6, 2)  # two videos, six views each
    assert predict_inputs.shape == (6, 3, 4, 24, 24)
    assert torch.equal(predict_inputs, inputs[:6])
    torch.testing.assert_close(predicted, evaluated[:6], rtol=0, atol=1e-5)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    top = evaluated[:6].softmax(1).mean(0).max()  # the video's softmax averaged over its views, as eval's
    assert line.endswith(f" {float(top):.3f}") or f" {float(top):.3f}," in line


def test_classification_prints_named_top_classes(tmp_path, capsys, tiny_recipe):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe(train={"progress": "off"})))
    assert main(["train", str(recipe), "--output", str(tmp_path / "run")]) == 0
    image = tmp_path / "scene.jpg"
    Image.fromarray((np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)).save(image)
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "run" / "best.pt"), str(image), "--topk", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{image}: ") and ("same" in line or "different" in line)
    assert len(line.split(", ")) == 2
    assert main(["predict", str(tmp_path / "run" / "best.pt"), str(tmp_path / "absent.jpg")]) == 2
    assert "absent.jpg" in capsys.readouterr().err


@pytest.mark.slow
def test_segmentation_writes_mask_and_overlay(tmp_path, capsys):
    assert main(["demo", "segmentation", "--quick", "--output", str(tmp_path)]) == 0
    image = tmp_path / "street.png"
    Image.fromarray((np.random.default_rng(1).random((48, 64, 3)) * 255).astype(np.uint8)).save(image)
    capsys.readouterr()
    checkpoint = next((tmp_path / "segmentation" / "glore").rglob("best.pt"))  # glore/seed0/best.pt
    assert main(["predict", str(checkpoint), str(image), "--output", str(tmp_path / "pred")]) == 0
    assert "street_mask.png" in capsys.readouterr().out
    for name in ("street_mask.png", "street_overlay.png"):
        with Image.open(tmp_path / "pred" / name) as png:
            assert png.size == (64, 48) and png.mode == "RGB"


@pytest.mark.slow
def test_video_prints_top_classes(tmp_path, capsys):
    av = pytest.importorskip("av")
    assert main(["demo", "video", "--quick", "--output", str(tmp_path)]) == 0
    path = tmp_path / "clip.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.height, stream.width, stream.pix_fmt = 32, 48, "yuv420p"
        for i in range(20):
            frame = np.full((32, 48, 3), 10 * i, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    capsys.readouterr()
    checkpoint = next((tmp_path / "video" / "glore").rglob("best.pt"))
    assert main(["predict", str(checkpoint), str(path)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{path}: ") and "same" in line and "different" in line
