"""Several processes: sharding that counts every validation sample once, and torchrun (gloo) training."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch
from engine_standins import TinyTask, run_subprocess, tiny_config

from glore.engine import evaluate, load_checkpoint, save_config, train
from glore.engine.distributed import DistInfo, ShardSampler, unwrap_model, wrap_model

HERE = Path(__file__).resolve().parent
TORCHRUN = Path(sys.executable).with_name("torchrun")


@pytest.mark.parametrize(("size", "world"), [(13, 2), (13, 4), (3, 4), (16, 4), (0, 2)])
def test_shards_cover_every_index_once(size, world):
    shards = [list(ShardSampler(range(size), num_replicas=world, rank=r)) for r in range(world)]
    assert sorted(i for shard in shards for i in shard) == list(range(size))
    assert [len(s) for s in shards] == [
        len(ShardSampler(range(size), num_replicas=world, rank=r)) for r in range(world)
    ]
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_shard_sampler_errors():
    with pytest.raises(ValueError, match="rank"):
        ShardSampler(range(4), num_replicas=2, rank=2)


def test_world_of_one_is_not_wrapped():
    net = torch.nn.Linear(2, 2)
    assert wrap_model(net, DistInfo()) is net and unwrap_model(net) is net


def _torchrun(tmp_path: Path, name: str, config, task_kwargs: dict, nproc: int = 2, expect_ok: bool = True) -> dict:
    config_path = tmp_path / f"{name}.yaml"
    save_config(config, config_path)
    out = tmp_path / f"{name}.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        str(TORCHRUN),
        "--standalone",
        f"--nproc_per_node={nproc}",
        str(HERE / "engine_standins.py"),
        str(config_path),
        str(out),
        json.dumps(task_kwargs),
    ]
    result = run_subprocess(cmd, env)
    if not expect_ok:
        assert result.returncode != 0
        return {"stderr": result.stderr}
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    # No BN and no dropout: the result does not depend on how the global batch of 8 is split.
    kwargs = {"bn": False, "dropout": 0.0, "n_train": 32, "n_val": 13}
    one = tiny_config(str(tmp_path / "one"), train={"epochs": 2}, optim={"nesterov": True, "weight_decay": 1e-3})
    two = tiny_config(str(tmp_path / "two"), train={"epochs": 2}, optim={"nesterov": True, "weight_decay": 1e-3})
    metrics_one = train(one, TinyTask(one, **kwargs))
    metrics_two = _torchrun(tmp_path, "two", two, kwargs)
    a, b = (
        load_checkpoint(tmp_path / "one" / "last.pt")["model"],
        load_checkpoint(tmp_path / "two" / "last.pt")["model"],
    )
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=1e-5, atol=1e-6), key
    assert not torch.equal(a["conv.weight"], TinyTask(one, **kwargs).build_model(None).conv.weight)  # it trained
    assert metrics_two["val_count"] == 13 and metrics_one["val_count"] == 13
    assert metrics_two["val_top1"] == pytest.approx(metrics_one["val_top1"])
    assert metrics_two["train_loss"] == pytest.approx(metrics_one["train_loss"], rel=1e-5)


@pytest.mark.slow
def test_two_processes_with_batchnorm(tmp_path):
    # BN normalises with each process's own half batch; validation shards 13 samples as 7 + 6.
    kwargs = {"bn": True, "n_train": 48, "n_val": 13}
    config = tiny_config(str(tmp_path / "bn"), train={"epochs": 3}, optim={"lr": 0.2}, data={"batch_size": 4})
    metrics = _torchrun(tmp_path, "bn", config, kwargs)
    assert metrics["val_count"] == 13
    state = load_checkpoint(tmp_path / "bn" / "last.pt")
    assert state["epoch"] == 3 and state["metrics"]["val_count"] == 13
    assert state["model"]["norm.num_batches_tracked"] == 3 * 48 // 4  # every step updated BN on rank 0
    # Validation under torchrun equals evaluating the checkpoint in a single process.
    single = evaluate(config, tmp_path / "bn" / "last.pt", TinyTask(config, **kwargs))
    assert single["val_count"] == 13
    assert metrics["val_top1"] == pytest.approx(single["val_top1"])
    assert metrics["val_loss"] == pytest.approx(single["val_loss"], rel=1e-5)
    assert metrics["val_top1"] > 0.5  # it learnt (four classes)
    assert (tmp_path / "bn" / "metrics.csv").read_text().count("\n") == 4  # rank 0 alone wrote: header + 3 rows


@pytest.mark.slow
def test_two_processes_resume_exactly(tmp_path):
    # Dropout draws from each process's own generator: resuming must restore every rank's state.
    kwargs = {"bn": True, "dropout": 0.3, "n_train": 32, "n_val": 13}
    straight = tiny_config(str(tmp_path / "straight"), train={"epochs": 3})
    split = tiny_config(str(tmp_path / "split"), train={"epochs": 3})
    _torchrun(tmp_path, "straight", straight, kwargs)
    # 4 steps per epoch (32 samples, global batch 8): the run dies in epoch 3, after the checkpoint of epoch 2.
    died = _torchrun(tmp_path, "split", split, {**kwargs, "crash_at": 10}, expect_ok=False)
    assert "simulated crash" in died["stderr"]
    assert load_checkpoint(tmp_path / "split" / "last.pt")["epoch"] == 2
    _torchrun(tmp_path, "split", split, {**kwargs, "resume": True})
    a = load_checkpoint(tmp_path / "straight" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "split" / "last.pt")["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key
