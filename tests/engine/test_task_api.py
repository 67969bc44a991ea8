"""The Task API fits a task that is not classification, and the engine defects of issue 8 stay fixed."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from engine_standins import PixelNet, PixelTask, SimulatedCrash, TinyTask, run_subprocess, sliding_window, tiny_config

from glore.data import collate
from glore.engine import NonFiniteLossError, Task, load_checkpoint, load_config, save_config, train
from glore.engine.sampling import SeededDataset
from glore.engine.task import build_task

HERE = Path(__file__).resolve().parent
TORCHRUN = Path(sys.executable).with_name("torchrun")


def pixel_config(out_dir: Path, **train_section):
    return tiny_config(
        str(out_dir),
        train={"epochs": 2, **train_section},
        output={"dir": str(out_dir), "tensorboard": False, "plots": False, "best_metric": None},
    )


def same_weights(a: Path, b: Path) -> None:
    sa, sb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


# -- the API --------------------------------------------------------------------------------------------------------


def test_collate_keeps_pytrees_and_meta():
    samples = [
        (torch.ones(3, 2, 2), {"mask": torch.zeros(2, 2, dtype=torch.long), "n": 1}, {"id": "a", "size": (2, 2)}),
        None,
        (torch.zeros(3, 2, 2), {"mask": torch.ones(2, 2, dtype=torch.long), "n": 2}, {"id": "b", "size": (2, 2)}),
    ]
    batch = collate(samples)
    assert batch.inputs.shape == (2, 3, 2, 2) and batch.skipped == 1
    assert batch.targets["mask"].shape == (2, 2, 2) and batch.targets["n"].tolist() == [1, 2]
    assert batch.meta == {"id": ["a", "b"], "size": [(2, 2), (2, 2)]}
    plain = collate([(torch.ones(3), 4), (torch.ones(3), 5)])
    assert plain.targets.tolist() == [4, 5] and plain.meta == {}


def test_sliding_window_of_a_translation_equivariant_network_equals_the_whole_image():
    torch.manual_seed(0)
    net = PixelNet(kernel=1).eval()
    x = torch.randn(2, 3, 12, 12)
    whole = net(x)
    assert torch.allclose(sliding_window(net, x, 8, 4), whole, atol=1e-6)
    assert torch.allclose(sliding_window(net, x, 5, 3), whole, atol=1e-6)  # windows that do not tile evenly


def test_pixel_task_trains_validates_through_its_eval_step(tmp_path):
    config = pixel_config(tmp_path / "run")
    task = PixelTask(config)
    metrics = train(config, task)
    assert set(metrics) >= {"val_miou", "val_pixel_acc", "val_loss", "train_loss"}
    assert metrics["val_count"] == 10 * 12 * 12
    assert "train_miou" not in metrics  # per-step training metrics are optional: this task has none
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["step"] == 8 and state["epoch"] == 2 and state["best_metric"] == pytest.approx(metrics["val_miou"])


def test_pixel_task_resumes_bit_for_bit_in_epochs(tmp_path):
    straight = pixel_config(tmp_path / "straight", epochs=4)
    train(straight, PixelTask(straight))
    config = pixel_config(tmp_path / "resumed", epochs=4)
    with pytest.raises(SimulatedCrash):  # killed in epoch 3: the run resumes from epoch 2's checkpoint
        train(config, PixelTask(config, crash_at=10))
    train(config, PixelTask(config), resume=True)
    same_weights(tmp_path / "straight" / "last.pt", tmp_path / "resumed" / "last.pt")


def test_iteration_budget_resumes_bit_for_bit_from_the_middle_of_an_epoch(tmp_path):
    # 32 samples / batch 8 = 4 steps an epoch; validation and checkpoints every 3 iterations: step 3 is mid-epoch.
    straight = pixel_config(tmp_path / "straight", iterations=10, eval_every_iters=3)
    metrics = train(straight, PixelTask(straight))
    assert metrics["step"] == 10
    rows = (tmp_path / "straight" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[1] for r in rows[1:]] == ["3", "6", "9", "10"]  # the step column
    crashed = pixel_config(tmp_path / "resumed", iterations=10, eval_every_iters=3)
    with pytest.raises(SimulatedCrash):
        train(crashed, PixelTask(crashed, crash_at=5))
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["step"] == 3
    train(crashed, PixelTask(crashed), resume=True)
    same_weights(tmp_path / "straight" / "last.pt", tmp_path / "resumed" / "last.pt")


@pytest.mark.slow
def test_pixel_task_resumes_bit_for_bit_under_torchrun(tmp_path):
    def run(name: str, config, kwargs: dict) -> None:
        path = tmp_path / f"{name}.yaml"
        save_config(config, path)
        cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", str(HERE / "engine_standins.py"), str(path)]
        result = run_subprocess([*cmd, str(tmp_path / f"{name}.json"), json.dumps(kwargs)], {**os.environ})
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]

    straight = pixel_config(tmp_path / "straight", iterations=6, eval_every_iters=3)
    run("straight", straight, {"task": "pixel"})
    # 32 samples, global batch 8 on 2 processes: 4 steps an epoch, the checkpoint at step 3 is mid-epoch.
    resumed = pixel_config(tmp_path / "resumed", iterations=6, eval_every_iters=3)
    path = tmp_path / "crash.yaml"
    save_config(resumed, path)
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", str(HERE / "engine_standins.py"), str(path)]
    crashed = run_subprocess(
        [*cmd, str(tmp_path / "crash.json"), json.dumps({"task": "pixel", "crash_at": 5})], {**os.environ}
    )
    assert crashed.returncode != 0 and load_checkpoint(tmp_path / "resumed" / "last.pt")["step"] == 3
    run("second", resumed, {"task": "pixel", "resume": True})
    same_weights(tmp_path / "straight" / "last.pt", tmp_path / "resumed" / "last.pt")


def test_best_metric_loss_keeps_the_lowest(tmp_path):
    config = tiny_config(str(tmp_path), train={"epochs": 3}, output={"best_metric": "loss"})
    values = iter([0.5, 0.3, 0.4])

    class Scripted(TinyTask):
        def eval_loss(self, preds, batch):
            return torch.tensor(self.current)

        def create_meter(self, dataset, *, train=False):
            if not train:
                self.current = next(values)
            return super().create_meter(dataset, train=train)

    train(config, Scripted(config))
    assert load_checkpoint(tmp_path / "best.pt")["metrics"]["val_loss"] == pytest.approx(0.3)
    assert load_checkpoint(tmp_path / "best.pt")["step"] == 8


def test_unknown_best_metric_names_the_task_metrics(tmp_path):
    config = tiny_config(str(tmp_path), output={"best_metric": "miou"})
    with pytest.raises(ValueError, match="output.best_metric: 'miou' is not a metric .* available: top1, top2"):
        train(config, TinyTask(config))


def test_classification_task_is_found_without_importing_tasks():
    config = load_config({"task": "classification"})
    assert type(build_task(config)).__name__ == "ClassificationTask"
    with pytest.raises(ValueError, match="task: expected one of .*classification.* got 'nope'"):
        build_task(load_config({"task": "nope"}))


def test_engine_imports_neither_tools_nor_tasks():
    code = (
        "import sys, glore.engine, glore.layers, glore.models; "
        "bad = [m for m in sys.modules if m.startswith(('glore.tools', 'glore.tasks'))]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# -- defects --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["log_every", "eval_every"])
def test_zero_intervals_are_refused(tmp_path, key):
    with pytest.raises(ValueError, match=f"train.{key}: expected a positive int, got 0"):  # when the config loads
        config = tiny_config(str(tmp_path), train={key: 0})
        train(config, TinyTask(config))


def test_the_default_task_reads_the_first_sample_of_the_dataset_named():
    config = load_config({"data": {"name": "relational", "kwargs": {"num_samples": 4}}})
    task = build_task(config)
    image, label = task.build_dataset("train", train=True)[0]
    assert image.shape == (3, config.data.image_size, config.data.image_size) and isinstance(label, int)


def test_a_config_must_name_its_dataset():
    config = load_config({"data": {"kwargs": {"num_samples": 4}}})
    assert config.data.name is None
    with pytest.raises(ValueError, match=r"name \(data.name\) is required: a config must name its dataset, one of"):
        build_task(config).build_dataset("train", train=True)


def test_relational_data_follows_data_image_size():
    config = load_config({"data": {"name": "relational", "image_size": 48, "kwargs": {"num_samples": 2}}})
    image, _ = build_task(config).build_dataset("train", train=True)[0]
    assert image.shape[-2:] == (48, 48)
    data = {"name": "relational", "image_size": 48, "kwargs": {"num_samples": 2, "image_size": 64}}
    clash = load_config({"data": data})
    with pytest.raises(ValueError, match="data.kwargs.image_size: 64 differs from data.image_size 48"):
        build_task(clash).build_dataset("train", train=True)


def test_non_finite_gradient_on_the_last_step_stops_before_the_optimiser(tmp_path):
    """A finite loss whose gradients are infinite (no scaler) on the last step of an epoch must not reach the
    optimiser nor last.pt."""
    config = tiny_config(str(tmp_path), train={"epochs": 2})

    class InfGrad(TinyTask):
        def train_step(self, model, batch):
            loss, outputs = super().train_step(model, batch)
            if self.loss_calls == 8:  # the 4th (last) step of epoch 2: a finite loss, infinite gradients
                model.fc.bias.register_hook(lambda g: torch.full_like(g, float("inf")))
            return loss, outputs

    with pytest.raises(NonFiniteLossError, match="the gradient norm is inf at step 8") as info:
        train(config, InfGrad(config))
    assert info.value.step == 8 and info.value.checkpoint == tmp_path / "last.pt"
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_non_finite_gradient_with_finite_loss(tmp_path):
    config = tiny_config(str(tmp_path), train={"epochs": 1})

    class GradOnly(TinyTask):
        def train_step(self, model, batch):
            loss, outputs = super().train_step(model, batch)
            if self.loss_calls == 4:
                model.fc.bias.register_hook(lambda g: torch.full_like(g, float("inf")))
            return loss, outputs

    with pytest.raises(NonFiniteLossError, match="the gradient norm is inf at step 4"):
        train(config, GradOnly(config))
    assert not (tmp_path / "last.pt").exists()


def test_nan_validation_loss_stops_with_the_last_good_checkpoint(tmp_path):
    config = tiny_config(str(tmp_path), train={"epochs": 3})

    class NanVal(TinyTask):
        validations = 0

        def eval_loss(self, preds, batch):
            loss = super().eval_loss(preds, batch)
            return loss * float("nan") if self.validations >= 2 else loss

        def create_meter(self, dataset, *, train=False):
            if not train:
                self.validations += 1
            return super().create_meter(dataset, train=train)

    with pytest.raises(NonFiniteLossError, match="the validation loss is nan at step 8"):
        train(config, NanVal(config))
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 4
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["step"] == 4 and math.isfinite(best["metrics"]["val_loss"])


def test_seeded_dataset_leaves_cuda_generators_alone(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: calls.append(seed))
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda seed: calls.append(seed))
    data = SeededDataset([torch.rand(2) for _ in range(3)], seed=0)
    first = data[(0, 1)]
    assert torch.equal(first, data[(0, 1)])  # same (epoch, index): same draw
    assert calls == []


def test_files_written_by_a_run_are_readable_by_others(tmp_path):
    config = tiny_config(str(tmp_path), train={"epochs": 1})
    old = os.umask(0o022)
    try:
        train(config, TinyTask(config))
    finally:
        os.umask(old)
    for name in ("last.pt", "config.yaml", "metrics.csv"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
    assert not list(tmp_path.glob(".*tmp*"))


def test_resume_keeps_the_tensorboard_points_of_the_resumed_step(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tiny_config(str(tmp_path), train={"epochs": 2}, output={"tensorboard": True})
    train(config, TinyTask(config))
    config = tiny_config(str(tmp_path), train={"epochs": 3}, output={"tensorboard": True})
    train(config, TinyTask(config), resume=True)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [e.step for e in events.Scalars("epoch/train_loss")] == [4, 8, 12]


def test_task_defaults_raise_for_what_a_task_must_supply():
    task = Task(load_config({}))
    with pytest.raises(NotImplementedError, match="Task.build_dataset"):
        task.build_dataset("train", train=True)
    assert task.primary_metric == "loss" and task.metric_direction("loss") == "min"


def test_float16_scaler_skips_an_overflowing_step_even_with_clipping(tmp_path):
    """With the float16 grad scaler, non-finite gradients are an overflow the scaler handles (it skips the step and
    lowers its scale): the run goes on, also when optim.clip_grad_norm unscales the gradients first."""
    config = tiny_config(
        str(tmp_path), train={"epochs": 1, "amp": "float16"}, optim={"lr": 0.05, "clip_grad_norm": 1.0}
    )

    class Overflow(TinyTask):
        def train_step(self, model, batch):
            loss, outputs = super().train_step(model, batch)
            if self.loss_calls == 2:  # this step's gradients overflow, the others do not

                def once(grad):
                    handle.remove()
                    return torch.full_like(grad, float("inf"))

                handle = model.fc.bias.register_hook(once)
            return loss, outputs

    metrics = train(config, Overflow(config))
    assert metrics["step"] == 4
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["scaler"]["scale"] == 2.0**15  # the initial 2**16, halved once for the skipped step
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_one_host_read_per_training_step(tmp_path, monkeypatch):
    """The loss and the gradient check share one host read a step; meters stay on the device: a run of 8 steps
    reads exactly 4 more values than a run of 4 steps (everything else, validation and checkpoints, is the same)."""
    calls: list[str] = []
    for name in ("item", "tolist", "__int__", "__float__", "__bool__", "__index__", "cpu", "numpy"):
        original = getattr(torch.Tensor, name)

        def spy(self, *args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, spy)

    def reads(n_train: int) -> int:
        config = tiny_config(str(tmp_path / str(n_train)), train={"epochs": 1, "log_every": 1})
        calls.clear()
        train(config, TinyTask(config, n_train=n_train, dropout=0.0))
        return len(calls)

    assert reads(64) - reads(32) == 8 - 4


def test_validation_and_evaluation_show_progress(tmp_path, capsys):
    from glore.engine import evaluate

    config = tiny_config(str(tmp_path), train={"epochs": 1, "progress": "plain"}, data={"val_batch_size": 4})
    train(config, TinyTask(config))
    err = capsys.readouterr().err
    assert re.search(r"^validation 4/4 batches in \d+:\d\d:\d\d$", err, re.M), err  # 13 samples, batches of 4
    evaluate(config, tmp_path / "last.pt", TinyTask(config))
    assert re.search(r"^evaluation 4/4 batches in ", capsys.readouterr().err, re.M)


def test_eval_every_is_refused_with_an_iteration_budget(tmp_path):
    with pytest.raises(ValueError, match="train.eval_every: 2 counts epochs, .* set train.eval_every_iters"):
        tiny_config(str(tmp_path), train={"iterations": 6, "eval_every": 2})  # when the config loads
    config = tiny_config(str(tmp_path), train={"iterations": 6})
    config.train.eval_every = 2  # and when a loaded config was edited
    with pytest.raises(ValueError, match="train.eval_every: 2 counts epochs, .* set train.eval_every_iters"):
        train(config, TinyTask(config))
