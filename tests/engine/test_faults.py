"""Fault injection: runs of ``glore train`` killed (SIGKILL) or stopped (SIGTERM) at chosen and random instants,
inside file writes and inside steps, then continued, end exactly where an uninterrupted run ends: the same tensors
in ``last.pt`` and ``best.pt`` and the same ``metrics.csv`` (but for the wall-clock columns).

Each test runs a chain: the first run gets a fault, the run that continues it the next fault, and so on, then a
last run finishes; every link starts ``glore train`` as a user would after a crash (``--resume`` when the folder
holds a checkpoint, the plain command otherwise). ``fault_runner.py`` injects the faults.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from support import make_tiny_recipe

from glore._io import LOCK_NAME
from glore.engine.logger import read_csv

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "fault_runner.py"
TORCHRUN = Path(sys.executable).with_name("torchrun")
TIMING = {"epoch_time_s", "train_images_per_s"}  # wall-clock values: differ between any two runs
STEPS = 12  # 16 samples, batch 4, 3 epochs

# resnet_small with widths 8 and one GloRe unit, relational data of 16 samples at 32 px: a few seconds a run. A
# checkpoint every 3 iterations puts checkpoints inside epochs (steps 3, 6, 9) besides the epochs' ends (4, 8, 12).
RECIPE: dict[str, Any] = make_tiny_recipe(
    model={"kwargs": {"widths": [8, 8, 8, 8], "stem_width": 8}},
    data={"batch_size": 4, "train_kwargs": {"num_samples": 16}, "val_kwargs": {"num_samples": 8}},
    schedule={"name": "cosine", "warmup_epochs": 1},
    train={"epochs": 3, "log_every": 1, "checkpoint_every_iters": 3},
    output={"best_metric": "loss"},
)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "tiny.yaml"
    path.write_text(yaml.safe_dump(RECIPE))
    return path


def glore_train(
    recipe: Path, run: Path, fault: str = "", *, torchrun: bool = False, rank: int = 0, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """One ``glore train`` as a user starts it after a crash, with ``fault`` injected."""
    resume = ["--resume"] if (run / "last.pt").exists() or (run / "previous.pt").exists() else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLORE_TEST_FAULT": fault, "GLORE_TEST_FAULT_RANK": str(rank)}
    launcher = [str(TORCHRUN), "--standalone", "--nproc_per_node=2"] if torchrun else [sys.executable]
    cmd = [*launcher, str(RUNNER), "train", str(recipe), "--output", str(run), *resume, *extra]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def without_timing(value: Any) -> Any:
    """``value`` with the wall-clock entries of metrics (and the run folder, the checksum) left out."""
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING and k not in ("checksum", "dir")}
    if isinstance(value, (list, tuple)):
        return [without_timing(v) for v in value]
    return value


def assert_equal(a: Any, b: Any, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{where}: keys {list(a)} vs {list(b)}"
        for key in a:
            assert_equal(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_equal(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and a != a:  # NaN
        assert isinstance(b, float) and b != b, where
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def assert_same_run(
    reference: Path, run: Path, *, steps: int = STEPS, rows: list[float] = (4.0, 8.0, 12.0), log_every: int = 1
) -> None:
    """``run`` ends as ``reference`` does: checkpoints, tables, and no temporary or lock file left."""
    for name in ("last.pt", "best.pt"):
        a = torch.load(reference / name, weights_only=True)
        b = torch.load(run / name, weights_only=True)
        assert a["step"] == steps if name == "last.pt" else True
        assert_equal(without_timing(a), without_timing(b), name)
    table = [without_timing(r) for r in read_csv(run / "metrics.csv")]
    assert table == [without_timing(r) for r in read_csv(reference / "metrics.csv")]
    assert [r["step"] for r in table] == list(rows)
    logged = [r["step"] for r in read_csv(run / "steps.csv")]
    assert logged == [float(s) for s in range(log_every, steps + 1, log_every)]
    leftovers = [p.name for p in run.iterdir() if p.name.startswith(".")]
    assert leftovers == [], leftovers  # no temporary file, no lock


def run_chain(recipe: Path, run: Path, faults: list[str], *, torchrun: bool = False, ranks: list[int] | None = None):
    """Run ``glore train`` with each fault in turn (each must strike), then once more to the end."""
    for i, fault in enumerate(faults):
        rank = ranks[i] if ranks else 0
        result = glore_train(recipe, run, fault, torchrun=torchrun, rank=rank)
        log = f"fault {fault}: rc {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        if fault.startswith("kill"):
            assert result.returncode == (1 if torchrun else -signal.SIGKILL), log
        else:
            assert result.returncode == (1 if torchrun else 143), log  # torchrun reports its worker's 143 as 1
            assert "stopped by SIGTERM after iteration" in result.stderr, log
            assert "continue with: glore train" in result.stderr and " --resume" in result.stderr, log
            assert not (run / LOCK_NAME).exists(), log  # a graceful stop releases the lock
    result = glore_train(recipe, run, torchrun=torchrun)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def reference(recipe, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("reference") / "run"
    result = glore_train(recipe, run)
    assert result.returncode == 0, result.stderr[-3000:]
    return run


# Writes of one run, in order: config.yaml, then per step a steps.csv row, checkpoints inside epochs at steps 3, 6, 9
# (last.pt, the one before kept as previous.pt) and at each epoch's end last.pt, best.pt when the validation loss
# improved, a metrics.csv row. A few random writes and phases join the chosen ones (seeded: the same every run).
_pick = random.Random(15)
RANDOM_KILLS = [
    f"kill:{_pick.choice(['last.pt', 'steps.csv', 'previous.pt'])}:{_pick.randint(1, 2)}:"
    f"{_pick.choice(['before', 'half', 'after'])}"
    for _ in range(2)
]


def test_sigkill_inside_writes_and_steps(recipe, reference, tmp_path):
    faults = [
        "kill:config.yaml:1:half",  # before any checkpoint: the folder is trained into again, its temporary removed
        "kill:last.pt:2:after",  # the end of epoch 1 written, not yet best.pt and the metrics row
        "kill:metrics.csv:1:half",  # half a row: the table is rewritten from last.pt
        "kill:last.pt:1:before",  # previous.pt kept, the new last.pt not yet renamed: --resume takes previous.pt
        *RANDOM_KILLS,
        "kill:step:2",  # inside an epoch, between checkpoints
    ]
    run = tmp_path / "run"
    run_chain(recipe, run, faults)
    assert_same_run(reference, run)


def test_a_kill_after_the_last_checkpoint_is_repaired_by_resume(recipe, reference, tmp_path):
    # Killed right after the final last.pt: best.pt, the last metrics row and report.md were never written. The
    # resumed run has nothing left to train, and writes them as the uninterrupted run did.
    run = tmp_path / "run"
    killed = glore_train(recipe, run, "kill:last.pt:6:after")  # last.pt at steps 3, 4, 6, 8, 9 and 12
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert torch.load(run / "last.pt", weights_only=True)["step"] == STEPS
    assert len(read_csv(run / "metrics.csv")) == 2
    done = glore_train(recipe, run, extra=("--set", "output.report=true"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "nothing to do" in done.stdout
    assert_same_run(reference, run)
    report = (run / "report.md").read_text()
    assert "trained 3 epoch(s)" in report and "| metric | final (epoch 3) |" in report


def test_sigterm_stops_with_a_checkpoint_of_the_step(recipe, reference, tmp_path):
    run = tmp_path / "run"
    # SIGTERM inside the 2nd step: it is finished, then saved (no checkpoint existed yet).
    first = glore_train(recipe, run, "term:step:2")
    assert first.returncode == 143, first.stderr[-3000:]
    assert "stopped by SIGTERM after iteration 2 of 12" in first.stderr
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["step"] == 2 and state["partial"][0]["samples"] == 8  # the epoch's running sums
    # SIGUSR1 (SLURM's --signal) while last.pt is written: the write completes, the run stops after it (exit 138)
    second = glore_train(recipe, run, "usr1:last.pt:2:half")
    assert second.returncode == 138, second.stderr[-3000:]
    assert "stopped by SIGUSR1 after iteration" in second.stderr and "continue with: glore train" in second.stderr
    assert not (run / LOCK_NAME).exists()
    # a corrupt last.pt makes --resume fall back to previous.pt
    stopped_at = torch.load(run / "last.pt", weights_only=True)["step"]
    data = bytearray((run / "last.pt").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    (run / "last.pt").write_bytes(bytes(data))
    final = run_chain(recipe, run, [])
    assert "falling back to the previous checkpoint" in final.stdout + final.stderr
    assert stopped_at > 2
    assert_same_run(reference, run)


@pytest.mark.slow
def test_torchrun_faults(recipe, tmp_path):
    # Two gloo processes: rank 0 killed after writing last.pt at the end of epoch 1; then SIGTERM to rank 1 alone
    # inside a step: both processes stop after that same step, with one checkpoint.
    reference = tmp_path / "reference"
    result = glore_train(recipe, reference, torchrun=True)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "run"
    run_chain(recipe, run, ["kill:last.pt:2:after", "term:step:3"], torchrun=True, ranks=[0, 1])
    assert_same_run(reference, run)


def test_checkpoints_by_time_inside_epochs(tmp_path):
    # checkpoint_every_minutes that every step exceeds: a crash inside an epoch loses one step, and the run continued
    # from there ends as an uninterrupted one (the epoch's training metrics included).
    from engine_standins import SimulatedCrash, TinyTask, tiny_config

    from glore.engine import train

    def run(out, resume=False, crash_at=None):
        config = tiny_config(str(out), train={"epochs": 3, "checkpoint_every_minutes": 1e-9}, data={"batch_size": 4})
        train(config, TinyTask(config, bn=True, crash_at=crash_at), resume=resume)

    run(tmp_path / "straight")
    with pytest.raises(SimulatedCrash):
        run(tmp_path / "split", crash_at=11)  # 8 steps an epoch: the 3rd step of epoch 2
    state = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert state["step"] == 10 and state["partial"][0]["samples"] == 8  # saved after step 10, inside epoch 2
    assert torch.load(tmp_path / "split" / "previous.pt", weights_only=True)["step"] == 9
    run(tmp_path / "split", resume=True)
    assert_same_run(tmp_path / "straight", tmp_path / "split", steps=24, rows=[8.0, 16.0, 24.0], log_every=2)


def test_an_iteration_budget_resumes_inside_a_validation_interval(tmp_path):
    # train.iterations with validation every 6 iterations (8 an epoch): checkpoints by count at 5, 10, 15 fall
    # inside intervals and epochs; a crash at step 17 continues from 15 and ends as an uninterrupted run.
    from engine_standins import SimulatedCrash, TinyTask, tiny_config

    from glore.engine import train

    def run(out, resume=False, crash_at=None):
        budget = {"iterations": 20, "eval_every_iters": 6, "checkpoint_every_iters": 5}
        config = tiny_config(str(out), train=budget, data={"batch_size": 4}, schedule={"warmup_epochs": 0})
        train(config, TinyTask(config, bn=True, crash_at=crash_at), resume=resume)

    run(tmp_path / "straight")
    with pytest.raises(SimulatedCrash):
        run(tmp_path / "split", crash_at=17)
    state = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert state["step"] == 15 and state["partial"][0]["samples"] == 4 * 3  # the sums of steps 13-15
    run(tmp_path / "split", resume=True)
    assert_same_run(tmp_path / "straight", tmp_path / "split", steps=20, rows=[6.0, 12.0, 18.0, 20.0], log_every=2)
