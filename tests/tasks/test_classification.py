"""The classification task as the engine sees it, and the run report reading its declared metrics."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from glore.engine import TASKS, load_config, train
from glore.engine.task import build_task
from glore.metrics import ClassificationMeter
from glore.tasks import ClassificationTask
from glore.tools.report import _best_metric, _metric_table, write_run_report


def test_registered_under_its_name_with_declared_directions():
    assert TASKS["classification"] is ClassificationTask
    task = build_task(load_config({}))
    assert isinstance(task, ClassificationTask)
    assert task.primary_metric == "top1"
    assert [task.metric_direction(m) for m in ("top1", "top5", "mean_class_acc", "loss")] == ["max"] * 3 + ["min"]


def test_loss_smooths_labels_in_training_only():
    task = build_task(load_config({"train": {"label_smoothing": 0.2}}))
    logits, targets = torch.randn(5, 7, dtype=torch.bfloat16), torch.tensor([0, 3, 6, 2, 2])
    expected_train = F.cross_entropy(logits.float(), targets, label_smoothing=0.2)
    assert torch.equal(task.loss(logits, targets, train=True), expected_train)
    assert torch.equal(task.loss(logits, targets, train=False), F.cross_entropy(logits.float(), targets))


def test_meter_reports_top5_only_with_more_than_five_classes():
    task = build_task(load_config({}))

    class Data:
        def __init__(self, k: int) -> None:
            self.num_classes = k

    few, many = task.create_meter(Data(2)), task.create_meter(Data(10))
    assert isinstance(few, ClassificationMeter) and few.ks == (1,) and many.ks == (1, 5)


def test_model_classes_must_match_the_dataset(tiny_recipe):
    recipe = tiny_recipe(model={"num_classes": 3})
    task = build_task(load_config(recipe))
    train_set = task.build_dataset("train", train=True)
    with pytest.raises(ValueError, match="model.num_classes: 3 does not match the dataset's 2 classes"):
        task.build_model(train_set)
    model = build_task(load_config(tiny_recipe())).build_model(train_set)
    assert model.model_config["num_classes"] == train_set.num_classes == 2


def test_report_picks_the_best_row_in_the_declared_direction():
    rows = [
        {"epoch": float(e), "val_loss": v, "val_top1": a} for e, v, a in ((1, 0.5, 0.6), (2, 0.3, 0.5), (3, 0.4, 0.7))
    ]
    assert "at the best val_loss (epoch 2)" in _metric_table(rows, "val_loss", "min")[0]
    assert "at the best val_top1 (epoch 3)" in _metric_table(rows, "val_top1", "max")[0]
    assert _best_metric({"task": "classification", "output": {"best_metric": "loss"}}) == ("loss", "min")
    # output.best_metric null means the task's primary metric (it used to read as 'val_None')
    assert _best_metric({"task": "classification", "output": {"best_metric": None}}) == ("top1", "max")
    assert _best_metric({"task": "not-installed", "output": {"best_metric": None}}) == ("top1", "max")


def test_report_of_a_run_with_the_default_best_metric(tmp_path, tiny_recipe):
    config = load_config(tiny_recipe(output={"dir": str(tmp_path), "best_metric": None}, train={"epochs": 2}))
    train(config)
    report = write_run_report(tmp_path, samples=0).read_text()
    assert "at the best val_top1" in report and "val_None" not in report
    assert "trained 2 epoch(s)" in report
