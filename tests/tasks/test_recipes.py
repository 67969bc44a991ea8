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
