"""Precise BatchNorm (task_args.precise_bn) through torch.optim.swa_utils.update_bn: the same tensors as the plain
average over the batches that glore computed with its own loop."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from glore.data import Batch
from glore.tasks.video import precise_batchnorm


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv3d(3, 4, 1), nn.BatchNorm3d(4), nn.ReLU(), nn.Conv3d(4, 4, 1), nn.BatchNorm3d(4, momentum=0.3)
    ).eval()


def _clips() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.randn(2, 3, 2, 4, 4, generator=g) * (k + 1) + k for k in range(4)]


@torch.no_grad()
def _own_loop(model: nn.Module, clips: list[torch.Tensor]) -> None:
    """What precise_batchnorm computed before it called update_bn: reset, momentum None, forward in training mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for clip in clips:
        model(clip)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.eval()


def test_update_bn_computes_what_our_loop_computed():
    clips = _clips()
    ours, theirs = _net(), _net()
    _own_loop(ours, clips[:3])
    empty = Batch(torch.zeros(0, 3, 2, 4, 4), torch.zeros(0), {}, 2)  # every sample skipped: passed over
    full = [Batch(c, torch.zeros(len(c)), {}, 0) for c in clips]
    assert precise_batchnorm(theirs, iter([full[0], empty, *full[1:]]), count=3) == 3
    for key, value in ours.state_dict().items():
        assert torch.equal(theirs.state_dict()[key], value), key
    assert [m.momentum for m in theirs if isinstance(m, nn.BatchNorm3d)] == [0.1, 0.3]  # restored
    assert not theirs.training
    mean = torch.stack([theirs[0](c).mean(dim=(0, 2, 3, 4)) for c in clips[:3]]).mean(0)
    torch.testing.assert_close(theirs[1].running_mean, mean)  # the plain average over the three batches


def test_a_failing_batch_restores_momenta_and_mode():
    net = _net()

    def batches():
        yield Batch(_clips()[0], torch.zeros(2), {}, 0)
        raise OSError("unreadable video")

    with pytest.raises(OSError, match="unreadable"):
        precise_batchnorm(net, batches(), count=3)
    assert [m.momentum for m in net if isinstance(m, nn.BatchNorm3d)] == [0.1, 0.3] and not net.training
