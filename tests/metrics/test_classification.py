"""Classification metrics against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from glore.metrics import ClassificationMeter, mean_class_accuracy, topk_accuracy, topk_correct

# Five samples, four classes. Rankings (best first) per row:
#   0: 2 > 1 > 0 > 3   target 2 -> top1 hit
#   1: 0 > 3 > 1 > 2   target 3 -> top2 hit
#   2: 1 > 2 > 3 > 0   target 0 -> miss at k = 1, 2, 3; hit at 4
#   3: 3 > 0 > 2 > 1   target 3 -> top1 hit
#   4: 1 > 0 > 2 > 3   target 2 -> top3 hit
LOGITS = torch.tensor(
    [
        [0.1, 0.5, 0.9, 0.0],
        [0.8, 0.2, 0.1, 0.3],
        [0.0, 0.9, 0.5, 0.2],
        [0.4, 0.1, 0.3, 0.7],
        [0.3, 0.6, 0.2, 0.1],
    ]
)
TARGETS = torch.tensor([2, 3, 0, 3, 2])


def test_topk_by_hand():
    assert topk_correct(LOGITS, TARGETS, (1, 2, 3, 4)) == [2, 3, 4, 5]
    assert topk_accuracy(LOGITS, TARGETS, (1, 2)) == [0.4, 0.6]
    # k beyond the number of classes counts every sample.
    assert topk_accuracy(LOGITS, TARGETS, (5,)) == [1.0]


def test_mean_class_accuracy_by_hand():
    preds = LOGITS.argmax(1)  # [2, 0, 1, 3, 1]
    # class 0: 0/1, class 2: 1/2, class 3: 1/2 (class 1 absent) -> (0 + 0.5 + 0.5) / 3
    assert mean_class_accuracy(preds, TARGETS, 4) == pytest.approx(1 / 3)


def test_meter_accumulates_batches():
    meter = ClassificationMeter(4, ks=(1, 2))
    meter.update(LOGITS[:2], TARGETS[:2])
    meter.update(LOGITS[2:], TARGETS[2:])
    out = meter.compute()
    assert out == {"top1": 0.4, "top2": 0.6, "mean_class_acc": pytest.approx(1 / 3), "count": 5.0}
    assert meter.count == 5
    meter.reduce()  # no process group: unchanged
    assert meter.compute()["top1"] == 0.4
    meter.reset()
    assert meter.count == 0 and math.isnan(meter.compute()["top1"])


def test_mean_class_differs_from_top1_on_imbalance():
    # 9 samples of class 0 all right, 1 sample of class 1 wrong: top1 0.9, mean per class 0.5.
    logits = torch.tensor([[1.0, 0.0]] * 10)
    targets = torch.tensor([0] * 9 + [1])
    meter = ClassificationMeter(2, ks=(1,))
    meter.update(logits, targets)
    out = meter.compute()
    assert out["top1"] == pytest.approx(0.9) and out["mean_class_acc"] == pytest.approx(0.5)


def test_bad_input_is_named():
    meter = ClassificationMeter(4)
    with pytest.raises(ValueError, match="logits"):
        meter.update(LOGITS[0], TARGETS[:1])
    with pytest.raises(ValueError, match="targets"):
        meter.update(LOGITS, TARGETS[:3])
    # Out-of-range targets are counted on the device (no synchronisation per batch) and reported by compute().
    bad = ClassificationMeter(4)
    bad.update(LOGITS, torch.tensor([0, 1, 2, 3, 4]))
    with pytest.raises(ValueError, match="1 targets were not class indices"):
        bad.compute()
    with pytest.raises(ValueError, match="4 classes"):
        meter.update(LOGITS[:, :3], TARGETS)
    with pytest.raises(ValueError, match="num_classes"):
        ClassificationMeter(0)


def test_update_never_synchronises_with_the_host(monkeypatch):
    """The meter's per-batch work stays on the device: no .item(), .tolist(), int() or float() of a tensor."""
    meter = ClassificationMeter(4, ks=(1, 2))
    calls = []
    for name in ("item", "tolist", "__int__", "__float__", "__bool__", "cpu"):
        original = getattr(torch.Tensor, name)

        def spy(self, *args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, spy)
    for _ in range(3):
        meter.update(LOGITS, TARGETS)
    assert calls == []
    monkeypatch.undo()
    assert meter.compute()["count"] == 3 * len(TARGETS)


def test_update_has_no_data_dependent_shapes():
    """On a GPU a boolean-mask selection or ``bincount`` waits for the device (its output size depends on the
    data); the meta device, which has no data, refuses them: an update that runs there needs no host sync."""
    meter = ClassificationMeter(10, ks=(1, 5))
    meter.update(torch.empty(4, 10, device="meta"), torch.empty(4, dtype=torch.long, device="meta"))
    assert meter.total_per_class.device.type == "meta"


def test_invalid_targets_do_not_count_as_hits():
    meter = ClassificationMeter(3, ks=(1, 2))
    logits = torch.tensor([[5.0, 1.0, 0.0], [5.0, 1.0, 0.0], [0.0, 1.0, 5.0]])
    meter.update(logits, torch.tensor([0, -1, 2]))  # the -1 would be class 0's hit if it were counted under 0
    assert meter.topk_hits.tolist() == [2, 2]
    assert meter.correct_per_class.tolist() == [1, 0, 1] and meter.total_per_class.tolist() == [1, 0, 1]
    assert meter.invalid_targets.item() == 1
