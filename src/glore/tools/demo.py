"""``glore demo``: global reasoning at work, on a laptop CPU in about ten minutes.

Trains the same small ResNet twice on the built-in ``relational`` data (is the red object the same shape as
the blue one, far away in the image?): once without GloRe and once with the units that ``configs/demo.yaml``
places (``model.glore``); everything else is shared. Both are then evaluated on the held-out test split, and a
table of accuracy, parameters, GFLOPs (multiply-adds, the paper's convention) and training time is printed
and written to ``runs/demo/report.md`` with the curves of both runs and both checkpoints. Whatever wins is
reported as measured.

``glore demo --quick`` runs the same pipeline on a few dozen images for one epoch (a smoke test).
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from glore._io import atomic_write_text
from glore.engine.config import add_override_argument

__all__ = ["DemoResult", "add_arguments", "count_macs", "find_demo_config", "run", "run_demo"]

# A tiny run of the whole pipeline: one epoch on a few dozen images.
QUICK_OVERRIDES = (
    "train.epochs=1",
    "data.image_size=32",
    "data.train_kwargs.num_samples=48",
    "data.val_kwargs.num_samples=24",
    "data.batch_size=16",
    "data.num_workers=0",
    "schedule.warmup_epochs=0",
)
TEST_SPLIT = "test"


def find_demo_config() -> Path:
    """``configs/demo.yaml`` in the current folder, else in the source checkout glore is installed from."""
    candidates = [Path.cwd() / "configs" / "demo.yaml", Path(__file__).resolve().parents[3] / "configs" / "demo.yaml"]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        "--config: no configs/demo.yaml in the current folder or the glore checkout; pass --config PATH"
    )


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one forward pass for one input of ``input_shape`` (C, H, W), counted by the profiler
    (``glore.tools.profile.profile_model``), which also counts the unit's in-place ``baddbmm_`` that
    ``FlopCounterMode`` alone leaves out."""
    from glore.tools.profile import profile_model

    return profile_model(model, tuple(input_shape[1:])).total_macs


@dataclass
class DemoResult:
    """One trained model of the demo.

    Attributes:
        name: ``"baseline"`` or ``"glore"``.
        glore: the insertion spec (``None`` for the baseline).
        run_dir: its run folder.
        test: metrics of the best checkpoint on the test split.
        val_best: best validation top-1 during training.
        params: trainable parameters.
        macs: multiply-adds per image.
        train_time_s: wall time of training (with the per-epoch validation).
        epochs: epochs trained.
    """

    name: str
    glore: Any
    run_dir: Path
    test: dict[str, float]
    val_best: float
    params: int
    macs: int
    train_time_s: float
    epochs: int


def _variant(config: Any, name: str, glore: Any, out_dir: Path) -> Any:
    config = copy.deepcopy(config)
    config.model.glore = glore
    config.output.dir = str(out_dir / name)
    return config


def run_demo(config: Any, out_dir: str | Path, *, stream: Any = None) -> list[DemoResult]:
    """Train and evaluate the baseline and the GloRe network of ``config``, write the report, return results.

    Args:
        config: the demo's ``Config``; ``model.glore`` places the units of the GloRe network, the baseline is
            the same network with ``model.glore = None``.
        out_dir: where ``baseline/``, ``glore/``, ``curves.png`` and ``report.md`` go.
        stream: where the table is printed (default stdout).
    """
    from glore.engine import evaluate, load_model, train
    from glore.engine.logger import plot_curves, read_csv

    stream = stream if stream is not None else sys.stdout
    from glore.engine import ConfigError

    if config.model.glore is None:
        raise ConfigError("model.glore: the demo compares a network with GloRe units to one without; set model.glore")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for name, glore in (("baseline", None), ("glore", config.model.glore)):
        variant = _variant(config, name, glore, out_dir)
        print(f"== {name}: {config.model.name}, glore={glore} ==", file=stream, flush=True)
        start = time.perf_counter()
        train(variant)
        train_time = time.perf_counter() - start
        best = Path(variant.output.dir) / "best.pt"
        test_config = copy.deepcopy(variant)
        test_config.data.val_split = TEST_SPLIT
        test = evaluate(test_config, best)
        model = load_model(best)
        sample, _ = _first_sample(variant)
        rows = read_csv(Path(variant.output.dir) / "metrics.csv")
        results.append(
            DemoResult(
                name=name,
                glore=glore,
                run_dir=Path(variant.output.dir),
                test=test,
                val_best=max((r["val_top1"] for r in rows if r.get("val_top1") is not None), default=float("nan")),
                params=sum(p.numel() for p in model.parameters()),
                macs=count_macs(model, tuple(sample.shape)),
                train_time_s=train_time,
                epochs=config.train.epochs,
            )
        )
    series = {r.name: read_csv(r.run_dir / "metrics.csv") for r in results}
    plot_curves([], out_dir / "curves.png", series=series, title="relational: baseline vs GloRe")
    table = format_table(results)
    print("", file=stream)
    print(table, file=stream)
    print("", file=stream)
    print(_verdict(results), file=stream)
    report = write_report(config, results, out_dir)
    print(f"\nwrote {report}", file=stream, flush=True)
    return results


def _first_sample(config: Any) -> tuple[torch.Tensor, Any]:
    from glore.engine.task import build_task

    dataset = build_task(config).build_dataset(config.data.val_split or config.data.train_split, train=False)
    return dataset[0]


