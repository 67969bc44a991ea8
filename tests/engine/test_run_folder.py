"""``glore train`` and its run folder: one writer, no dead ends, failed writes, resuming with another config, and
override values, each answered in one line."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from support import failing_open

from glore._io import LOCK_NAME
from glore.cli import _train_hint, main
from glore.engine.logger import read_csv


@pytest.fixture
def recipe(tmp_path, tiny_recipe) -> Path:
    path = tmp_path / "tiny.yaml"
    changes = {"data": {"train_kwargs": {"num_samples": 16}, "val_kwargs": {"num_samples": 8}}}
    path.write_text(yaml.safe_dump(tiny_recipe(**changes)))
    return path


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


HOLD_LOCK = """
import sys, time
from glore._io import lock_run_folder
with lock_run_folder(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_second_writer_is_refused_naming_the_holder(recipe, tmp_path, capsys):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["train", str(recipe), "--output", str(run)]) == 2
        line = one_line(capsys)
        assert f"is in use by another glore train (process {holder.pid} on host" in line
        assert main(["train", str(recipe), "--output", str(run), "--overwrite"]) == 2  # nothing deleted meanwhile
        assert "is in use by another glore train" in one_line(capsys)
    finally:
        holder.kill()
        holder.wait()
    assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]  # the refused runs wrote nothing
    assert main(["train", str(recipe), "--output", str(run)]) == 0  # the dead holder's lock is stale: taken over
    assert not (run / LOCK_NAME).exists()


