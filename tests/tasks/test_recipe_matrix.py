"""Every recipe of configs/ (found by glob: a new recipe joins by itself) runs as shipped through the commands a user
types: ``glore train`` (to a validation and a checkpoint), ``glore train --resume`` (one epoch or iteration further),
``glore eval`` in the inference mode the recipe documents (its ``glore eval`` line: 10 x 3 views, predictions for the
official Cityscapes script; the multi-scale, flip and sliding-window options its comments name) and ``glore predict``
on one file of the task.

The data is written in each dataset's real layout (tests/recipe_layouts.py), small. The only overrides are paths,
sizes (image, crop and clip sizes, batches, epochs or iterations, sample counts) and worker counts: precision,
memory format, optimiser, schedule, heads, units and the files a run writes (report.md too) stay as the recipe ships
them. ``check_overrides`` refuses
anything else, so the matrix cannot drift from what users run.
"""

from __future__ import annotations

import csv
import fnmatch
import json
import math
import re
import shlex
import shutil
import types
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from recipe_layouts import LAYOUTS, write_image, write_video

from glore.cli import main
from glore.data import list_datasets

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RECIPES = sorted(CONFIGS.rglob("*.yaml"))

# What a test may change in a recipe (fnmatch patterns over dotted keys); everything else stays as shipped.
PATH_KEYS = ("data.root", "output.dir", "model.pretrained")
SIZE_KEYS = (
    "data.image_size",
    "data.batch_size",
    "data.val_batch_size",
    "data.kwargs.image_size",
    "data.*kwargs.crop_size",
    "data.*kwargs.short_side",
    "data.*kwargs.test_short_side",
    "data.*kwargs.num_samples",
    "train.epochs",
    "train.iterations",
    "train.eval_every",
    "train.eval_every_iters",
    "task_args.crop_size",
    "task_args.crop",
    "task_args.stride",
)
WORKER_KEYS = ("data.num_workers",)
ALLOWED_OVERRIDES = PATH_KEYS + SIZE_KEYS + WORKER_KEYS

# Inference options a recipe's comments may document (``--set task_args.mode=slide``): part of its own protocol.
INFERENCE_KEYS = ("task_args.mode", "task_args.scales", "task_args.flip", "data.val_kwargs.*")

# Sizes of the generated data and the networks' inputs.
IMAGE = 64  # classification inputs
SEG = (32, 64)  # Cityscapes-shaped images (height, width) and the training crop
WINDOW, STRIDE = 32, 21  # sliding-window inference
CLIP = 32  # video crops (frames and frame interval stay as shipped)
RELATIONAL = {"train": 4, "val": 4}  # samples of the generated data


def forbidden_overrides(overrides: list[str]) -> list[str]:
    """The overrides whose key is not a path, a size or a worker count (``ALLOWED_OVERRIDES``)."""
    keys = [text.split("=", 1)[0] for text in overrides]
    return [key for key in keys if not any(fnmatch.fnmatchcase(key, pattern) for pattern in ALLOWED_OVERRIDES)]


def check_overrides(overrides: list[str]) -> list[str]:
    """``overrides`` when each one is allowed; an AssertionError naming the others otherwise. A weights path must be a
    local file (a recipe's URL is replaced by a file written by the test, never downloaded)."""
    forbidden = forbidden_overrides(overrides)
    assert not forbidden, f"the recipe matrix may override paths, sizes and worker counts only, not {forbidden}"
    for text in overrides:
        key, value = text.split("=", 1)
        if key == "model.pretrained":
            assert Path(value).is_file(), f"model.pretrained={value}: expected a local file written by the test"
    return overrides


def _sets(overrides: list[str]) -> list[str]:
    return [arg for text in overrides for arg in ("--set", text)]


# ---------------------------------------------------------------------------------------------------------------------
# What a recipe documents about its inference.


