"""What a run shows and writes: a progress bar (or plain lines), CSV tables, TensorBoard events and PNG curves.

Only rank 0 creates a ``RunLogger`` that writes; the other ranks get one with ``enabled=False`` whose methods
do nothing, so the training loop calls the same methods everywhere.

Files, in the run folder:
- ``metrics.csv``: one row per epoch (training and validation metrics, learning rate, time, images/s, skipped).
- ``steps.csv``: one row every ``log_every`` iterations (loss, learning rate, images/s).
- ``tb/``: TensorBoard event files with the same scalars.
- ``curves.png``: training and validation loss and accuracy against the epoch, redrawn after every epoch.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from glore._io import WriteError, append_text, atomic_path, is_write_failure

__all__ = ["ProgressLine", "RunLogger", "format_duration", "plot_curves", "read_csv"]


def format_duration(seconds: float) -> str:
    """``h:mm:ss`` for a duration in seconds (``?`` when unknown)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def read_csv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a CSV written by ``RunLogger``, with numbers parsed as floats (empty cells as ``None``)."""
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            parsed: dict[str, Any] = {}
            for key, value in row.items():
                if value is None or value == "":
                    parsed[key] = None
                    continue
                try:
                    parsed[key] = float(value)
                except ValueError:
                    parsed[key] = value
            rows.append(parsed)
    return rows


class _CsvTable:
    """A CSV file whose columns are fixed by the first row written (and widened when a row brings new ones).

    A resumed run first drops the rows written after its checkpoint (a crashed attempt's), by ``step`` (or by
    ``epoch`` for tables without one), and a last line cut short by a kill; or it rewrites the whole table from
    ``rows`` (what its checkpoint recorded).
    """

    def __init__(
        self,
        path: Path,
        *,
        keep_through_epoch: float | None = None,
        keep_through_step: int | None = None,
        rows: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if rows is not None:
            if rows:
                self.fields = _fields_of(rows)
                self._rewrite(rows)
            elif path.exists():
                path.unlink()
        elif path.exists():
            if keep_through_epoch is None and keep_through_step is None:
                path.unlink()
            else:
                text = path.read_text()
                text = text[: text.rfind("\n") + 1]  # a row cut short by a kill ends without a newline
                reader = csv.DictReader(io.StringIO(text, newline=""))
                self.fields = list(reader.fieldnames or []) or None
                whole = [r for r in reader if None not in r and None not in r.values()]
                by_step = keep_through_step is not None and self.fields is not None and "step" in self.fields
                kept = [
                    r
                    for r in whole
                    if (
                        _number(r.get("step")) <= keep_through_step
                        if by_step
                        else keep_through_epoch is None or _number(r.get("epoch")) <= keep_through_epoch
                    )
                ]
                self._rewrite(kept)

    def _rewrite(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Replace the file with a header and ``rows``, atomically (a crash keeps the previous table)."""
        if self.fields is None:
            return
        with atomic_path(self.path) as tmp, tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.fields)
            writer.writeheader()
            writer.writerows({k: _cell(row.get(k)) for k in self.fields} for row in rows)

    def write(self, row: Mapping[str, Any]) -> None:
        if self.fields is None:
            self.fields = list(row)
            self._rewrite([])
        extra = [k for k in row if k not in self.fields]
        if extra:  # a column appeared (e.g. validation on a later epoch): rewrite with the wider header
            rows = read_csv(self.path)
            self.fields += extra
            self._rewrite(rows)
        line = io.StringIO(newline="")
        csv.DictWriter(line, fieldnames=self.fields).writerow({k: _cell(row.get(k)) for k in self.fields})
        append_text(self.path, line.getvalue())


def _number(text: Any) -> float:
    try:
        return float(text or 0)
    except ValueError:
        return math.inf  # not a row this table wrote: dropped