def test_a_folder_without_checkpoint_is_trained_into_again(recipe, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    # what a run killed before its first checkpoint leaves: its config, a few step rows, a temporary file
    (run / "config.yaml").write_text("task: classification\n")
    (run / "steps.csv").write_text("epoch,step,loss\n1,1,1.5\n")
    (run / ".last.pt.k3j9x0ab.tmp.pt").write_bytes(b"half a checkpoint")
    assert main(["train", str(recipe), "--output", str(run), "--resume"]) == 2
    line = one_line(capsys)
    assert "no checkpoint in" in line and "without --resume" in line and "continue it with --resume" not in line
    assert main(["train", str(recipe), "--output", str(run)]) == 0
    out = capsys.readouterr().out
    assert "stopped before its first checkpoint" in out and "starting afresh" in out
    assert [r["step"] for r in read_csv(run / "steps.csv")] == [2.0]  # the old row (step 1) is gone
    assert not list(run.glob(".*tmp*"))


def test_stale_temporaries_are_removed_at_resume_and_overwrite(recipe, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--output", str(run)]) == 0
    (run / ".last.pt.a1b2c3d4.tmp.pt").write_bytes(b"a checkpoint cut short")
    (run / ".metrics.csv.zz00yy11.tmp.csv").write_text("epoch\n")
    assert main(["train", str(recipe), "--output", str(run), "--resume", "--set", "train.epochs=2"]) == 0
    assert "removed 2 temporary file(s)" in capsys.readouterr().out
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []
    (run / ".best.pt.q9w8e7r6.tmp.pt").write_bytes(b"a checkpoint cut short")
    assert (run / "previous.pt").exists()  # epoch 1's last.pt, kept when epoch 2's was written
    assert main(["train", str(recipe), "--output", str(run), "--overwrite"]) == 0
    assert "removed 1 temporary file(s)" in capsys.readouterr().out
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []
    assert not (run / "previous.pt").exists()  # the old run's checkpoints went with --overwrite


def test_resume_with_a_changed_config(recipe, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--output", str(run)]) == 0
    before = (run / "last.pt").read_bytes()
    changed = ["--set", "data.train_kwargs.num_samples=48", "--set", "optim.lr=1e-9", "--set", "train.epochs=2"]
    assert main(["train", str(recipe), "--output", str(run), "--resume", *changed]) == 2
    line = one_line(capsys)
    assert "data.train_kwargs.num_samples 16 -> 48" in line and "optim.lr 0.05 -> 1e-09" in line
    assert "train.epochs" not in line and "--allow-changes" in line
    assert (run / "last.pt").read_bytes() == before  # refused before anything was written
    assert yaml.safe_load((run / "config.yaml").read_text())["optim"]["lr"] == 0.05
    # a longer schedule and where the data lies or how it loads: allowed, with a line
    argv = ["train", str(recipe), "--output", str(run), "--resume", "--set", "train.epochs=2"]
    assert main([*argv, "--set", "data.num_workers=1"]) == 0
    out = capsys.readouterr().out
    assert "resume: a longer schedule: train.epochs 1 -> 2" in out
    assert "resume: also changed: data.num_workers 0 -> 1 (no effect on the result)" in out
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 2
    assert main([*argv, "--set", "train.epochs=3", "--set", "optim.lr=0.01", "--allow-changes"]) == 0
    assert "continuing with changed optim.lr 0.05 -> 0.01 (--allow-changes)" in capsys.readouterr().out


def test_a_full_disk_is_one_line_naming_the_file(recipe, tmp_path, capsys, monkeypatch):
    import glore.engine.checkpoint as ckpt

    run = tmp_path / "run"
    assert main(["train", str(recipe), "--output", str(run)]) == 0
    capsys.readouterr()
    before = (run / "last.pt").read_bytes()

    FullDisk = failing_open(lambda data: 4096, lambda: OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))

    monkeypatch.setattr(ckpt, "open", FullDisk, raising=False)
    assert main(["train", str(recipe), "--output", str(run), "--resume", "--set", "train.epochs=2"]) == 2
    line = one_line(capsys)
    assert f"cannot write {str(run / 'last.pt')!r}: no space left on the device" in line
    assert "the previous file is left as it was; once that is fixed, continue with: glore train" in line
    assert "Traceback" not in line
    assert (run / "last.pt").read_bytes() == before
    assert not list(run.glob(".*tmp*")) and not (run / LOCK_NAME).exists()


def test_divergence_before_any_checkpoint_does_not_advise_resume(recipe, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--output", str(run), "--set", "optim.lr=1e30"]) == 1
    err = capsys.readouterr().err
    assert "no checkpoint had been written yet" in err and "then start the run again" in err
    assert "--resume" not in err


def test_hints_never_advise_a_resume_without_checkpoint():
    argv = ["train", "r.yaml", "--output", "runs/x", "--resume-from", "other.pt"]
    assert (
        _train_hint(argv, None) == "no checkpoint was written yet; start again with: glore train r.yaml --output runs/x"
    )
    assert _train_hint(argv, Path("runs/x/last.pt")) == "continue with: glore train r.yaml --output runs/x --resume"


def test_override_values_and_config_paths(recipe, tmp_path, capsys):
    assert main(["train", str(recipe), "--print-config", "--set", "optim.lr=1e-3"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["optim"]["lr"] == 0.001
    assert main(["train", str(tmp_path)]) == 2
    assert f"config: {str(tmp_path)!r} is a directory; expected a YAML recipe file" in one_line(capsys)
    for override, key in (("data.batch_size=-4", "data.batch_size"), ("data.num_workers=-1", "data.num_workers")):
        assert main(["train", str(recipe), "--set", override, "--output", str(tmp_path / "never")]) == 2
        assert f"{key}: expected" in one_line(capsys)
    assert not (tmp_path / "never").exists()


def test_corrupt_last_checkpoint_falls_back_to_previous(recipe, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--output", str(run), "--set", "train.epochs=2"]) == 0
    data = bytearray((run / "last.pt").read_bytes())
    data[-3000:-2936] = bytes(b ^ 0xFF for b in data[-3000:-2936])
    (run / "last.pt").write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["train", str(recipe), "--output", str(run), "--resume", "--set", "train.epochs=2"]) == 0
    out = capsys.readouterr().out
    assert "last.pt" in out and "falling back to the previous checkpoint" in out
    assert json.dumps(torch.load(run / "last.pt", weights_only=True)["step"]) == "4"
