"""Every recipe in configs/ loads, names a registered task that accepts its options, and builds its network."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from glore.engine import load_config
from glore.engine.task import build_task
from glore.models import create_model

CONFIGS = sorted(p for p in (Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_recipe_loads_and_builds(path):
    config = load_config(path)
    task = build_task(config)
    assert config.output.best_metric is None or task.metric_direction(config.output.best_metric)
    m = config.model
    if m.num_classes is None:  # classification recipes take the class count from their dataset
        return
    with torch.device("meta"):
        model = create_model(
            m.name, num_classes=m.num_classes, glore=m.glore, glore_args=m.glore_args or None, **m.kwargs
        )
    assert model.model_config["num_classes"] == m.num_classes


def test_the_official_video_units_sit_where_the_official_networks_have_them():
    positions = {}
    for name in ("kinetics_resnet50_3d_glore", "kinetics_resnet101_3d_glore"):
        m = load_config(Path(CONFIGS[0]).with_name(f"{name}.yaml")).model
        with torch.device("meta"):
            model = create_model(m.name, num_classes=400, glore=m.glore, glore_args=m.glore_args)
        positions[name] = sorted(n for n, mod in model.named_modules() if type(mod).__name__ == "GloRe")
    assert len(positions["kinetics_resnet50_3d_glore"]) == 5 and len(positions["kinetics_resnet101_3d_glore"]) == 5


def test_precise_batchnorm_is_the_plain_average_over_the_batches():
    from glore.data import Batch
    from glore.tasks.video import precise_batchnorm

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 1), torch.nn.BatchNorm3d(4), torch.nn.Dropout(0.5)).eval()
    clips = [torch.randn(2, 3, 2, 4, 4) * (k + 1) + k for k in range(3)]
    batches = iter(Batch(c, torch.zeros(2), {}, 0) for c in clips)
    assert precise_batchnorm(net, batches, count=3) == 3
    conv_out = [net[0](c) for c in clips]  # (2, 4, 2, 4, 4) each
    expected_mean = torch.stack([o.mean(dim=(0, 2, 3, 4)) for o in conv_out]).mean(0)
    expected_var = torch.stack([o.var(dim=(0, 2, 3, 4), unbiased=True) for o in conv_out]).mean(0)
    bn = net[1]
    assert torch.allclose(bn.running_mean, expected_mean, atol=1e-5)
    assert torch.allclose(bn.running_var, expected_var, atol=1e-4)
    assert bn.momentum == 0.1 and not net.training


def test_video_training_with_precise_bn_runs_through_the_engine(tmp_path):
    from glore.engine import load_checkpoint, train
    from glore.tools.demo import TASK_QUICK_OVERRIDES

    overrides = [*TASK_QUICK_OVERRIDES, "task_args.precise_bn=2", f"output.dir={tmp_path}", "train.progress=off"]
    config = load_config(Path(CONFIGS[0]).with_name("demo_video.yaml"), overrides)
    metrics = train(config)
    assert "val_video_top1" in metrics
    assert load_checkpoint(tmp_path / "last.pt")["config"]["task_args"]["precise_bn"] == 2
