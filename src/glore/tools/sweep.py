"""``glore sweep CONFIG --grid KEY=V1,V2 ... --seeds 0,1,2``: every combination, resumable, summarised.

Each run is one training of CONFIG with the combination's overrides and a seed, in its own folder under
``--out``; a run whose ``result.json`` exists is finished and never redone, an interrupted one resumes from its
``last.pt``. The table (mean and standard deviation over seeds of the final metrics, parameters, GFLOPs and
time) is written as ``summary.md`` and ``summary.csv`` with a plot of the main metric, ``summary.png``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glore._io import atomic_write_text

__all__ = [
    "SweepRun",
    "check_metric",
    "check_plan",
    "parse_grid",
    "plan_runs",
    "run_sweep",
    "summarize",
    "write_summary",
]

RESULT_FILE = "result.json"


@dataclass
class SweepRun:
    """One training of a sweep: a combination of grid values and a seed.

    Attributes:
        settings: grid key -> value (as written on the command line).
        seed: the run's ``train.seed``.
        name: the run's folder name, derived from settings and seed only (stable across invocations).
    """

    settings: dict[str, str]
    seed: int
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = run_name(self.settings, self.seed)

    def overrides(self, run_dir: Path) -> list[str]:
        """The ``--set`` overrides of this run."""
        return [f"{k}={v}" for k, v in self.settings.items()] + [f"train.seed={self.seed}", f"output.dir={run_dir}"]


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """Parse ``KEY=V1,V2,...`` items into key -> values.

    Values are split on ``;`` when the item has one (for values that contain commas, like
    ``model.glore=res3:2,res4:3;res4:3``), else on ``,``. A key given twice collects the values of both.

    Raises:
        ValueError: an item has no ``=``, an empty key, or no values.
    """
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--grid: expected KEY=V1,V2,..., got {item!r}")
        parts = [v.strip() for v in values.split(";" if ";" in values else ",")]
        if not parts or any(v == "" for v in parts):
            raise ValueError(f"--grid {key}: expected non-empty values separated by ',' (or ';'), got {values!r}")
        grid.setdefault(key, [])
        grid[key].extend(v for v in parts if v not in grid[key])
    return grid


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; raises ValueError naming ``--seeds``."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--seeds: expected comma-separated integers, got {text!r}") from None
    if not seeds:
        raise ValueError(f"--seeds: expected at least one seed, got {text!r}")
    return seeds


def run_name(settings: Mapping[str, str], seed: int) -> str:
    """A folder name for a run: readable, filesystem-safe, and a function of settings and seed alone."""
    text = "__".join(f"{k}={v}" for k, v in settings.items())
    safe = re.sub(r"[^A-Za-z0-9._=+-]+", "-", text).strip("-")
    if len(safe) > 100 or safe != text:
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        safe = f"{safe[:90]}-{digest}"
    return f"{safe}__seed={seed}" if safe else f"seed={seed}"


def plan_runs(grid: Mapping[str, Sequence[str]], seeds: Sequence[int]) -> list[SweepRun]:
    """Every combination of the grid's values, each with every seed, in a fixed order."""
    keys = list(grid)
    combos = itertools.product(*(grid[k] for k in keys)) if keys else [()]
    return [SweepRun(dict(zip(keys, values, strict=True)), seed) for values in combos for seed in seeds]


def _model_cost(checkpoint: Path, image_size: int) -> tuple[float, float]:
    """Parameters (millions) and GFLOPs (billions of multiply-adds) of a checkpoint's network at its input size."""
    from glore.engine import load_model
    from glore.tools.profile import profile_model

    prof = profile_model(load_model(checkpoint), image_size)
    return prof.total_params / 1e6, prof.total_macs / 1e9


def execute_run(
    config_source: str | Path | Mapping[str, Any], base_overrides: Sequence[str], run: SweepRun, out_dir: Path
) -> dict:
    """Train one run in this process (resuming its ``last.pt`` if present) and write its ``result.json``."""
    from glore.engine import load_config, train

    run_dir = out_dir / run.name
    config = load_config(config_source, [*base_overrides, *run.overrides(run_dir)])
    resume = (run_dir / "last.pt").exists()
    start = time.perf_counter()
    metrics = train(config, resume=resume)
    elapsed = time.perf_counter() - start
    params, gmacs = _model_cost(run_dir / "last.pt", config.data.image_size)
    previous = _read_json(run_dir / "timing.json").get("time_s", 0.0) if resume else 0.0
    result = {
        "name": run.name,
        "settings": run.settings,
        "seed": run.seed,
        "metrics": {k: v for k, v in metrics.items() if isinstance(v, int | float)},
        "params_m": params,
        "gflops": gmacs,
        "time_s": previous + elapsed,
    }
    _write_json(run_dir / RESULT_FILE, result)
    return result


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True))


