"""optim.lr_base_batch_size: the learning rate follows the batch linearly, the recipe's own batch keeps its lr."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from glore.engine import load_config
from glore.engine.config import ConfigError
from glore.engine.optim import build_optimizer, effective_lr


def _config(batch: int, base: int | None):
    return load_config(
        {
            "data": {"name": "relational", "batch_size": batch},
            "optim": {
                "lr": 0.1,
                "lr_base_batch_size": base,
                "param_rules": [{"match": r"^1\.", "lr_mult": 0.5}],
            },
        }
    )


@pytest.mark.parametrize(
    ("batch", "base", "lr"), [(256, 256, 0.1), (64, 256, 0.025), (2, 256, 0.1 / 128), (8, None, 0.1)]
)
def test_every_group_takes_the_scaled_rate(batch, base, lr):
    config = _config(batch, base)
    assert effective_lr(config) == pytest.approx(lr)
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    optimizer = build_optimizer(net, config)
    rates = sorted(group["lr"] for group in optimizer.param_groups)
    assert rates == pytest.approx(sorted([lr, 0.5 * lr]))
    assert optimizer.defaults["lr"] == pytest.approx(lr)
    torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)  # the schedule starts from the scaled rate
    assert sorted(group["initial_lr"] for group in optimizer.param_groups) == pytest.approx(sorted([lr, 0.5 * lr]))


def test_a_base_batch_below_one_is_named():
    with pytest.raises(ConfigError, match="optim.lr_base_batch_size"):
        _config(8, 0)


def test_a_scaled_rate_is_said_in_the_log(tmp_path, tiny_recipe, capsys):
    from glore.engine import train

    recipe = tiny_recipe(optim={"lr": 0.08, "lr_base_batch_size": 32}, output={"dir": str(tmp_path)})
    train(load_config(recipe))
    printed = capsys.readouterr()
    line = "optim.lr 0.08 is set for a batch of 32 (optim.lr_base_batch_size): 0.02 at data.batch_size 8"
    assert line in printed.out + printed.err
