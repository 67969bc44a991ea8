"""Checkpoints: atomic writes, weights_only loading, RNG states, rebuilding the network."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from glore.engine import checkpoint as ckpt
from glore.engine.checkpoint import (
    CheckpointError,
    capture_rng_state,
    load_checkpoint,
    load_model,
    restore_rng_state,
    save_checkpoint,
)


def test_roundtrip_weights_only(tmp_path):
    state = {"model": {"w": torch.arange(4.0)}, "epoch": 3, "metrics": {"top1": 0.5}, "rng": capture_rng_state()}
    path = save_checkpoint(state, tmp_path / "sub" / "last.pt")
    loaded = load_checkpoint(path)  # weights_only=True inside
    assert torch.equal(loaded["model"]["w"], torch.arange(4.0)) and loaded["epoch"] == 3
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


def test_crash_mid_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)
    real_save = torch.save

    def dying_save(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"PK\x03\x04 half a checkpoint")  # a partial file, then the process "dies"
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(ckpt.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"epoch": 2, "w": torch.zeros(3)}, path)
    monkeypatch.setattr(ckpt.torch, "save", real_save)
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_crash_before_rename_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1}, path)

    def no_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(ckpt.os, "replace", no_replace)
    with pytest.raises(OSError, match="disk gone"):
        save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_checkpoint(bad)


class Payload:
    """An arbitrary class: unpickling it could run code, so weights_only loading must refuse it."""


def test_weights_only_refuses_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"obj": Payload()}, path)
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(path)


def test_rng_state_roundtrip(tmp_path):
    save_checkpoint({"rng": capture_rng_state()}, tmp_path / "r.pt")
    first = (random.random(), float(np.random.rand()), float(torch.rand(())))
    restore_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    again = (random.random(), float(np.random.rand()), float(torch.rand(())))
    assert first == again


def test_load_model_rebuilds_network(tmp_path):
    from glore.models import create_model

    net = create_model("resnet_small", num_classes=3, glore="res4:1", widths=[8, 8, 16, 16], stem_width=8)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_()
    save_checkpoint({"model": net.state_dict(), "model_config": net.model_config}, tmp_path / "m.pt")
    rebuilt = load_model(tmp_path / "m.pt")
    assert not rebuilt.training
    x = torch.randn(2, 3, 32, 32)
    net.eval()
    assert torch.equal(rebuilt(x), net(x))
    save_checkpoint({"model": net.state_dict()}, tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="model_config"):
        load_model(tmp_path / "bare.pt")
