"""``glore demo segmentation`` and ``glore demo video`` run end to end (quick mode) and report both networks."""

from __future__ import annotations

import pytest
from PIL import Image

from glore.cli import main
from glore.engine import load_checkpoint


@pytest.mark.slow
@pytest.mark.parametrize(
    ("task", "header", "glore_label"),
    [
        ("segmentation", "| model | head | test miou | test pixel acc | best val miou |", "| glore | glore |"),
        ("video", "| model | GloRe units | test video top1 | test clip top1 |", "| glore | res3:1,res4:1 |"),
    ],
)
def test_task_demo_quick(tmp_path, capsys, task, header, glore_label):
    assert main(["demo", task, "--quick", "--output", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert header in printed and glore_label in printed and "sampling noise" in printed
    out = tmp_path / task
    for name in ("report.md", "curves.png", "baseline/best.pt", "glore/best.pt"):
        assert (out / name).is_file(), name
    baseline = load_checkpoint(out / "baseline" / "best.pt")
    assert baseline["task"] == task
    if task == "segmentation":
        assert baseline["model_config"]["head"] == "fcn"
    else:
        assert baseline["model_config"]["glore"] is None
    # glore visualize draws the unit's projection maps over the image, or over the clip's frames side by side
    assert main(["visualize", str(out / "glore" / "best.pt"), "--samples", "2", "--out", str(tmp_path / "vis")]) == 0
    figures = sorted((tmp_path / "vis").glob("val*.png"))
    units = 1 if task == "segmentation" else 2  # the head's unit; the units after res3 and res4
    assert len(figures) == 2 * units
    with Image.open(figures[0]) as png:
        assert png.size[0] > 0 and png.size[1] > 0
