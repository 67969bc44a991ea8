"""``glore predict`` on checkpoints of the three tasks: classes with names, masks and overlays, video classes."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from PIL import Image

from glore.cli import main


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
    checkpoint = tmp_path / "segmentation" / "glore" / "best.pt"
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
    assert main(["predict", str(tmp_path / "video" / "glore" / "best.pt"), str(path)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{path}: ") and "same" in line and "different" in line