def documented_eval(text: str) -> tuple[list[str], str | None, tuple[int, int] | None]:
    """From a recipe's comments: the ``--set`` options and ``--save-predictions`` of its ``glore eval`` command (a
    line, continued by a trailing backslash), and the views it promises (``# 10 x 3 views``, ``10 clips x 3 crops``)."""
    comments = [line[1:].strip() for line in text.splitlines() if line.startswith("#")]
    sets: list[str] = []
    save = None
    views = None
    for i, line in enumerate(comments):
        if not line.startswith("glore eval "):
            continue
        command, notes = "", ""
        for part in comments[i:]:
            code, *note = re.split(r"\s+#\s", part, maxsplit=1)
            code = code.rstrip()
            notes += " " + " ".join(note)
            if not code.endswith("\\"):
                command += code
                break
            command += code[:-1] + " "
        tokens = shlex.split(command)
        for flag, value in zip(tokens, tokens[1:], strict=False):
            if flag == "--set":
                sets.append(value)
            elif flag == "--save-predictions":
                save = value
        found = re.search(r"(\d+)\s+(?:clips\s+)?x\s+(\d+)\s+(?:views|crops)", notes)
        if found:
            views = (int(found.group(1)), int(found.group(2)))
    return sets, save, views


def documented_inference_options(text: str) -> list[list[str]]:
    """The inference modes a recipe's comments offer: for each comment line that names ``--set KEY=VALUE`` options of
    ``INFERENCE_KEYS`` (``--set task_args.mode=slide``; ``--set task_args.scales=[...] --set task_args.flip=true``),
    those options."""
    modes = []
    for line in text.splitlines():
        _, _, comment = line.partition("#")
        found = re.findall(r"--set\s+(\S+=[^\s`]+)", comment)
        options = [o for o in found if any(fnmatch.fnmatchcase(o.split("=")[0], p) for p in INFERENCE_KEYS)]
        if options and options not in modes:
            modes.append(options)
    return modes


# ---------------------------------------------------------------------------------------------------------------------
# A recipe's overrides and inputs.


def _has(section: dict[str, Any], key: str) -> bool:
    return isinstance(section, dict) and key in section


def size_overrides(recipe: dict[str, Any], *, longer: bool = False) -> list[str]:
    """Sizes small enough for a CPU: tiny inputs, one step an epoch, the fewest epochs the recipe's warm-up allows
    (validated at the end), or one iteration; ``longer``: one epoch or iteration more, for ``--resume``. Every other
    setting stays as shipped."""
    task, data = recipe.get("task", "classification"), recipe.get("data", {})
    out = ["data.num_workers=0", "data.batch_size=2"]
    if task == "video":  # every view of a test video in one batch (10 x 3): small batches cost more per clip
        out.append("data.val_batch_size=30")
    train = recipe.get("train", {})
    if train.get("iterations") is not None:
        out += [f"train.iterations={1 + longer}", "train.eval_every_iters=1"]
    else:
        epochs = max(1, math.ceil(recipe.get("schedule", {}).get("warmup_epochs") or 0))
        out += [f"train.epochs={epochs + longer}", f"train.eval_every={epochs}"]
    if data.get("name", "").startswith("relational"):  # generated data, at its own (small) image size
        out += [
            f"data.train_kwargs.num_samples={RELATIONAL['train']}",
            f"data.val_kwargs.num_samples={RELATIONAL['val']}",
        ]
    elif task == "classification":
        out.append(f"data.image_size={IMAGE}")
    elif task == "segmentation":
        out.append(f"data.image_size={SEG[0]}")  # the size report.md profiles at
        out.append(f"task_args.crop_size=[{SEG[0]},{SEG[1]}]")
    elif task == "video":
        out.append(f"data.image_size={CLIP}")  # the size report.md profiles at
        out += [f"data.kwargs.crop_size={CLIP}", f"data.kwargs.short_side=[{CLIP},{CLIP + 8}]"]
        out.append(f"data.kwargs.test_short_side={CLIP}")
        if _has(data.get("train_kwargs"), "short_side"):
            out.append(f"data.train_kwargs.short_side=[{CLIP},{CLIP + 8}]")
        if _has(data.get("val_kwargs"), "test_short_side"):
            out.append(f"data.val_kwargs.test_short_side={CLIP}")
    return out


def pretrained_file(recipe: dict[str, Any], tmp: Path) -> list[str]:
    """A recipe that names downloadable weights gets a local file of the same network instead (a state dict of the
    same keys, as torchvision's file has), so that the weights are loaded as the recipe says and nothing is
    fetched."""
    model = recipe.get("model", {})
    if not model.get("pretrained"):
        return []
    from glore.models import create_model

    path = tmp / "weights" / f"{model['name']}.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(create_model(model["name"], num_classes=1000).state_dict(), path)
    return [f"model.pretrained={path}"]