def run_sweep(
    config: str | Path,
    grid: Mapping[str, Sequence[str]],
    seeds: Sequence[int],
    out_dir: str | Path,
    *,
    overrides: Sequence[str] = (),
    devices: Sequence[int] | None = None,
    metric: str = "val_top1",
) -> list[dict]:
    """Run every combination of ``grid`` with every seed, skipping finished runs, and write the summary.

    Args:
        config: the base recipe (a YAML path).
        grid: key -> values to sweep (``--set`` syntax values).
        seeds: ``train.seed`` values; statistics are taken over them.
        out_dir: the sweep folder: one sub-folder a run, plus ``summary.md``, ``summary.csv``, ``summary.png``.
        overrides: ``--set`` overrides applied to every run before the grid's.
        devices: CUDA device indices to spread runs over (one subprocess a device at a time); ``None`` runs
            them one after another in this process.
        metric: the main metric of the table's sort order and of the plot.

    Returns:
        The results of every run, in plan order.
    """
    out = Path(out_dir)
    runs = plan_runs(grid, seeds)
    check_plan(config, overrides, runs, out, metric)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(
        out / "sweep.json", {"config": str(config), "grid": grid, "seeds": list(seeds), "overrides": list(overrides)}
    )
    todo = [run for run in runs if not (out / run.name / RESULT_FILE).exists()]
    print(f"sweep: {len(runs)} runs, {len(runs) - len(todo)} already finished, {len(todo)} to run", flush=True)
    if devices:
        _run_on_devices(config, overrides, todo, out, devices)
    else:
        for index, run in enumerate(todo, start=1):
            print(f"sweep: [{index}/{len(todo)}] {run.name}", flush=True)
            execute_run(config, overrides, run, out)
    results = [_read_json(out / run.name / RESULT_FILE) for run in runs]
    missing = [run.name for run, result in zip(runs, results, strict=True) if not result]
    if missing:
        raise RuntimeError(f"sweep: runs without a result (see their folders under {out}): {missing}")
    check_metric(results, metric)
    write_summary(results, list(grid), out, metric=metric)
    return results


def check_metric(results: Sequence[Mapping[str, Any]], metric: str) -> None:
    """Raise a ValueError naming ``--metric`` when some of the finished ``results`` lack ``metric``."""
    known = sorted(set.intersection(*(set(r.get("metrics", {})) for r in results)))
    if metric not in known:
        raise ValueError(f"--metric: the finished runs have no {metric!r}; they have {', '.join(known)}")


def check_plan(config: str | Path, overrides: Sequence[str], runs: Sequence[SweepRun], out: Path, metric: str) -> None:
    """Load every run's configuration and check ``metric`` against the task's metrics before training anything, so
    that a mistyped key or value fails at once rather than after the first runs.

    Raises:
        ConfigError: a run's configuration is invalid (the message names the key).
        ValueError: ``metric`` is not one the runs will report.
    """
    from glore.engine import load_config
    from glore.engine.task import build_task

    configs = [load_config(config, [*overrides, *run.overrides(out / run.name)]) for run in runs]
    if configs:
        task = build_task(configs[0])
        names = [*task.metrics, "loss"]
        known = [f"{split}_{name}" for split in ("val", "train") for name in names] + ["best_metric"]
        if metric not in known:
            raise ValueError(f"--metric: the runs of this task report {', '.join(known)}; got {metric!r}")


def _run_on_devices(
    config: str | Path, overrides: Sequence[str], todo: list[SweepRun], out: Path, devices: Sequence[int]
) -> None:
    """One subprocess per device at a time, each running ``python -m glore.tools.sweep --one``."""
    pending = list(todo)
    active: dict[int, tuple[subprocess.Popen, SweepRun]] = {}
    failed = []
    while pending or active:
        for device in devices:
            if device not in active and pending:
                run = pending.pop(0)
                env = dict(os.environ, CUDA_VISIBLE_DEVICES=str(device))
                spec = json.dumps(
                    {"config": str(config), "overrides": list(overrides), "settings": run.settings, "seed": run.seed}
                )
                command = [sys.executable, "-m", "glore.tools.sweep", "--one", spec, str(out)]
                print(f"sweep: {run.name} on cuda:{device}", flush=True)
                active[device] = (subprocess.Popen(command, env=env), run)
        time.sleep(1.0)
        for device, (process, run) in list(active.items()):
            if process.poll() is not None:
                del active[device]
                if process.returncode:
                    failed.append(run.name)
    if failed:
        raise RuntimeError(f"sweep: runs failed: {failed}")


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return mean, math.sqrt(var)


