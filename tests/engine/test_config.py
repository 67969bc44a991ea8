"""Configuration: YAML, overrides, and errors that name the key and list what is valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from glore.engine.config import Config, ConfigError, load_config, save_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_defaults_and_yaml(tmp_path):
    assert load_config() == Config()
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  name: resnet50\n  glore: res4:3\noptim:\n  lr: 1\ntrain:\n  epochs: 3\n")
    config = load_config(path)
    assert config.model.name == "resnet50" and config.model.glore == "res4:3"
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)  # an int is accepted for a float
    assert config.train.epochs == 3 and config.data.batch_size == Config().data.batch_size
    save_config(config, tmp_path / "again.yaml")
    assert load_config(tmp_path / "again.yaml") == config


def test_overrides():
    config = load_config(
        {"optim": {"lr": 0.5}},
        [
            "optim.lr=0.1",
            "optim.nesterov=true",
            "model.glore={res4: [1, 3]}",
            "model.kwargs.widths=[8, 16, 32, 64]",
            "data.val_split=null",
            "optim.clip_grad_norm=2",
            "output.dir=runs/x=y",
        ],
    )
    assert config.optim.lr == 0.1 and config.optim.nesterov is True
    assert config.model.glore == {"res4": [1, 3]}
    assert config.model.kwargs == {"widths": [8, 16, 32, 64]}
    assert config.data.val_split is None and config.optim.clip_grad_norm == 2.0
    assert config.output.dir == "runs/x=y"  # only the first '=' separates key and value


def test_string_values_stay_strings(tmp_path):
    # YAML 1.1 would read off/no/yes as booleans and 1e-3 as a string; the field's type decides.
    config = load_config(
        None, ["train.progress=off", "output.dir=no", "model.name='resnet50'", "model.pretrained=null"]
    )
    assert config.train.progress == "off" and config.output.dir == "no" and config.model.name == "resnet50"
    assert config.model.pretrained is None
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  progress: off\n")
    assert load_config(path).train.progress == "off"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lrr=0.1", "unknown key 'optim.lrr'; valid keys in 'optim': name, lr, lr_base_batch_size, momentum"),
        (
            "optimizer.lr=0.1",
            "valid keys at the top level: task, task_args, model, data, optim, schedule, train, output",
        ),
        ("optim.lr=fast", "optim.lr: expected float, got str 'fast'"),
        ("train.epochs=1.5", "train.epochs: expected int, got float 1.5"),
        ("train.amp=fp8", "train.amp: expected one of 'none', 'bfloat16', 'float16'"),
        ("optim.nesterov=maybe", "optim.nesterov: expected bool"),
        ("data.mean=[0.5, x]", r"data.mean\[1\]: expected float"),
        ("optim.lr.value=1", "'optim.lr' is a float, it has no sub-keys"),
        ("optim.lr", "expected KEY=VALUE"),
        ("=3", "expected a dotted key"),
    ],
)
def test_override_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_yaml_errors(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epochz: 3\n")
    with pytest.raises(ConfigError, match="unknown key 'train.epochz'; valid keys in 'train': epochs"):
        load_config(path)
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping of sections"):
        load_config(path)
    path.write_text("train: 3\n")
    with pytest.raises(ConfigError, match="train: expected a mapping of epochs, iterations, eval_every_iters, seed"):
        load_config(path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_recipes_load(path):
    config = load_config(path)
    assert config.train.epochs >= 1


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_recipes_build_their_networks(path):
    from glore.models import create_model

    m = load_config(path).model
    # Pretrained weights are not fetched here; the architecture and the unit options must be accepted.
    net = create_model(m.name, num_classes=7, glore=m.glore, glore_args=m.glore_args or None, **m.kwargs)
    has_units = any(".glore" in name for name, _ in net.named_modules())
    assert has_units == (m.glore is not None)


def test_recipe_values():
    configs = {p.stem: load_config(p) for p in CONFIGS}
    cub = configs["cub200_resnet18_glore"]
    assert (cub.model.name, cub.model.glore, cub.train.epochs, cub.data.batch_size) == ("resnet18", "res4:1", 10, 32)
    assert (cub.optim.lr, cub.optim.weight_decay, cub.optim.momentum) == (0.04, 5e-4, 0.9)
    assert cub.model.glore_args == {"num_nodes": 16, "num_state": 256} and cub.model.pretrained
    assert configs["cub200_resnet18"].model.glore is None
    r50 = configs["imagenet_resnet50_glore"]
    assert (r50.model.glore, r50.train.epochs, r50.data.batch_size, r50.optim.lr) == ("res4:3", 100, 256, 0.1)
    assert (r50.schedule.name, r50.schedule.warmup_epochs, r50.optim.weight_decay) == ("cosine", 5.0, 1e-4)
    assert r50.train.label_smoothing == 0.1 and configs["imagenet_resnet50"].model.glore is None
    assert configs["demo"].model.glore is not None


def test_exponent_numbers_are_floats(tmp_path):
    # YAML 1.1 (PyYAML) reads 1e-3 as a string; glore reads it as YAML 1.2 does, in overrides and in recipes.
    config = load_config(None, ["optim.lr=1e-3", "optim.weight_decay=5E-4", "model.kwargs.scale=2e1"])
    assert config.optim.lr == 0.001 and isinstance(config.optim.lr, float)
    assert config.optim.weight_decay == 0.0005 and config.model.kwargs == {"scale": 20.0}
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 1e-2\n  eps: -1.5e-8\n")
    config = load_config(path)
    assert config.optim.lr == 0.01 and config.optim.eps == -1.5e-8
    assert load_config(None, ["output.dir=1e-3"]).output.dir == "1e-3"  # a string option keeps the text


def test_a_directory_as_config_is_named_as_one(tmp_path):
    with pytest.raises(ConfigError, match=r"is a directory; expected a YAML recipe file"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.batch_size=-4", "data.batch_size: expected a positive int, got -4"),
        ("data.batch_size=0", "data.batch_size: expected a positive int, got 0"),
        ("data.val_batch_size=0", "data.val_batch_size: expected a positive int, got 0"),
        ("data.num_workers=-1", "data.num_workers: expected an int >= 0, got -1"),
        ("data.image_size=0", "data.image_size: expected a positive int"),
        ("model.num_classes=0", "model.num_classes: expected a positive int"),
        ("train.epochs=-2", "train.epochs: expected a positive int, got -2"),
        ("train.iterations=0", "train.iterations: expected a positive int"),
        ("train.eval_every_iters=0", "train.eval_every_iters: expected a positive int"),
        ("train.log_every=0", "train.log_every: expected a positive int"),
        ("train.checkpoint_every_iters=0", "train.checkpoint_every_iters: expected a positive int"),
        ("train.checkpoint_every_minutes=-1", "train.checkpoint_every_minutes: expected a positive number"),
        ("schedule.warmup_iters=-1", "schedule.warmup_iters: expected an int >= 0"),
    ],
)
def test_out_of_range_values_name_their_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_range_bounds_and_null_pass():
    config = load_config(
        None, ["data.num_workers=0", "data.val_batch_size=null", "train.checkpoint_every_minutes=null"]
    )
    assert config.data.num_workers == 0 and config.train.checkpoint_every_minutes is None