def format_table(results: list[DemoResult]) -> str:
    """The comparison as a markdown table."""
    lines = [
        "| model | GloRe units | test top-1 | test mean class acc | best val top-1 | params | GFLOPs | train time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {_spec(r.glore)} | {r.test['val_top1']:.4f} | {r.test['val_mean_class_acc']:.4f} | "
            f"{r.val_best:.4f} | {r.params / 1e6:.3f}M | {r.macs / 1e9:.4f} | {_duration(r.train_time_s)} |"
        )
    return "\n".join(lines)


def _spec(glore: Any) -> str:
    if glore is None:
        return "none"
    if isinstance(glore, dict):
        return ", ".join(f"{k}: {v}" for k, v in glore.items())
    return str(glore)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def _verdict(results: list[DemoResult]) -> str:
    base, glore = results
    diff = glore.test["val_top1"] - base.test["val_top1"]
    n = int(glore.test["val_count"])
    # Binomial standard error of a difference of two accuracies on n samples each: a rough scale of noise.
    p = (glore.test["val_top1"] + base.test["val_top1"]) / 2
    noise = (2 * p * (1 - p) / max(n, 1)) ** 0.5
    if abs(diff) <= 2 * noise:
        return (
            f"No clear winner: test top-1 {glore.test['val_top1']:.4f} with GloRe vs {base.test['val_top1']:.4f} "
            f"without (difference {diff:+.4f}, within twice the sampling noise {noise:.4f} of {n} test images)."
        )
    winner = "GloRe" if diff > 0 else "the baseline"
    return (
        f"As measured, {winner} wins: test top-1 {glore.test['val_top1']:.4f} with GloRe vs "
        f"{base.test['val_top1']:.4f} without (difference {diff:+.4f} on {n} test images; sampling noise "
        f"about {noise:.4f})."
    )


def write_report(config: Any, results: list[DemoResult], out_dir: Path) -> Path:
    """Write ``out_dir/report.md``: settings, the table, the verdict, curves and checkpoints."""
    d, m, o, t = config.data, config.model, config.optim, config.train
    data_kwargs = {**d.kwargs, **d.train_kwargs}
    where = "among distractors" if data_kwargs.get("num_distractors", 1) else "on a noisy background"
    if o.name == "sgd":
        optimiser = (
            f"SGD lr {o.lr} (momentum {o.momentum}{', Nesterov' if o.nesterov else ''}, weight decay {o.weight_decay})"
        )
    else:
        optimiser = f"AdamW lr {o.lr} (weight decay {o.weight_decay})"
    lines = [
        "# glore demo: global reasoning on relational images",
        "",
        f"Is the red object the same shape as the blue one? The two are placed far apart {where}, so a "
        "network must relate distant positions. Both networks are the same "
        f"`{m.name}` ({', '.join(f'{k}={v}' for k, v in m.kwargs.items()) or 'default widths'}); the second has "
        f"GloRe units at `{_spec(m.glore)}` ({', '.join(f'{k}={v}' for k, v in m.glore_args.items()) or 'default'}"
        " unit options).",
        "",
        format_table(results),
        "",
        _verdict(results),
        "",
        "Test metrics are of each run's best checkpoint (chosen on the validation split) on the held-out test split. "
        "GFLOPs are billions of multiply-adds per image (the paper's convention), counted with PyTorch's "
        "FlopCounterMode; training time includes the per-epoch validation.",
        "",
        "## Settings",
        "",
        f"- data: `{d.name}` {dict(d.kwargs)}, train {dict(d.train_kwargs)}, val/test {dict(d.val_kwargs)}",
        f"- {t.epochs} epochs, global batch {d.batch_size}, {optimiser}, {config.schedule.name} schedule with "
        f"{config.schedule.warmup_epochs} warm-up epochs, seed {t.seed}",
        f"- machine: {platform.machine()} {platform.system()}, {os.cpu_count()} CPUs, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}",
        "",
        "## Curves",
        "",
        "![validation and training curves of both runs](curves.png)",
        "",
        "## Files",
        "",
    ]
    for r in results:
        lines.append(
            f"- {r.name}: `{r.run_dir.name}/best.pt`, `{r.run_dir.name}/last.pt`, `{r.run_dir.name}/metrics.csv`, "
            f"`{r.run_dir.name}/curves.png`, TensorBoard events in `{r.run_dir.name}/tb/`"
        )
    lines += ["", "Reproduce with `glore demo` (or `make demo`)."]
    path = out_dir / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``glore demo``."""
    parser.add_argument("--config", help="the demo recipe (default: configs/demo.yaml)")
    parser.add_argument("--output", default="runs/demo", help="output folder (default: runs/demo)")
    parser.add_argument("--quick", action="store_true", help="a tiny run of the whole pipeline (under a minute)")
    add_override_argument(parser, "override a value of the demo config for both runs, e.g. --set train.epochs=3")


def run(args: argparse.Namespace) -> int:
    """Run ``glore demo``; returns the exit status."""
    from glore.engine import ConfigError, NonFiniteLossError, load_config

    try:
        path = Path(args.config) if args.config else find_demo_config()
        overrides = [*(QUICK_OVERRIDES if args.quick else ()), *args.overrides]
        config = load_config(path, overrides)
        run_demo(config, args.output)
    except (ConfigError, FileNotFoundError) as err:
        print(f"glore demo: {err}", file=sys.stderr)
        return 2
    except NonFiniteLossError as err:
        print(f"glore demo: {err}", file=sys.stderr)
        return 1
    return 0
