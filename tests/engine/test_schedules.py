"""Learning-rate schedules against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from glore.engine.schedules import build_scheduler, lr_factor


def test_warmup_then_cosine():
    # 10 steps, 4 of warm-up from 0.2: 0.2, 0.4, 0.6, 0.8, then cosine over the remaining 6.
    f = [lr_factor(t, name="cosine", total_steps=10, warmup_steps=4, warmup_start_factor=0.2) for t in range(11)]
    assert f[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert f[4] == pytest.approx(1.0)
    assert f[7] == pytest.approx(0.5 * (1 + math.cos(math.pi * 3 / 6)))
    assert f[10] == pytest.approx(0.0)


def test_cosine_floor_and_poly():
    assert lr_factor(5, name="cosine", total_steps=10, min_factor=0.1) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(5, name="poly", total_steps=10, power=2.0) == pytest.approx(0.25)
    assert lr_factor(10, name="poly", total_steps=10, power=0.9) == pytest.approx(0.0)


def test_step_and_multistep():
    step = [lr_factor(t, name="step", total_steps=9, step_size=3, gamma=0.5) for t in range(9)]
    assert step == pytest.approx([1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25])
    multi = [lr_factor(t, name="multistep", total_steps=10, milestones=[2, 5], gamma=0.1) for t in range(7)]
    assert multi == pytest.approx([1, 1, 0.1, 0.1, 0.1, 0.01, 0.01])
    # Warm-up multiplies the step schedule, whose decay points stay absolute.
    assert lr_factor(1, name="multistep", total_steps=10, warmup_steps=2, warmup_start_factor=0.0) == 0.5


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="schedule name"):
        lr_factor(0, name="exp", total_steps=10)
    with pytest.raises(ValueError, match="warmup_steps"):
        lr_factor(0, name="cosine", total_steps=10, warmup_steps=11)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="schedule.warmup_epochs"):
        build_scheduler(opt, name="cosine", epochs=2, steps_per_epoch=5, warmup_epochs=3)


def test_scheduler_per_iteration_and_state(tmp_path):
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=0.4)
    sched = build_scheduler(opt, name="cosine", epochs=2, steps_per_epoch=4, warmup_epochs=0.5, warmup_start_factor=0.5)
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [
        0.4 * lr_factor(t, name="cosine", total_steps=8, warmup_steps=2, warmup_start_factor=0.5) for t in range(8)
    ]
    assert lrs == pytest.approx(expected)
    assert lrs[0] == pytest.approx(0.2) and lrs[2] == pytest.approx(0.4)
    # The state round-trips through weights_only loading and continues at the same iteration.
    torch.save(sched.state_dict(), tmp_path / "s.pt")
    opt2 = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.4)
    sched2 = build_scheduler(opt2, name="cosine", epochs=2, steps_per_epoch=4, warmup_epochs=0.5)
    sched2.load_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    assert sched2.last_epoch == 8 and opt2.param_groups[0]["lr"] == pytest.approx(0.0)


def test_resumed_schedule_follows_the_new_length():
    # A run resumed with more epochs stretches its schedule rather than keeping the saved length.
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    short = build_scheduler(opt, name="cosine", epochs=2, steps_per_epoch=5)
    for _ in range(5):
        opt.step()
        short.step()
    opt2 = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    longer = build_scheduler(opt2, name="cosine", epochs=4, steps_per_epoch=5)
    longer.load_state_dict(short.state_dict())
    assert opt2.param_groups[0]["lr"] == pytest.approx(lr_factor(5, name="cosine", total_steps=20))


def test_warmup_counted_in_iterations_for_an_iteration_budget():
    """A poly schedule over an iteration budget (7 iterations, 3 an epoch) with a 3-iteration warm-up."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = build_scheduler(
        opt, name="poly", epochs=3, steps_per_epoch=3, total_steps=7, warmup_iters=3, warmup_start_factor=0.25
    )
    lrs = []
    for _ in range(7):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    warm = [0.25, 0.5, 0.75]  # 0.25 + 0.75 * t / 3
    decay = [(1 - max(t - 3, 0) / 4) ** 0.9 for t in range(7)]  # poly from the end of the warm-up to iteration 7
    assert lrs == pytest.approx([w * d for w, d in zip([*warm, 1, 1, 1, 1], decay, strict=True)])


def test_warmup_iters_is_checked():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    with pytest.raises(
        ValueError, match=r"schedule.warmup_iters: expected an int in 0..7 \(the run's iterations\), got 8"
    ):
        build_scheduler(opt, name="poly", epochs=3, steps_per_epoch=3, total_steps=7, warmup_iters=8)
    with pytest.raises(ValueError, match="schedule.warmup_iters: 2 given with schedule.warmup_epochs 0.5; set one"):
        build_scheduler(opt, name="poly", epochs=3, steps_per_epoch=3, warmup_iters=2, warmup_epochs=0.5)
