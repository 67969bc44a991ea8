"""``glore eval --save-predictions``: a folder the official Cityscapes script evaluates as it is, colour images kept
apart, earlier predictions never mixed with new ones, and the image list of the official evaluation."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml
from PIL import Image
from recipe_layouts import write_cityscapes

from glore.cli import main
from glore.data import create_dataset

SIZE = (32, 64)  # (height, width)
VAL = [("aachen", 1), ("aachen", 2), ("bonn", 3)]
RECIPE = {
    "task": "segmentation",
    "task_args": {"aux_weight": 0.0, "crop_size": [32, 32], "mode": "whole"},
    "model": {"name": "fcn_resnet_small", "num_classes": 19, "kwargs": {"head": "glore"}},
    "data": {"name": "cityscapes", "batch_size": 1, "num_workers": 0, "kwargs": {}},
    "optim": {"name": "sgd", "lr": 0.01},
    "train": {"epochs": 1, "device": "cpu", "progress": "off"},
    "output": {"tensorboard": False, "plots": False, "report": False},
}


def glore(*args: object) -> tuple[int, str]:
    """``glore ARGS`` in this process: exit status and what it printed to stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main([str(a) for a in args])
    return code, err.getvalue()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(dataset root, recipe, checkpoint) of a segmentation network trained for one step on a Cityscapes tree."""
    base = tmp_path_factory.mktemp("cs_eval")
    root = write_cityscapes(base / "cityscapes", {"train": [("zurich", 4)], "val": VAL}, SIZE)
    recipe = base / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({**RECIPE, "data": {**RECIPE["data"], "root": str(root)}}))
    assert glore("train", recipe, "--output", base / "run")[0] == 0
    return root, recipe, base / "run" / "last.pt"


def official_evaluation(root: Path, results: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """cityscapesscripts' csEvalPixelLevelSemanticLabeling over ``results``, as its documentation runs it (numpy 2
    lacks the ``np.in1d`` its instance evaluation calls: aliased to ``np.isin``)."""
    code = (
        "import numpy as np, runpy; np.in1d = np.isin; "
        "runpy.run_module('cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling', run_name='__main__')"
    )
    env = {
        **os.environ,
        "CITYSCAPES_DATASET": str(root),
        "CITYSCAPES_RESULTS": str(results),
        "CITYSCAPES_EXPORT_DIR": str(tmp_path),
    }
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_the_official_script_evaluates_the_folder_and_colours_go_elsewhere(trained, tmp_path):
    root, recipe, checkpoint = trained
    preds = tmp_path / "preds"
    code, err = glore("eval", recipe, "--checkpoint", checkpoint, "--save-predictions", preds, "--color")
    assert code == 0, err
    stems = sorted(f"{city}_000123_{frame:06d}" for city, frame in VAL)
    assert sorted(p.name for p in preds.iterdir()) == [f"{s}_pred_labelIds.png" for s in stems]
    colors = tmp_path / "preds_color"
    assert sorted(p.name for p in colors.iterdir()) == [f"{s}_pred_color.png" for s in stems]
    with Image.open(colors / f"{stems[0]}_pred_color.png") as png:
        assert png.mode == "RGB" and png.size == (SIZE[1], SIZE[0])
    result = official_evaluation(root, preds, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Found multiple predictions" not in result.stdout
    assert "Score Average" in result.stdout


def test_an_explicit_colour_folder(trained, tmp_path):
    _, recipe, checkpoint = trained
    preds, colors = tmp_path / "preds", tmp_path / "vis" / "colour"
    code, err = glore("eval", recipe, "--checkpoint", checkpoint, "--save-predictions", preds, "--color", colors)
    assert code == 0, err
    assert len(list(colors.glob("*_pred_color.png"))) == 3 and not list(preds.glob("*color*"))


def test_earlier_predictions_are_refused_then_replaced_whole(trained, tmp_path):
    root, recipe, checkpoint = trained
    preds = tmp_path / "preds"
    assert glore("eval", recipe, "--checkpoint", checkpoint, "--save-predictions", preds)[0] == 0
    stale = preds / "berlin_000000_000001_pred_labelIds.png"  # an image that is not evaluated this time
    stale.write_bytes((preds / "bonn_000123_000003_pred_labelIds.png").read_bytes())
    code, err = glore("eval", recipe, "--checkpoint", checkpoint, "--save-predictions", preds)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--save-predictions folder" in err and "--overwrite" in err and str(preds) in err
    code, err = glore("eval", recipe, "--checkpoint", checkpoint, "--save-predictions", preds, "--overwrite")
    assert code == 0, err
    assert not stale.exists() and len(list(preds.iterdir())) == 3
    (preds / "notes.txt").write_text("mine")
    code, err = glore("eval", recipe, "--checkpoint", checkpoint, "--save-predictions", preds, "--overwrite")
    assert code == 2 and "'notes.txt'" in err and "did not write" in err
    assert (preds / "notes.txt").read_text() == "mine"


def test_the_image_list_is_the_gtfine_list(trained, tmp_path):
    root, _, _ = trained
    extra = root / "leftImg8bit" / "val" / "bonn" / "bonn_000123_000009_leftImg8bit.jpg"
    Image.new("RGB", (SIZE[1], SIZE[0])).save(extra)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dataset = create_dataset("cityscapes", root, "val")
        assert len(dataset) == 3
        assert any("bonn_000123_000009_leftImg8bit.jpg" in str(w.message) for w in caught)
    finally:
        extra.unlink()
    image = root / "leftImg8bit" / "val" / "aachen" / "aachen_000123_000002_leftImg8bit.png"
    kept = image.read_bytes()
    image.unlink()
    try:
        with pytest.raises(FileNotFoundError, match=r"image .*aachen_000123_000002_leftImg8bit\.png.* for gtFine file"):
            create_dataset("cityscapes", root, "val")
    finally:
        image.write_bytes(kept)


def test_predict_writes_the_label_ids_eval_writes(trained, tmp_path):
    root, recipe, checkpoint = trained
    preds = tmp_path / "preds"
    assert glore("eval", recipe, "--checkpoint", checkpoint, "--save-predictions", preds)[0] == 0
    image = root / "leftImg8bit" / "val" / "bonn" / "bonn_000123_000003_leftImg8bit.png"
    labels = tmp_path / "labels"
    code, err = glore("predict", checkpoint, image, "--output", tmp_path / "vis", "--label-ids", labels)
    assert code == 0, err
    written = labels / "bonn_000123_000003_pred_labelIds.png"
    assert [p.name for p in labels.iterdir()] == [written.name]
    assert written.read_bytes() == (preds / written.name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "vis").iterdir()) == [
        "bonn_000123_000003_leftImg8bit_mask.png",
        "bonn_000123_000003_leftImg8bit_overlay.png",
    ]
