"""The moving average of the weights (train.ema): its arithmetic, validation and checkpoints, exact resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from engine_standins import SimulatedCrash, TinyNet, TinyTask, tiny_config
from torch import nn

from glore.engine import ConfigError, evaluate, load_checkpoint, load_config, train
from glore.engine.ema import WeightEMA, ema_decay
from glore.engine.logger import read_csv


def _net() -> nn.Module:
    torch.manual_seed(0)
    net = TinyNet(bn=True)
    net.norm.running_mean.uniform_()
    return net


def _perturb(net: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in [*net.parameters(), net.norm.running_mean, net.norm.running_var]:
            t.add_(torch.randn(t.shape, generator=g))
        net.norm.num_batches_tracked += 7


@pytest.mark.parametrize("warmup", [False, True])
def test_the_average_of_weights_and_buffers(warmup):
    net = _net()
    ema = WeightEMA(net, decay=0.9, every=2, warmup=warmup)
    expected = None
    for step in range(1, 7):
        _perturb(net, step)
        ema.step(net, step)
        if step % 2:
            continue
        current = {k: v.clone() for k, v in net.state_dict().items()}
        if expected is None:  # the first update copies
            expected = current
        else:
            d = ema_decay(0.9, ema.updates - 1, warmup=warmup)
            expected = {k: (d * expected[k] + (1 - d) * v if v.is_floating_point() else v) for k, v in current.items()}
    assert ema.updates == 3  # steps 2, 4, 6
    got = ema.module.state_dict()
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=1e-6, atol=1e-6, msg=key)
    assert got["norm.num_batches_tracked"] == net.norm.num_batches_tracked  # copied, not averaged
    assert ema_decay(0.9, 1, warmup=True) == pytest.approx(2 / 11) and ema_decay(0.9, 1000, warmup=True) == 0.9
    assert all(not p.requires_grad for p in ema.module.parameters())
    # A restored average continues as the original does.
    again = WeightEMA(_net(), decay=0.9, every=2, warmup=warmup)
    again.load_state_dict(ema.state_dict())
    _perturb(net, 99)
    ema.step(net, 8)
    again.step(net, 8)
    for key, value in ema.module.state_dict().items():
        assert torch.equal(again.module.state_dict()[key], value), key


def test_the_average_keeps_channels_last():
    net = _net().to(memory_format=torch.channels_last)
    ema = WeightEMA(net, decay=0.5)
    _perturb(net, 1)
    ema.step(net, 1)
    _perturb(net, 2)
    ema.step(net, 2)
    assert ema.module.conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_config_errors():
    assert load_config({"train": {"ema": {}}}).train.ema.decay == 0.9998
    assert load_config(None, ["train.ema.decay=0.99"]).train.ema.decay == 0.99  # set below a null section
    assert load_config().train.ema is None
    for override, message in [
        ("train.ema.decay=1.0", r"train.ema.decay: expected a float in \[0, 1\), got 1.0"),
        ("train.ema.every=0", "train.ema.every: expected a positive int, got 0"),
        ("train.ema={dcay: 0.9}", "unknown key 'train.ema.dcay'; valid keys in 'train.ema': decay, every"),
        ("train.ema=0.9", "train.ema: expected mapping or null, got float 0.9"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(None, [override])


def _ema_config(out, **train_args):
    return tiny_config(str(out), train={"epochs": 4, "log_every": 1, **train_args}, optim={"nesterov": True})


def _assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize(("amp", "channels_last"), [("none", False), ("bfloat16", True), ("float16", True)])
def test_resume_with_ema_is_exact(tmp_path, amp, channels_last):
    ema = {"decay": 0.8, "warmup": True}

    def run(out, resume=False, crash_at=None):
        config = _ema_config(out, amp=amp, channels_last=channels_last, ema=ema)
        train(config, TinyTask(config, bn=True, crash_at=crash_at), resume=resume)

    run(tmp_path / "straight")
    # 4 steps per epoch: the run dies in the 2nd step of epoch 3, after the checkpoint of epoch 2.
    with pytest.raises(SimulatedCrash):
        run(tmp_path / "split", crash_at=10)
    assert load_checkpoint(tmp_path / "split" / "last.pt")["ema"] == {"updates": 8}
    torch.manual_seed(12345)
    run(tmp_path / "split", resume=True)
    a, b = load_checkpoint(tmp_path / "straight" / "last.pt"), load_checkpoint(tmp_path / "split" / "last.pt")
    assert a["ema"] == b["ema"] == {"updates": 16}
    _assert_same_tensors(a["model"], b["model"])  # the average, buffers included
    _assert_same_tensors(a["trained_model"], b["trained_model"])
    assert not torch.equal(a["model"]["conv.weight"], a["trained_model"]["conv.weight"])
    assert not torch.equal(a["model"]["norm.running_mean"], a["trained_model"]["norm.running_mean"])
    assert a["model"]["norm.num_batches_tracked"] == a["trained_model"]["norm.num_batches_tracked"] == 16
    rows, straight = read_csv(tmp_path / "split" / "metrics.csv"), read_csv(tmp_path / "straight" / "metrics.csv")
    assert [r["val_top1"] for r in rows] == [r["val_top1"] for r in straight]
    assert [r["val_loss"] for r in rows] == [r["val_loss"] for r in straight]


def test_resume_inside_an_epoch_with_ema(tmp_path):
    def run(out, resume=False, crash_at=None):
        config = _ema_config(out, epochs=2, checkpoint_every_iters=3, ema={"decay": 0.7})
        train(config, TinyTask(config, bn=True, crash_at=crash_at), resume=resume)

    run(tmp_path / "straight")
    with pytest.raises(SimulatedCrash):  # the periodic checkpoint of step 6 is inside epoch 2
        run(tmp_path / "split", crash_at=8)
    state = load_checkpoint(tmp_path / "split" / "last.pt")
    assert state["step"] == 6 and state["partial"] is not None and state["ema"] == {"updates": 6}
    run(tmp_path / "split", resume=True)
    a, b = load_checkpoint(tmp_path / "straight" / "last.pt"), load_checkpoint(tmp_path / "split" / "last.pt")
    _assert_same_tensors(a["model"], b["model"])
    _assert_same_tensors(a["trained_model"], b["trained_model"])
    best_a, best_b = load_checkpoint(tmp_path / "straight" / "best.pt"), load_checkpoint(tmp_path / "split" / "best.pt")
    _assert_same_tensors(best_a["model"], best_b["model"])


def test_validation_reports_the_average(tmp_path):
    config = _ema_config(tmp_path, epochs=2, ema={"decay": 0.9, "validate_raw": True})
    metrics = train(config, TinyTask(config, bn=True))
    state = load_checkpoint(tmp_path / "last.pt")
    # val_* are the average's (what "model" holds, so evaluating the checkpoint reproduces them) ...
    again = evaluate(config, tmp_path / "last.pt", TinyTask(config, bn=True))
    assert again["val_loss"] == pytest.approx(metrics["val_loss"], rel=1e-6)
    assert again["val_top1"] == metrics["val_top1"]
    # ... and raw_val_* the trained network's.
    raw_path = tmp_path / "raw.pt"
    torch.save({"model": state["trained_model"], "model_config": state["model_config"]}, raw_path)
    raw = evaluate(config, raw_path, TinyTask(config, bn=True))
    assert metrics["raw_val_loss"] == pytest.approx(raw["val_loss"], rel=1e-6)
    assert metrics["raw_val_loss"] != metrics["val_loss"]
    assert "raw_val_top1" in read_csv(tmp_path / "metrics.csv")[-1]
    # best.pt holds the network that was evaluated.
    best = load_checkpoint(tmp_path / "best.pt")
    row = max(read_csv(tmp_path / "metrics.csv"), key=lambda r: (r["val_top1"], -r["step"]))
    assert best["step"] == row["step"] and best["metrics"]["val_top1"] == pytest.approx(row["val_top1"], abs=1e-6)
    assert "trained_model" in best and best["ema"]["updates"] == best["step"]


def test_decay_zero_is_the_trained_network(tmp_path):
    config = _ema_config(tmp_path, epochs=1, ema={"decay": 0.0, "validate_raw": True})
    metrics = train(config, TinyTask(config, bn=True))
    state = load_checkpoint(tmp_path / "last.pt")
    _assert_same_tensors(state["model"], state["trained_model"])
    assert metrics["val_loss"] == metrics["raw_val_loss"] and metrics["val_top1"] == metrics["raw_val_top1"]


def test_ema_switched_on_at_resume(tmp_path):
    config = _ema_config(tmp_path, epochs=1)
    train(config, TinyTask(config))
    longer = _ema_config(tmp_path, epochs=2, ema={"decay": 0.5})
    with pytest.raises(ConfigError, match="train.ema"):  # it changes the result: refused without --allow-changes
        train(longer, TinyTask(longer), resume=True)
    train(longer, TinyTask(longer), resume=True, allow_changes=True)
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["ema"] == {"updates": 4}  # the epoch after the resume


@pytest.mark.slow
def test_two_processes_resume_with_ema_exactly(tmp_path):
    from test_distributed import _torchrun

    # Each process's BatchNorm statistics, and so each process's average of them, differ inside an epoch: the
    # periodic checkpoint of step 6 (inside epoch 2) holds both processes' own, the epoch's end averages them.
    kwargs = {"bn": True, "dropout": 0.3, "n_train": 32, "n_val": 13}
    train_args = {"epochs": 3, "checkpoint_every_iters": 3, "ema": {"decay": 0.8}}
    straight = tiny_config(str(tmp_path / "straight"), train=train_args)
    split = tiny_config(str(tmp_path / "split"), train=train_args)
    metrics = _torchrun(tmp_path, "straight", straight, kwargs)
    died = _torchrun(tmp_path, "split", split, {**kwargs, "crash_at": 7}, expect_ok=False)
    assert "simulated crash" in died["stderr"]
    state = load_checkpoint(tmp_path / "split" / "last.pt")
    assert state["step"] == 6 and len(state["partial"]) == 2
    assert not torch.equal(
        state["partial"][0]["ema_buffers"]["norm.running_mean"], state["partial"][1]["ema_buffers"]["norm.running_mean"]
    )
    _torchrun(tmp_path, "split", split, {**kwargs, "resume": True})
    a, b = load_checkpoint(tmp_path / "straight" / "last.pt"), load_checkpoint(tmp_path / "split" / "last.pt")
    _assert_same_tensors(a["model"], b["model"])
    _assert_same_tensors(a["trained_model"], b["trained_model"])
    # Validation under torchrun (of the average) equals evaluating the checkpoint in one process.
    single = evaluate(straight, tmp_path / "straight" / "last.pt", TinyTask(straight, **kwargs))
    assert metrics["val_loss"] == pytest.approx(single["val_loss"], rel=1e-5)


@pytest.mark.slow
def test_the_imagenet_recipe_with_ema(tmp_path):
    """configs/imagenet_resnet50_glore.yaml with the average its comment shows, at its own precision (bfloat16) and
    memory format (channels-last); only paths and sizes changed besides."""
    from recipe_layouts import write_imagefolder

    root = write_imagefolder(tmp_path / "imagenet", ["n01", "n02"], {"train": 1, "val": 1})
    recipe = Path(__file__).resolve().parents[2] / "configs" / "imagenet_resnet50_glore.yaml"
    sizes = ["data.image_size=64", "data.batch_size=2", "data.num_workers=0", "train.epochs=5"]  # its 5 warm-up epochs
    paths = [f"data.root={root}", f"output.dir={tmp_path / 'run'}", "train.progress=off", "output.plots=false"]
    config = load_config(recipe, [*sizes, *paths, "train.ema.decay=0.9998", "output.tensorboard=false"])
    assert config.train.amp == "bfloat16" and config.train.channels_last
    metrics = train(config)
    assert metrics["val_count"] == 2 and "val_top1" in metrics
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["ema"] == {"updates": 5}  # 2 images, batch 2, 5 epochs
    changed = [k for k, v in state["model"].items() if not torch.equal(v, state["trained_model"][k])]
    assert "conv1.weight" in changed  # the average lags the trained weights
    assert state["model"]["conv1.weight"].is_contiguous(memory_format=torch.channels_last)


@pytest.mark.slow
def test_faults_with_ema(tmp_path):
    """glore train with an average, stopped by SIGTERM inside a step and killed inside the writes of last.pt and
    best.pt and inside a step, then continued: the same checkpoints (the average, the trained network and the
    update count) and tables as an uninterrupted run."""
    import yaml
    from test_faults import RECIPE, assert_same_run, glore_train, run_chain

    recipe = tmp_path / "ema.yaml"
    recipe.write_text(yaml.safe_dump({**RECIPE, "train": {**RECIPE["train"], "ema": {"decay": 0.8, "warmup": True}}}))
    reference = tmp_path / "reference"
    assert glore_train(recipe, reference).returncode == 0
    assert load_checkpoint(reference / "last.pt")["ema"] == {"updates": 12}
    faults = ["term:step:2", "kill:last.pt:2:half", "kill:best.pt:1:after", "kill:step:3"]
    run_chain(recipe, tmp_path / "run", faults)
    assert_same_run(reference, tmp_path / "run")
