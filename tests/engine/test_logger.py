"""Progress display, CSV tables, TensorBoard events and curves."""

from __future__ import annotations

import csv
import io

import pytest

from glore.engine.logger import ProgressLine, RunLogger, format_duration, plot_curves, read_csv


def test_plain_progress_lines():
    stream = io.StringIO()
    progress = ProgressLine(2, 5, total=4, mode="plain", every=2, stream=stream)
    for step in range(1, 5):
        progress.update(step, loss=1.0 / step, lr=0.05, images_per_s=123.4)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # steps 2 and 4
    assert lines[0].startswith("epoch 2/5 step 2/4 loss 0.5000 lr 0.05 123.4 img/s eta ")
    assert lines[1].endswith("eta 0:00:00")


def test_bar_progress_shows_postfix():
    stream = io.StringIO()
    progress = ProgressLine(1, 1, total=3, mode="bar", every=1, stream=stream)
    for step in range(1, 4):
        progress.update(step, loss=0.25, lr=0.1, images_per_s=10.0)
    progress.close()
    text = stream.getvalue()
    assert "epoch 1/1" in text and "3/3" in text and "loss=0.2500" in text and "img_s=10.0" in text


def test_auto_progress_is_plain_without_a_terminal(tmp_path):
    logger = RunLogger(tmp_path, progress="auto", tensorboard=False, plots=False)
    assert logger.progress == "plain"  # pytest captures stderr: not a terminal


def test_tables_events_plots_and_resume(tmp_path):
    logger = RunLogger(tmp_path, log_every=1)
    for epoch in (1, 2, 3):
        logger.log_step(epoch, epoch * 10, {"loss": 1.0 / epoch, "lr": 0.1})
        logger.log_epoch(
            epoch, epoch * 10, {"train_loss": 1.0 / epoch, "val_loss": 1.1 / epoch, "val_top1": 0.3 * epoch}
        )
    logger.close()
    assert [r["epoch"] for r in read_csv(tmp_path / "metrics.csv")] == [1.0, 2.0, 3.0]
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    # Resuming after epoch 2 drops the rows of epoch 3 (a crashed attempt) before appending.
    resumed = RunLogger(tmp_path, resume_epoch=2, resume_step=20, tensorboard=False, plots=False)
    rows = read_csv(tmp_path / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1.0, 2.0]
    assert [r["step"] for r in read_csv(tmp_path / "steps.csv")] == [10.0, 20.0]
    resumed.log_epoch(3, 30, {"train_loss": 0.2, "val_loss": 0.3, "val_top1": 0.95, "val_top5": 1.0})
    rows = read_csv(tmp_path / "metrics.csv")
    assert [r["val_top1"] for r in rows] == [0.3, 0.6, 0.95]
    assert rows[0]["val_top5"] is None and rows[2]["val_top5"] == 1.0  # a new column widens the table


def test_disabled_logger_writes_nothing(tmp_path):
    logger = RunLogger(tmp_path / "rank1", enabled=False)
    logger.log_step(1, 1, {"loss": 1.0})
    logger.log_epoch(1, 1, {"train_loss": 1.0})
    logger.info("hidden")
    logger.close()
    assert not (tmp_path / "rank1").exists()


def test_plot_several_runs(tmp_path):
    rows = [{"epoch": 1.0, "train_loss": 1.0, "val_loss": 0.9, "train_top1": 0.5, "val_top1": 0.6}]
    path = plot_curves([], tmp_path / "both.png", series={"baseline": rows, "glore": rows}, title="demo")
    assert path.stat().st_size > 1000


def test_format_duration():
    assert format_duration(3725) == "1:02:05" and format_duration(float("nan")) == "?"


def test_a_crash_while_a_resumed_run_rewrites_its_table_keeps_the_old_one(tmp_path, monkeypatch):
    logger = RunLogger(tmp_path, progress="off", tensorboard=False, plots=False)
    for epoch in (1, 2, 3):
        logger.log_epoch(epoch, epoch * 4, {"train_loss": 1.0 / epoch})
    before = (tmp_path / "metrics.csv").read_text()

    def fail(self, rows):
        raise OSError("disk full")

    monkeypatch.setattr(csv.DictWriter, "writerows", fail)
    with pytest.raises(OSError, match="disk full"):
        RunLogger(tmp_path, progress="off", tensorboard=False, plots=False, resume_epoch=2)
    assert (tmp_path / "metrics.csv").read_text() == before
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind
    monkeypatch.undo()
    RunLogger(tmp_path, progress="off", tensorboard=False, plots=False, resume_epoch=2)
    assert [row["epoch"] for row in read_csv(tmp_path / "metrics.csv")] == [1.0, 2.0]