def predict_input(recipe: dict[str, Any], root: Path | None, tmp: Path) -> Path:
    """One input file of the task for ``glore predict``: a dataset image or video, or a file written for it."""
    task, name = recipe.get("task", "classification"), recipe.get("data", {}).get("name", "")
    if task == "video":
        if root is not None:
            return sorted(p for p in root.rglob("*") if p.suffix in (".mp4", ".avi"))[-1]
        return write_video(tmp / "input" / "clip.mp4", frames=12, size=(CLIP, CLIP))
    if root is not None and name == "cityscapes":
        return sorted((root / "leftImg8bit").rglob("*_leftImg8bit.png"))[-1]
    if root is not None:
        images = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if images:
            return images[-1]
    return write_image(tmp / "input" / "image.png", size=(40, 36), colour=(120, 60, 200))


# ---------------------------------------------------------------------------------------------------------------------
# The matrix.


def _run(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
@pytest.mark.parametrize("path", RECIPES, ids=[str(p.relative_to(CONFIGS).with_suffix("")) for p in RECIPES])
def test_recipe_trains_resumes_evaluates_and_predicts_as_shipped(path: Path, tmp_path: Path, capsys) -> None:
    text = path.read_text()
    recipe = yaml.safe_load(text)
    data = recipe.get("data", {})
    name = data.get("name", "relational")
    task = recipe.get("task", "classification")
    best = recipe.get("output", {}).get("best_metric")
    run = tmp_path / "run"

    root = None
    if name in LAYOUTS:
        same_data = [p for p in RECIPES if yaml.safe_load(p.read_text()).get("data", {}).get("name") == name]
        root = LAYOUTS[name](tmp_path / "data", data, variant=same_data.index(path))
    base = [f"output.dir={run}"] + ([f"data.root={root}"] if root is not None else [])
    base += pretrained_file(recipe, tmp_path)

    # glore train: at least one validation and one checkpoint.
    overrides = check_overrides(base + size_overrides(recipe))
    code, out, err = _run(capsys, ["train", str(path), *_sets(overrides)])
    assert code == 0, f"glore train {path.name} exited {code}: {err[-2000:]}"
    assert (run / "last.pt").is_file() and (run / "best.pt").is_file()
    assert "## Model profile" in (run / "report.md").read_text()  # written as every run writes it
    rows = _rows(run)
    metric = f"val_{best}" if best else next(k for k in rows[-1] if k.startswith("val_") and k != "val_loss")
    assert math.isfinite(float(rows[-1][metric])) and int(rows[-1]["step"]) >= 1
    first_step = int(rows[-1]["step"])

    # glore train --resume, one epoch (or iteration) further: it continues from the checkpoint.
    overrides = check_overrides(base + size_overrides(recipe, longer=True))
    code, out, err = _run(capsys, ["train", str(path), *_sets(overrides), "--resume"])
    assert code == 0, f"glore train --resume {path.name} exited {code}: {err[-2000:]}"
    rows = _rows(run)
    assert f"resuming after iteration {first_step}" in out + err
    assert int(rows[-1]["step"]) > first_step and math.isfinite(float(rows[-1][metric]))

    # glore eval as the recipe documents it, then with the inference options its comments name.
    sets, save, views = documented_eval(text)
    evals = [(sets, save)]
    evals += [(mode, None) for mode in documented_inference_options(text) if mode != sets]
    for documented, save in evals:
        overrides = check_overrides(base + size_overrides(recipe))
        if any(o.startswith("task_args.mode=slide") for o in documented):
            overrides += check_overrides(
                [f"task_args.crop=[{WINDOW},{WINDOW}]", f"task_args.stride=[{STRIDE},{STRIDE}]"]
            )
        args = ["eval", str(path), "--checkpoint", str(run / "best.pt"), "--json", *_sets(overrides + documented)]
        predictions = None
        if save is not None:
            predictions = tmp_path / Path(save).name
            args += ["--save-predictions", str(predictions)]
        code, out, err = _run(capsys, args)
        assert code == 0, f"glore eval {path.name} {documented} exited {code}: {err[-2000:]}"
        split = data.get("val_split", "val")
        metrics = json.loads(out.strip().splitlines()[-1])
        assert metrics[f"{split}_{best or metric.removeprefix('val_')}"] is not None
        if task == "video" and documented == sets and views is not None:
            assert metrics[f"{split}_count"] == metrics[f"{split}_videos"] * views[0] * views[1], (
                f"{path.name}: the documented {views[0]} x {views[1]} views gave {metrics[f'{split}_count']} views "
                f"of {metrics[f'{split}_videos']} videos"
            )
        if predictions is not None and name == "cityscapes":
            check_official_predictions(root, split, predictions)
        elif predictions is not None and task == "video":
            assert predictions.is_file()

    # glore predict on one file of the task.
    source = predict_input(recipe, root, tmp_path)
    code, out, err = _run(capsys, ["predict", str(run / "best.pt"), str(source)])
    assert code == 0, f"glore predict {path.name} exited {code}: {err[-2000:]}"
    assert out.startswith(f"{source}: ")
    shutil.rmtree(run)  # checkpoints of the large networks: hundreds of MB


def check_official_predictions(root: Path, split: str, folder: Path) -> None:
    """cityscapesScripts' ``csEvalPixelLevelSemanticLabeling`` finds exactly one prediction (the labelIds PNG) for
    every ground-truth file of ``split`` in ``folder``."""
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    args = types.SimpleNamespace(predictionPath=str(folder), predictionWalk=None)
    for truth in sorted((root / "gtFine" / split).rglob("*_gtFine_labelIds.png")):
        found = official.getPrediction(args, str(truth))
        assert found is not None and found.endswith("_pred_labelIds.png"), (truth, found)


# ---------------------------------------------------------------------------------------------------------------------
# The matrix's own rules.


def test_every_recipe_and_dataset_is_covered() -> None:
    assert len(RECIPES) >= 19 and (CONFIGS / "experiments" / "relational.yaml") in RECIPES
    built_in = {"relational", "relational_seg", "relational_video"}
    assert set(list_datasets()) - built_in == set(LAYOUTS), "a dataset without a generated layout"
    for path in RECIPES:
        assert yaml.safe_load(path.read_text()).get("data", {}).get("name", "relational") in set(LAYOUTS) | built_in


@pytest.mark.parametrize(
    "override",
    [
        "train.amp=none",
        "train.channels_last=false",
        "optim.lr=0.001",
        "optim.name=adamw",
        "schedule.name=constant",
        "model.glore=null",
        "model.glore_args.num_nodes=4",
        "model.kwargs.head=fcn",
        "model.num_classes=2",
        "task_args.precise_bn=0",
        "data.kwargs.num_frames=2",
        "train.sync_bn=false",
    ],
)
def test_the_matrix_refuses_an_override_that_changes_the_recipe(override: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(repr([override.split("=")[0]]))):
        check_overrides(["data.root=/data", override, "train.epochs=1"])


def test_the_matrix_allows_paths_sizes_and_workers(tmp_path: Path) -> None:
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"")
    allowed = ["data.root=/d", "output.dir=/o", f"model.pretrained={weights}", "data.num_workers=0"]
    allowed += ["data.train_kwargs.short_side=[32,40]", "data.val_kwargs.test_short_side=32", "task_args.crop=[8,8]"]
    assert check_overrides(allowed) == allowed
    with pytest.raises(AssertionError, match="expected a local file"):
        check_overrides(["model.pretrained=https://download.pytorch.org/models/resnet18-f37072fd.pth"])
    for recipe in RECIPES:
        loaded = yaml.safe_load(recipe.read_text())
        check_overrides(size_overrides(loaded) + size_overrides(loaded, longer=True))


def test_documented_inference_is_read_from_the_recipe() -> None:
    text = "#   glore eval c.yaml --checkpoint best.pt \\\n#       --set data.val_kwargs.num_clips=10  # 10 x 3 views\n"
    assert documented_eval(text) == (["data.val_kwargs.num_clips=10"], None, (10, 3))
    sets, save, views = documented_eval((CONFIGS / "kinetics_resnet50_3d_glore.yaml").read_text())
    assert sets and save is None and views == (10, 3)
    text = (CONFIGS / "cityscapes_fcn_resnet50_glore.yaml").read_text()
    sets, save, views = documented_eval(text)
    assert sets == [] and save == "preds/" and views is None
    assert documented_inference_options(text) == [
        ["task_args.mode=slide"],
        ["task_args.scales=[0.5,0.75,1.0,1.25,1.5,1.75]", "task_args.flip=true"],
    ]
