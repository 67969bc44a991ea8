"""The training loop on a tiny stand-in task: files, exact resume, NaN stop, AMP, optimiser options."""

from __future__ import annotations

import math

import pytest
import torch
from engine_standins import SimulatedCrash, TinyTask, tiny_config

from glore.engine import NonFiniteLossError, build_optimizer, evaluate, load_checkpoint, param_groups, train
from glore.engine.logger import read_csv


def _weights(path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def test_files_and_metrics(tmp_path):
    config = tiny_config(
        str(tmp_path / "run"), output={"tensorboard": True, "plots": True}, train={"epochs": 2, "log_every": 1}
    )
    metrics = train(config, TinyTask(config, bn=True))
    run = tmp_path / "run"
    for name in ("last.pt", "best.pt", "metrics.csv", "steps.csv", "curves.png", "config.yaml"):
        assert (run / name).is_file(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    rows = read_csv(run / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1.0, 2.0]
    assert all(r["val_count"] == 13 for r in rows)
    steps = read_csv(run / "steps.csv")
    assert [r["step"] for r in steps] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]  # 32 samples / batch 8, 2 epochs
    assert metrics["epoch"] == 2 and metrics["val_count"] == 13
    state = load_checkpoint(run / "last.pt")
    assert state["epoch"] == 2 and state["model_config"] == {"num_classes": 4, "width": 8, "bn": True, "dropout": 0.1}
    assert state["metrics"]["val_top1"] == pytest.approx(metrics["val_top1"])
    # evaluate() rebuilds the network from the checkpoint and reproduces the validation metrics.
    again = evaluate(config, run / "last.pt", TinyTask(config, bn=True))
    assert again["val_top1"] == pytest.approx(metrics["val_top1"])
    assert again["val_loss"] == pytest.approx(metrics["val_loss"], rel=1e-5)


def test_training_learns(tmp_path):
    config = tiny_config(str(tmp_path), train={"epochs": 4}, optim={"lr": 0.2}, data={"batch_size": 4})
    metrics = train(config, TinyTask(config, n_train=64, n_val=64))
    assert metrics["val_top1"] > 0.6  # four classes: chance is 0.25


@pytest.mark.parametrize("amp", ["none", "bfloat16"])
def test_resume_is_exact(tmp_path, amp):
    def run(out, resume=False, crash_at=None):
        config = tiny_config(str(out), train={"epochs": 4, "amp": amp, "log_every": 1}, optim={"nesterov": True})
        train(config, TinyTask(config, bn=True, crash_at=crash_at), resume=resume)

    run(tmp_path / "straight")
    # 4 steps per epoch: the run dies in the 2nd step of epoch 3, after the checkpoint of epoch 2.
    with pytest.raises(SimulatedCrash):
        run(tmp_path / "split", crash_at=10)
    assert load_checkpoint(tmp_path / "split" / "last.pt")["epoch"] == 2
    # The second half: a fresh Trainer that resumes from last.pt.
    torch.manual_seed(12345)  # whatever the caller's generators hold, resuming restores them
    run(tmp_path / "split", resume=True)
    a, b = _weights(tmp_path / "straight" / "last.pt"), _weights(tmp_path / "split" / "last.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows = read_csv(tmp_path / "split" / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1.0, 2.0, 3.0, 4.0]
    straight = read_csv(tmp_path / "straight" / "metrics.csv")
    assert [r["train_loss"] for r in rows] == [r["train_loss"] for r in straight]
    # steps.csv lost the rows the crashed attempt wrote in epoch 3, and has each step once.
    assert [r["step"] for r in read_csv(tmp_path / "split" / "steps.csv")] == [float(i) for i in range(1, 17)]


def test_resume_without_checkpoint_is_an_error(tmp_path):
    config = tiny_config(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="last.pt"):
        train(config, TinyTask(config), resume=True)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    config = tiny_config(str(tmp_path), train={"epochs": 3})
    # 4 steps per epoch: the 6th loss is the 2nd step of epoch 2.
    task = TinyTask(config, nan_at=6)
    with pytest.raises(NonFiniteLossError) as info:
        train(config, task)
    err = info.value
    assert err.step == 6 and err.epoch == 2 and math.isnan(err.loss)
    message = str(err)
    assert "step 6" in message and "learning rate" in message and f"{err.lr:.6g}" in message
    assert str(tmp_path / "last.pt") in message
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    # Resuming from the kept checkpoint (with the cause gone) finishes the run.
    metrics = train(config, TinyTask(config), resume=True)
    assert metrics["epoch"] == 3


def test_nan_before_any_checkpoint(tmp_path):
    config = tiny_config(str(tmp_path))
    with pytest.raises(NonFiniteLossError, match="no checkpoint had been written yet"):
        train(config, TinyTask(config, nan_at=1))
    assert not (tmp_path / "last.pt").exists()


def test_float16_grad_scaler_and_clipping(tmp_path):
    # float16 autocast with a GradScaler: the CUDA recipe's logic, run here on CPU.
    config = tiny_config(str(tmp_path), train={"amp": "float16", "channels_last": True}, optim={"clip_grad_norm": 1.0})
    metrics = train(config, TinyTask(config, bn=True))
    assert math.isfinite(metrics["train_loss"])
    scaler = load_checkpoint(tmp_path / "last.pt")["scaler"]
    assert scaler["scale"] > 0 and "_growth_tracker" in scaler


def test_adamw_and_label_smoothing(tmp_path):
    config = tiny_config(
        str(tmp_path),
        optim={"name": "adamw", "lr": 0.01, "weight_decay": 0.05, "decay_norm_and_bias": False},
        train={"label_smoothing": 0.1},
        schedule={"name": "step", "step_size": 1, "gamma": 0.5, "warmup_epochs": 0},
    )
    train(config, TinyTask(config, bn=True))
    state = load_checkpoint(tmp_path / "last.pt")
    groups = state["optimizer"]["param_groups"]
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0]
    assert groups[0]["lr"] == pytest.approx(0.01 * 0.5**2)  # two epochs of step decay, after the last step


def test_param_groups_split_norms_and_biases():
    from engine_standins import TinyNet

    model = TinyNet(bn=True)
    groups = param_groups(model, 1e-4, decay_norm_and_bias=False)
    decayed = {id(p) for p in groups[0]["params"]}
    assert decayed == {id(model.conv.weight), id(model.fc.weight)}
    assert len(groups[1]["params"]) == 4  # conv bias, BN weight and bias, fc bias
    assert len(param_groups(model, 1e-4)) == 1


def test_optimizer_errors(tmp_path):
    from engine_standins import TinyNet

    config = tiny_config(str(tmp_path), optim={"nesterov": True, "momentum": 0.0})
    with pytest.raises(ValueError, match="optim.nesterov"):
        build_optimizer(TinyNet(), config)
    config = tiny_config(str(tmp_path), optim={"lr": 0.0})
    with pytest.raises(ValueError, match="optim.lr"):
        build_optimizer(TinyNet(), config)


def test_batch_larger_than_dataset_is_an_error(tmp_path):
    config = tiny_config(str(tmp_path), data={"batch_size": 64})
    with pytest.raises(ValueError, match="data.batch_size"):
        train(config, TinyTask(config, n_train=32))


def glore_config(tiny_recipe, out_dir: str, **train_options) -> object:
    from glore.engine import load_config

    return load_config(
        tiny_recipe(
            data={"num_workers": 1},
            train={"progress": "plain", **train_options},
            output={"dir": out_dir, "tensorboard": True, "plots": True},
        )
    )


def test_glore_network_one_epoch_end_to_end(tmp_path, tiny_recipe):
    from glore.engine import load_model

    config = glore_config(tiny_recipe, str(tmp_path / "run"))
    metrics = train(config)
    run = tmp_path / "run"
    for name in ("last.pt", "best.pt", "metrics.csv", "steps.csv", "curves.png", "config.yaml"):
        assert (run / name).is_file(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    assert [r["step"] for r in read_csv(run / "steps.csv")] == [2.0, 4.0]
    assert metrics["val_count"] == 12 and metrics["train_skipped"] == 0
    state = load_checkpoint(run / "best.pt")
    assert state["model_config"]["glore"] == {"res4": [1]}
    assert any(".glore" in key for key in state["model"])
    net = load_model(run / "last.pt")
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 2)
    assert evaluate(config, run / "last.pt")["val_top1"] == pytest.approx(metrics["val_top1"])


def test_skipped_samples_are_counted(tmp_path):
    from glore.data import collate

    class Holes(TinyTask):
        """Every 4th sample is unreadable (None), as with data.on_error = skip."""

        def build_dataset(self, split, *, train):
            base = super().build_dataset(split, train=train)

            class WithHoles(torch.utils.data.Dataset):
                num_classes = base.num_classes

                def __len__(self):
                    return len(base)

                def __getitem__(self, i):
                    return None if i % 4 == 0 else (base[i][0], int(base[i][1]))

            return WithHoles()

        def collate(self, samples):
            return collate(samples)

    config = tiny_config(str(tmp_path), train={"epochs": 1})
    metrics = train(config, Holes(config, n_train=32, n_val=13))
    assert metrics["train_skipped"] == 8  # 32 samples, one in four
    assert metrics["val_skipped"] == 4 and metrics["val_count"] == 9  # indices 0, 4, 8, 12 of 13
    assert read_csv(tmp_path / "metrics.csv")[0]["train_skipped"] == 8


@pytest.mark.slow
def test_torch_compile(tmp_path):
    config = tiny_config(str(tmp_path), train={"epochs": 1, "compile": True})
    metrics = train(config, TinyTask(config))
    assert math.isfinite(metrics["train_loss"])
    state = load_checkpoint(tmp_path / "last.pt")["model"]
    assert not any(key.startswith("_orig_mod") for key in state)  # the plain network's keys


def test_eval_every_and_best_metric(tmp_path):
    config = tiny_config(str(tmp_path), train={"epochs": 3, "eval_every": 2})
    train(config, TinyTask(config))
    rows = read_csv(tmp_path / "metrics.csv")
    assert [r["val_count"] for r in rows] == [None, 13.0, 13.0]  # epoch 2, and always the last
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["epoch"] in (2, 3) and best["best_metric"] == pytest.approx(max(r["val_top1"] for r in rows[1:]))
    config = tiny_config(str(tmp_path / "bad"), output={"best_metric": "top9"})
    with pytest.raises(ValueError, match="output.best_metric: 'top9' .* available: .*top1"):
        train(config, TinyTask(config))


def test_cached_generated_data(tmp_path, tiny_recipe):
    config = glore_config(tiny_recipe, str(tmp_path / "cached"), epochs=2)
    config.data.cache = True
    cached = train(config)
    plain_config = glore_config(tiny_recipe, str(tmp_path / "plain"), epochs=2)
    plain = train(plain_config)
    assert cached["val_count"] == 12 and cached["train_loss"] == pytest.approx(plain["train_loss"], rel=1e-6)
    a = load_checkpoint(tmp_path / "cached" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "plain" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same samples, only computed once
    with pytest.raises(ValueError, match="data.cache"):  # when the config loads
        tiny_config(str(tmp_path / "bad"), data={"cache": True, "transform": "standard"})
    config.data.transform = "standard"  # and when a loaded config was edited
    with pytest.raises(ValueError, match="data.cache"):
        train(config)


def test_resume_of_a_finished_run_changes_nothing(tmp_path):
    config = tiny_config(str(tmp_path), train={"epochs": 1})
    first = train(config, TinyTask(config))
    before = load_checkpoint(tmp_path / "last.pt")
    again = train(config, TinyTask(config), resume=True)
    after = load_checkpoint(tmp_path / "last.pt")
    assert again["epoch"] == 1 and again["val_top1"] == first["val_top1"]
    assert all(torch.equal(before["model"][k], after["model"][k]) for k in before["model"])


class _RandomSamples(torch.utils.data.Dataset):
    """Each sample is a random draw, like a random augmentation."""

    num_classes = 2

    def __len__(self):
        return 12

    def __getitem__(self, index):
        return torch.rand(3), index % 2


def test_augmentation_depends_on_sample_and_epoch_only():
    from torch.utils.data import DataLoader

    from glore.engine.sampling import EpochSampler, SeededDataset

    def epoch_draws(workers, epoch):
        sampler = EpochSampler(range(12))
        sampler.set_epoch(epoch)
        dataset = SeededDataset(_RandomSamples(), seed=3)
        generator = torch.Generator()  # as the trainer does: the loader itself draws nothing from the global one
        loader = DataLoader(dataset, batch_size=4, sampler=sampler, num_workers=workers, generator=generator)
        return torch.cat([x for x, _ in loader])

    torch.manual_seed(0)
    state = torch.get_rng_state()
    in_process = epoch_draws(0, epoch=1)
    assert torch.equal(torch.get_rng_state(), state)  # the main process's generator is left as it was
    assert torch.equal(in_process, epoch_draws(2, epoch=1))  # workers or not, the same draws
    assert not torch.equal(in_process, epoch_draws(0, epoch=2))  # a new epoch, new draws
    assert not torch.equal(in_process[0], in_process[1])  # and each sample its own
