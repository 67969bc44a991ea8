"""The ``glore train``, ``glore eval`` and ``glore demo`` commands, in-process and under torchrun."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from engine_standins import run_subprocess

from glore.cli import main
from glore.engine import load_checkpoint
from glore.engine.logger import read_csv

TORCHRUN = Path(sys.executable).with_name("torchrun")


@pytest.fixture
def recipe(tmp_path, tiny_recipe) -> Path:
    path = tmp_path / "tiny.yaml"
    changes = {"data": {"val_kwargs": {"num_samples": 13}}, "train": {"progress": "plain"}}
    path.write_text(yaml.safe_dump(tiny_recipe(**changes)))
    return path


def test_train_then_eval(recipe, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--set", "train.epochs=2", "--output", str(run)]) == 0
    assert load_checkpoint(run / "last.pt")["epoch"] == 2
    assert "done: " in capsys.readouterr().out
    assert main(["eval", str(recipe), "--checkpoint", str(run / "last.pt"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["val_count"] == 13
    assert metrics["val_top1"] == pytest.approx(read_csv(run / "metrics.csv")[-1]["val_top1"], abs=1e-5)
    # Another split: keys named after it; strict JSON (a NaN metric is null, never a bare NaN).
    assert main(["eval", str(recipe), "--checkpoint", str(run / "last.pt"), "--split", "test", "--json"]) == 0
    text = capsys.readouterr().out.strip().splitlines()[-1]
    test_metrics = json.loads(text, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))
    assert test_metrics["test_count"] == 13 and not any(k.startswith("val_") for k in test_metrics)
    # --resume on a finished run has nothing left to do; more epochs continue it.
    assert main(["train", str(recipe), "--output", str(run), "--set", "train.epochs=3", "--resume"]) == 0
    assert load_checkpoint(run / "last.pt")["epoch"] == 3


def test_config_errors_exit_2(recipe, capsys):
    assert main(["train", str(recipe), "--set", "optim.lrr=0.1"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'optim.lrr'" in err and "valid keys in 'optim': name, lr" in err
    assert main(["train", str(recipe), "--set", "train.epochs=two"]) == 2
    assert "train.epochs: expected int, got str 'two'" in capsys.readouterr().err
    assert main(["eval", str(recipe), "--checkpoint", "missing.pt"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_diverging_run_exits_nonzero(recipe, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", str(recipe), "--output", str(run), "--set", "optim.lr=1.0e+30", "--set", "train.epochs=2"])
    assert code == 1
    err = capsys.readouterr().err
    assert "training stopped: the loss is" in err and "learning rate" in err and "step " in err


@pytest.mark.slow
def test_torchrun_module_train(recipe, tmp_path):
    # torchrun -m glore train: two gloo processes, validation samples (13) counted once.
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", "-m", "glore", "train", str(recipe)]
    cmd += ["--output", str(run), "--set", "data.num_workers=1"]
    result = run_subprocess(cmd, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = read_csv(run / "metrics.csv")
    assert len(rows) == 1 and rows[0]["val_count"] == 13
    assert result.stdout.count("done: ") == 1  # rank 0 alone reports
    assert load_checkpoint(run / "best.pt")["model_config"]["glore"] == {"res4": [1]}


def test_demo_quick(tmp_path, capsys):
    out = tmp_path / "classification"
    shrink = ["--set", "model.kwargs.widths=[8,8,16,16]", "--set", "model.kwargs.stem_width=8"]
    assert main(["demo", "classification", "--quick", "--output", str(tmp_path), *shrink]) == 0
    printed = capsys.readouterr().out
    assert "| model | GloRe units | seeds | test top1 | test mean class acc |" in printed
    assert "| baseline | none | 1 |" in printed and "| glore | res3:1,res4:1 | 1 |" in printed
    for name in ("report.md", "curves.png", "baseline/seed0/best.pt", "glore/seed0/best.pt", "glore/seed0/curves.png"):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text()
    assert "| glore | res3:1,res4:1 | 1 |" in report and "![" in report
    assert load_checkpoint(out / "baseline" / "seed0" / "best.pt")["model_config"]["glore"] is None


def test_metrics_json_is_strict():
    from glore.tools.evaluate import metrics_json

    assert json.loads(metrics_json({"val_top1": float("nan"), "val_count": 3.0}, "test")) == {
        "test_top1": None,
        "test_count": 3.0,
    }


def test_demo_refuses_an_unknown_task(capsys):
    assert main(["demo", "detection"]) == 2
    assert "TASK 'detection' is not a demo; expected one of classification" in capsys.readouterr().err
