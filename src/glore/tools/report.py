"""``report.md`` of a training run: config, model profile, final and best metrics, curves, and for networks
with GloRe units the projection maps of a few validation images.

The trainer writes it when a run ends; ``glore report RUN_DIR`` writes it again for any run folder.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import yaml

from glore._io import atomic_write_text

__all__ = ["write_run_report", "add_arguments", "run"]


def _best_metric(config: dict[str, Any]) -> tuple[str, str]:
    """The metric ``best.pt`` tracked in a run and its direction (``"max"``/``"min"``), as the run's task declares
    them (``output.best_metric``, else the task's primary metric)."""
    name = (config.get("output") or {}).get("best_metric")
    try:
        import glore.tasks  # noqa: F401 - registers glore's own tasks
        from glore.engine import build_task, load_config

        task = build_task(load_config(config))
    except ValueError:  # a task or a config key this installation does not know: loss is minimised, others maximised
        name = name or "top1"
        return name, "min" if name == "loss" else "max"
    name = name or task.primary_metric
    try:
        return name, task.metric_direction(name)
    except ValueError:
        return name, "max"


def _run_task(config: dict[str, Any]) -> Any:
    """The run's task built from its config, or None when this installation cannot build it."""
    try:
        import glore.tasks  # noqa: F401 - registers glore's own tasks
        from glore.engine import build_task, load_config

        return build_task(load_config(config))
    except ValueError:  # a task or a config key this installation does not know
        return None


def _metric_table(rows: list[dict[str, Any]], best_key: str, direction: str = "max") -> list[str]:
    last = rows[-1]
    scored = [r for r in rows if isinstance(r.get(best_key), float) and r[best_key] == r[best_key]]  # not NaN
    pick = max if direction == "max" else min
    best = pick(scored, key=lambda r: r[best_key]) if scored else None
    names = [k for k in last if k != "epoch" and isinstance(last[k], float)]
    best_epoch = int(best["epoch"]) if best else "-"
    lines = [
        f"| metric | final (epoch {int(last['epoch'])}) | at the best {best_key} (epoch {best_epoch}) |",
        "|---|---|---|",
    ]
    for name in names:
        best_value = f"{best[name]:.4g}" if best and isinstance(best.get(name), float) else "-"
        lines.append(f"| {name} | {last[name]:.4g} | {best_value} |")
    return lines


def _budget(state: dict[str, Any], config: dict[str, Any]) -> str:
    """``"N epoch(s)"``, or ``"N iterations"`` for a run whose budget was counted in iterations."""
    if (config.get("train") or {}).get("iterations") is not None:
        return f"{int(state.get('step', 0))} iterations"
    return f"{int(state.get('epoch', 0))} epoch(s)"


def write_run_report(run_dir: str | Path, *, samples: int = 3, checkpoint: str = "last.pt") -> Path:
    """Write ``run_dir/report.md`` from what the run left in its folder.

    Args:
        run_dir: a folder written by ``glore.engine.train`` (``last.pt``, ``metrics.csv``, ``curves.png``).
        samples: validation images whose projection maps are drawn, for networks with GloRe units.
        checkpoint: the checkpoint of the run to describe.

    Returns:
        The report's path.

    Raises:
        FileNotFoundError: the folder has no such checkpoint.
    """
    from glore.engine import load_checkpoint, load_model
    from glore.engine.logger import read_csv
    from glore.tools.profile import format_profile, profile_model
    from glore.tools.visualize import _validation_samples, glore_units, visualize_model

    run_dir = Path(run_dir)
    path = run_dir / checkpoint
    if not path.is_file():
        raise FileNotFoundError(f"run_dir {str(run_dir)!r} has no {checkpoint}: is it a glore training run folder?")
    state = load_checkpoint(path)
    config = state.get("config") or {}
    data = config.get("data", {})
    model = load_model(path)
    task = _run_task(config)
    # The task's evaluation input (a Cityscapes image, a Kinetics clip), else the network's default config.
    input_size = task.input_size(model) if task is not None else None

    lines = [f"# Run report: {run_dir.name}", ""]
    model_config = state.get("model_config") or {}
    units = glore_units(model)
    lines += [
        f"Network `{model_config.get('name', type(model).__name__)}`"
        + (f" with {len(units)} GloRe unit(s) ({', '.join(n for n, _ in units)})" if units else " without GloRe units")
        + f", trained {_budget(state, config)} on `{data.get('name', '?')}`.",
        "",
        "## Model profile",
        "",
        # On a meta copy: counted at the task's full input (a 1024 x 2048 image) without computing anything.
        format_profile(
            profile_model(copy.deepcopy(model).to("meta"), input_size, name=str(model_config.get("name", ""))),
            markdown=True,
        ),
        "",
    ]
    metrics_csv = run_dir / "metrics.csv"
    if metrics_csv.is_file():
        rows = read_csv(metrics_csv)
        if rows:
            name, direction = _best_metric(config)
            prefix = "val_" if any(r.get("val_" + name) is not None for r in rows) else "train_"
            lines += ["## Metrics", "", *_metric_table(rows, prefix + name, direction), ""]
    if (run_dir / "curves.png").is_file():
        lines += ["## Curves", "", "![training and validation curves](curves.png)", ""]
    if units and samples > 0:
        try:
            images = _validation_samples(config, samples)
        except Exception as error:  # the data may not be on this machine any more: say so, keep the report
            lines += [
                "## GloRe projection maps",
                "",
                f"Not drawn: the validation data could not be read ({error}).",
                "",
            ]
        else:
            mean, std = task.input_normalization()  # the samples were read, so the task was built
            names = [f"val{i}" for i in range(len(images))]
            paths = visualize_model(model, images, run_dir / "report", mean=mean, std=std, names=names, max_nodes=8)
            lines += [
                "## GloRe projection maps",
                "",
                "Per unit and validation image: the heaviest nodes' projection maps, the node assignment, the "
                "learned adjacency and the size of what the unit adds (see `glore visualize`).",
                "",
            ]
            lines += [f"![{p.stem}](report/{p.name})" for p in paths] + [""]
    lines += ["## Config", "", "```yaml", yaml.safe_dump(config, sort_keys=False).rstrip(), "```", ""]
    report = run_dir / "report.md"
    atomic_write_text(report, "\n".join(lines))
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``glore report``."""
    parser.add_argument("run_dir", help="a training run folder")
    parser.add_argument("--samples", type=int, default=3, help="validation images to draw projection maps of")
    parser.add_argument("--checkpoint", default="last.pt", help="which checkpoint of the run (last.pt or best.pt)")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``glore report``."""
    print(write_run_report(args.run_dir, samples=args.samples, checkpoint=args.checkpoint))
    return 0
