"""Users' mistakes through the ``glore`` command: exit status 2, one line naming the argument or file, no traceback;
a finished run is never overwritten; --version, --print-config, --debug."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from glore.cli import main

GLORE = Path(sys.executable).with_name("glore")


@pytest.fixture
def recipe(tmp_path, tiny_recipe) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(train={"progress": "off"})))
    return path


@pytest.fixture
def finished_run(recipe, tmp_path) -> Path:
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--output", str(run)]) == 0
    return run


def fails(capsys, argv: list[str], *needles: str) -> str:
    """Run the command in-process; require exit 2, one line naming what to fix, and no traceback."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def test_config_mistakes(capsys, recipe, tmp_path):
    out = ["--output", str(tmp_path / "r")]
    fails(capsys, ["train", str(recipe), "--set", "train.epochs=0", *out], "train.epochs", "positive")
    fails(capsys, ["train", str(recipe), "--set", "model.name=resnet_smal", *out], "resnet_smal", "resnet_small")
    fails(capsys, ["train", str(recipe), "--set", "model.glore=res9:1", *out], "res9")
    fails(capsys, ["train", str(recipe), "--set", "train.device=cuda", *out], "train.device", "CUDA")
    fails(capsys, ["train", str(recipe), "--set", "model.num_classes=-3", *out], "num_classes")
    fails(capsys, ["train", str(recipe), "--set", "model.pretrained=true", *out], "pretrained")
    fails(capsys, ["train", "README.md"], "README.md", "line")
    fails(capsys, ["train", str(tmp_path / "missing.yaml")], "missing.yaml")


def test_glore_args_without_units_warn(recipe, tmp_path):
    with pytest.warns(UserWarning, match="model.glore_args .* are ignored: model.glore is null"):
        assert main(["train", str(recipe), "--set", "model.glore=null", "--output", str(tmp_path / "w")]) == 0


def test_missing_and_empty_data(capsys, tmp_path, tiny_recipe):
    values = tiny_recipe(data={"name": "imagefolder", "root": str(tmp_path / "nowhere"), "transform": "standard"})
    values["data"]["kwargs"] = {}
    values["data"]["train_kwargs"] = {}
    values["data"]["val_kwargs"] = {}
    path = tmp_path / "folder.yaml"
    path.write_text(yaml.safe_dump(values))
    fails(capsys, ["train", str(path), "--output", str(tmp_path / "a")], "nowhere")
    (tmp_path / "empty" / "train").mkdir(parents=True)
    fails(capsys, ["train", str(path), "--set", f"data.root={tmp_path / 'empty'}"], "holds no class folders")
    fails(capsys, ["train", str(path), "--set", "data.root=null"], "root")


def write_folder(root: Path, split: str, classes: list[str]) -> None:
    from PIL import Image

    for name in classes:
        for k in range(2):
            target = root / split / name / f"{k}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (40, 40), (40 * k, 90, 20)).save(target)


def test_imagefolder_splits_whose_classes_differ(capsys, tmp_path, tiny_recipe):
    values = tiny_recipe(data={"name": "imagefolder", "transform": "standard", "image_size": 32})
    values["data"].update({"kwargs": {}, "train_kwargs": {}, "val_kwargs": {}, "batch_size": 2})
    path = tmp_path / "folder.yaml"
    path.write_text(yaml.safe_dump(values))
    write_folder(tmp_path / "same_count", "train", ["cat", "dog"])
    write_folder(tmp_path / "same_count", "val", ["cat", "fox"])
    fails(capsys, ["train", str(path), "--set", f"data.root={tmp_path / 'same_count'}"], "'dog'", "'fox'")
    write_folder(tmp_path / "other_count", "train", ["cat", "dog", "emu"])
    write_folder(tmp_path / "other_count", "val", ["cat", "dog"])
    fails(capsys, ["train", str(path), "--set", f"data.root={tmp_path / 'other_count'}"], "3 classes", "emu")


def test_bad_checkpoints(capsys, recipe, finished_run, tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("these are not weights\n")
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes((finished_run / "last.pt").read_bytes()[:200])
    for bad in (text, truncated, tmp_path / "absent.pt"):
        fails(capsys, ["eval", str(recipe), "--checkpoint", str(bad)], bad.name)
        fails(capsys, ["visualize", str(bad), "--samples", "1"], bad.name)
        fails(capsys, ["train", str(recipe), "--resume-from", str(bad), "--output", str(tmp_path / "x")], bad.name)
    fails(capsys, ["train", str(recipe), "--set", f"model.pretrained={text}", "--output", str(tmp_path / "y")])


def test_checkpoint_of_another_network_and_optimiser(capsys, recipe, finished_run):
    wider = ["--set", "model.kwargs.widths=[8,8,16,32]"]
    # resumed into another network or with another optimiser, a checkpoint is refused
    out = ["--output", str(finished_run), "--resume", "--set", "train.epochs=3"]
    fails(capsys, ["train", str(recipe), *out, *wider], "does not fit the network", "shapes")
    fails(capsys, ["train", str(recipe), *out, "--set", "optim.name=adamw"], "optim.name", "'sgd'", "'adamw'")


def test_visualize_arguments(capsys, finished_run, tmp_path):
    checkpoint = str(finished_run / "last.pt")
    fails(capsys, ["visualize", checkpoint, "--samples", "0"], "--samples")
    fails(capsys, ["visualize", checkpoint, "--samples", "-2"], "--samples")
    fails(capsys, ["visualize", checkpoint, "--max-nodes", "0"], "--max-nodes")


def test_a_finished_run_is_never_overwritten(capsys, recipe, finished_run, tmp_path):
    before = {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()}
    fails(
        capsys, ["train", str(recipe), "--output", str(finished_run)], "already holds a run", "--resume", "--overwrite"
    )
    assert {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()} == before
    (tmp_path / "afile").write_text("x")
    fails(capsys, ["train", str(recipe), "--output", str(tmp_path / "afile" / "run")], "afile", "is a file")
    # --overwrite starts afresh: the old TensorBoard events and tables are gone, a new run is written
    assert main(["train", str(recipe), "--output", str(finished_run), "--overwrite", "--set", "train.seed=5"]) == 0
    state = torch.load(finished_run / "last.pt", weights_only=True)
    assert state["config"]["train"]["seed"] == 5 and state["step"] > 0


def test_version_print_config_and_debug(capsys, recipe):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("glore ")
    assert main(["train", str(recipe), "--print-config", "--set", "optim.lr=0.25"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["optim"]["lr"] == 0.25 and printed["task"] == "classification"
    result = subprocess.run(
        [str(GLORE), "train", str(recipe), "--set", "train.epochs=0", "--debug"], capture_output=True, text=True
    )
    assert result.returncode != 0 and "Traceback" in result.stderr
    plain = subprocess.run(
        [str(GLORE), "train", str(recipe), "--set", "train.epochs=0"], capture_output=True, text=True
    )
    assert plain.returncode == 2 and "Traceback" not in plain.stderr and "train.epochs" in plain.stderr


@pytest.mark.slow
def test_ctrl_c_during_training_exits_130_with_the_resume_command(recipe, tmp_path):
    import signal
    import time

    run = tmp_path / "interrupted"
    argv = [str(GLORE), "train", str(recipe), "--output", str(run), "--set", "train.epochs=500"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "last.pt").exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert (run / "last.pt").exists(), process.communicate()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted; continue with: glore train" in err and "--resume" in err and "Traceback" not in err
    state = torch.load(run / "last.pt", weights_only=True)  # the last checkpoint is whole
    assert state["step"] > 0
    assert not list(run.glob(".*tmp*"))