def _fields_of(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The columns of ``rows`` in order of first appearance (the header a table written row by row ends with)."""
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    return fields


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.8g}"
    return value


class ProgressLine:
    """Progress of one epoch: a tqdm bar on a terminal, otherwise a plain line every ``every`` steps.

    Both show the running loss, the learning rate, images/s and the time left in the epoch (ETA).

    Args:
        epoch: 1-based epoch number.
        epochs: total epochs.
        total: iterations in this epoch.
        mode: ``"bar"``, ``"plain"`` or ``"off"``.
        every: plain mode: print every this many iterations (and the last).
        stream: where to write.
    """

    def __init__(
        self,
        epoch: int,
        epochs: int,
        total: int,
        *,
        mode: str,
        every: int,
        stream: TextIO | None = None,
        label: str | None = None,
    ) -> None:
        self.epoch, self.epochs, self.total = epoch, epochs, total
        self.label = label if label is not None else f"epoch {epoch}/{epochs}"
        self.mode = mode
        self.every = max(int(every), 1)
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.perf_counter()
        self.bar = None
        if mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=self.label, file=self.stream, leave=True, unit="it")

    def skip(self, steps: int) -> None:
        """Count ``steps`` iterations done before this display started (a run resumed mid-epoch)."""
        if steps and self.bar is not None:
            self.bar.update(steps)

    def update(
        self, step: int, loss: float | None = None, lr: float | None = None, images_per_s: float | None = None
    ) -> None:
        """Report iteration ``step`` (1-based within the epoch) done; validation passes give no loss."""
        if loss is None:
            if self.bar is not None:
                self.bar.update(step - self.bar.n)
            elif self.mode == "plain" and step == self.total:
                elapsed = time.perf_counter() - self.start
                print(f"{self.label} {step}/{self.total} batches in {format_duration(elapsed)}", file=self.stream)
            return
        if self.mode == "bar" and self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.3g}", img_s=f"{images_per_s:.1f}", refresh=False)
        elif self.mode == "plain" and (step % self.every == 0 or step == self.total):
            elapsed = time.perf_counter() - self.start
            eta = elapsed / step * (self.total - step) if step else float("nan")
            print(
                f"{self.label} step {step}/{self.total} loss {loss:.4f} lr {lr:.4g} "
                f"{images_per_s:.1f} img/s eta {format_duration(eta)}",
                file=self.stream,
                flush=True,
            )

    def close(self) -> None:
        """Finish the bar."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class RunLogger:
    """Writes a run's CSV tables, TensorBoard events and curves, and shows progress.

    Args:
        run_dir: the run folder.
        enabled: false on ranks other than 0: nothing is written or printed.
        progress: ``"auto"`` (a bar when stderr is a terminal, plain lines otherwise), ``"bar"``, ``"plain"``,
            ``"off"``.
        log_every: write to ``steps.csv`` (and print a plain line) every this many iterations.
        tensorboard: write TensorBoard event files to ``run_dir/tb``.
        plots: redraw ``run_dir/curves.png`` after every epoch.
        resume_epoch: the number of epochs already done when resuming (rows of later epochs are dropped from the
            CSV files, when ``resume_step`` is not given); ``None`` starts the tables afresh.
        resume_step: the iterations already done when resuming (rows and TensorBoard events of later
            iterations are dropped).
        history: the ``metrics.csv`` rows the resumed checkpoint recorded: the table is rewritten from them, so a
            row lost or half-written when the run was killed is repaired.
        curve_metric: the metric of the right-hand plot of ``curves.png``.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        *,
        enabled: bool = True,
        progress: str = "auto",
        log_every: int = 20,
        tensorboard: bool = True,
        plots: bool = True,
        resume_epoch: int | None = None,
        resume_step: int | None = None,
        history: Sequence[Mapping[str, Any]] | None = None,
        curve_metric: str = "top1",
    ) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        if progress not in ("auto", "bar", "plain", "off"):
            raise ValueError(f"progress: expected 'auto', 'bar', 'plain' or 'off', got {progress!r}")
        if progress == "auto":
            progress = "bar" if sys.stderr.isatty() else "plain"
        self.progress = progress
        self.log_every = max(int(log_every), 1)
        self.plots = plots
        self.curve_metric = curve_metric
        self.writer = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        resuming = resume_epoch is not None or resume_step is not None
        self.epochs_table = _CsvTable(
            self.run_dir / "metrics.csv",
            keep_through_epoch=resume_epoch,
            keep_through_step=resume_step,
            rows=history if resuming else None,
        )
        self.steps_table = _CsvTable(
            self.run_dir / "steps.csv", keep_through_epoch=resume_epoch, keep_through_step=resume_step
        )
        if resuming and history and plots:
            self._plot()
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events a crashed run wrote after the checkpoint it resumes from; every scalar is
            # logged against the iteration, so one step axis serves both.
            # The checkpoint's own step was logged before the checkpoint was written: keep it, purge what follows.
            purge = resume_step + 1 if resume_step is not None else None
            self.writer = SummaryWriter(str(self.run_dir / "tb"), purge_step=purge)

    def info(self, message: str) -> None:
        """Print a line (rank 0 only)."""
        if self.enabled:
            print(message, file=sys.stderr if self.progress == "bar" else sys.stdout, flush=True)

    def epoch_progress(self, epoch: int, epochs: int, total: int) -> ProgressLine:
        """A progress display for one epoch (``epoch`` 1-based)."""
        mode = self.progress if self.enabled else "off"
        return ProgressLine(epoch, epochs, total, mode=mode, every=self.log_every, stream=sys.stderr)

    def eval_progress(self, total: int) -> ProgressLine:
        """A progress display for a validation pass of ``total`` batches."""
        mode = self.progress if self.enabled else "off"
        return ProgressLine(0, 0, total, mode=mode, every=self.log_every, stream=sys.stderr, label="validation")

    def log_step(self, epoch: int, global_step: int, values: Mapping[str, float]) -> None:
        """Write a ``steps.csv`` row and TensorBoard scalars ``step/<name>`` at iteration ``global_step``."""
        if not self.enabled:
            return
        self.steps_table.write({"epoch": epoch, "step": global_step, **values})
        self._scalars("step", values, global_step)

    def log_epoch(self, epoch: float, global_step: int, values: Mapping[str, float | None]) -> None:
        """Write a ``metrics.csv`` row, TensorBoard scalars ``epoch/<name>`` (at iteration ``global_step``), and
        redraw ``curves.png``."""
        if not self.enabled:
            return
        self.epochs_table.write({"epoch": epoch, **values})
        self._scalars("epoch", values, global_step, flush=True)
        if self.plots:
            self._plot()

    def _plot(self) -> None:
        plot_curves(read_csv(self.run_dir / "metrics.csv"), self.run_dir / "curves.png", metric=self.curve_metric)

    def _scalars(self, group: str, values: Mapping[str, Any], global_step: int, *, flush: bool = False) -> None:
        """TensorBoard scalars ``group/<name>``; a failed write names the folder and the cause in one line."""
        if self.writer is None:
            return
        try:
            for name, value in values.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(f"{group}/{name}", value, global_step)
            if flush:
                self.writer.flush()
        except OSError as error:
            if is_write_failure(error):
                raise WriteError(self.run_dir / "tb", error) from None
            raise

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None


_METRIC_LABELS = {"top1": "top-1 accuracy", "miou": "mean IoU", "video_top1": "video top-1 accuracy"}


def plot_curves(
    rows: Sequence[Mapping[str, Any]],
    path: str | os.PathLike,
    *,
    series: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    title: str | None = None,
    metric: str = "top1",
) -> Path:
    """Draw loss and accuracy against the epoch into a PNG (rendered with Agg: no display needed).

    Args:
        rows: ``metrics.csv`` rows (``epoch``, ``train_loss``, ``val_loss``, ``train_top1``, ``val_top1``).
        path: the PNG to write.
        series: instead of ``rows``, several runs by name (curves of each, labelled ``name train``/``name val``).
        title: figure title.
        metric: the metric of the right-hand plot (a task's primary metric: ``top1``, ``miou`` ...).

    Returns:
        ``path`` as a ``Path``.
    """
    # A bare Figure renders with Agg and leaves pyplot's global backend and figure list alone.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    runs = dict(series) if series is not None else {"": rows}
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    panels = ((axes[0], "loss", "loss"), (axes[1], metric, _METRIC_LABELS.get(metric, metric)))
    for ax, key, label in panels:
        for index, (name, run_rows) in enumerate(runs.items()):
            for split, style in (("train", "--"), ("val", "-")):
                points = [
                    (r["epoch"], r[f"{split}_{key}"])
                    for r in run_rows
                    if r.get(f"{split}_{key}") is not None and r.get("epoch") is not None
                ]
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(xs, ys, style, color=f"C{index}", marker="o", markersize=3, label=f"{name} {split}".strip())
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if ax.has_data():
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path