def summarize(results: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """Group results by setting and take mean and standard deviation (n - 1) over seeds.

    Returns:
        One row a setting: the grid values, ``seeds``, ``<metric>_mean`` and ``<metric>_std`` for each final
        metric, and ``params_m``, ``gflops``, ``time_s`` (means).
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for result in results:
        groups.setdefault(tuple(result["settings"][k] for k in keys), []).append(result)
    rows = []
    for values, members in groups.items():
        row: dict[str, Any] = dict(zip(keys, values, strict=True))
        row["seeds"] = len(members)
        names = sorted(set.intersection(*(set(m["metrics"]) for m in members)))
        for name in names:
            mean, std = _mean_std([float(m["metrics"][name]) for m in members])
            row[f"{name}_mean"], row[f"{name}_std"] = mean, std
        for name in ("params_m", "gflops", "time_s"):
            row[name] = _mean_std([float(m[name]) for m in members])[0]
        rows.append(row)
    return rows


def write_summary(results: Sequence[Mapping[str, Any]], keys: Sequence[str], out_dir: Path, *, metric: str) -> None:
    """Write ``summary.csv``, ``summary.md`` and ``summary.png`` (``metric`` per setting with std bars)."""
    rows = summarize(results, keys)
    columns = list(rows[0])
    for row in rows[1:]:
        columns.extend(c for c in row if c not in columns)
    with open(out_dir / "summary.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)

    shown = [k for k in keys] + ["seeds"]
    main_metrics = [m for m in (metric, "val_loss", "train_loss") if f"{m}_mean" in rows[0]]
    header = shown + [f"{m} (mean ± std)" for m in main_metrics] + ["params (M)", "GFLOPs", "time (s)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(row[k]) for k in shown]
        cells += [f"{row[f'{m}_mean']:.4f} ± {row[f'{m}_std']:.4f}" for m in main_metrics]
        cells += [f"{row['params_m']:.3f}", f"{row['gflops']:.4f}", f"{row['time_s']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    atomic_write_text(out_dir / "summary.md", "\n".join(lines) + "\n")

    if f"{metric}_mean" in rows[0]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        labels = [", ".join(f"{k.split('.')[-1]}={row[k]}" for k in keys) or "base" for row in rows]
        fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(rows)), 4.0), dpi=100)
        means = [row[f"{metric}_mean"] for row in rows]
        stds = [row[f"{metric}_std"] for row in rows]
        ax.bar(range(len(rows)), means, yerr=stds, capsize=4, color="tab:blue")
        for index, result_row in enumerate(rows):
            seeds_of = [
                float(r["metrics"][metric]) for r in results if all(r["settings"][k] == result_row[k] for k in keys)
            ]
            ax.scatter([index] * len(seeds_of), seeds_of, color="black", s=10, zorder=3)
        ax.set_xticks(range(len(rows)), labels, rotation=20, ha="right", fontsize=8)
        ax.set_ylabel(f"{metric} (mean ± std over seeds, dots: seeds)")
        ax.set_title(f"{metric} per setting")
        fig.tight_layout()
        fig.savefig(out_dir / "summary.png")
        plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``glore sweep``."""
    from glore.engine.config import add_override_argument

    parser.add_argument("config", help="base YAML recipe")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2", help="a key and its values")
    parser.add_argument("--seeds", default="0", help="comma-separated train.seed values (default: 0)")
    add_override_argument(parser, "override applied to every run before the grid's, e.g. --set train.epochs=3")
    parser.add_argument("--out", default=None, help="sweep folder (default: runs/sweep-<config name>)")
    parser.add_argument("--metric", default="val_top1", help="main metric of the table and plot")
    parser.add_argument(
        "--summary-only",
        action="store_true",
        help="train nothing: write the table and plot from the runs finished so far",
    )
    parser.add_argument(
        "--devices",
        default=None,
        help="comma-separated CUDA devices to run on in parallel (default: every visible GPU if "
        "more than one, else one run after another here)",
    )


def run(args: argparse.Namespace) -> int:
    """Entry point of ``glore sweep``."""
    from glore.cli import output_folder

    grid = parse_grid(args.grid)
    seeds = parse_seeds(args.seeds)
    out = output_folder(args.out or f"runs/sweep-{Path(args.config).stem}", "--out")
    if args.summary_only:
        results = [_read_json(Path(out) / run.name / RESULT_FILE) for run in plan_runs(grid, seeds)]
        finished = [r for r in results if r]
        if not finished:
            raise ValueError(f"--out: no finished run of this grid under {str(out)!r}")
        check_metric(finished, args.metric)
        write_summary(finished, list(grid), Path(out), metric=args.metric)
        print(f"{len(finished)} of {len(results)} runs finished")
        print((Path(out) / "summary.md").read_text())
        return 0
    if args.devices is not None:
        try:
            devices = [int(d) for d in args.devices.split(",") if d.strip()]
        except ValueError:
            raise ValueError(f"--devices: expected comma-separated CUDA device indices, got {args.devices!r}") from None
    else:
        import torch

        count = torch.cuda.device_count()
        devices = list(range(count)) if count > 1 else None
    run_sweep(args.config, grid, seeds, out, overrides=args.overrides, devices=devices, metric=args.metric)
    print((Path(out) / "summary.md").read_text())
    return 0


def _main_one(spec: str, out: str) -> int:
    values = json.loads(spec)
    sweep_run = SweepRun(values["settings"], int(values["seed"]))
    execute_run(values["config"], values["overrides"], sweep_run, Path(out))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        raise SystemExit(_main_one(sys.argv[2], sys.argv[3]))
    raise SystemExit("usage: python -m glore.tools.sweep --one SPEC_JSON OUT_DIR (internal; use `glore sweep`)")
