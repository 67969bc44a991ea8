"""``glore demo [TASK ...]``: global reasoning at work, on a laptop CPU, a few minutes a task.

Each task's demo trains the same small network twice on built-in data that only relating distant parts can solve:
once without GloRe and once with it; everything else is shared. Both are evaluated on a held-out test split, and a
table of the task's metrics, parameters, GFLOPs (multiply-adds, the paper's convention) and training time is printed
and written to ``runs/demo/TASK/report.md`` with the curves and checkpoints of both runs. Whatever wins is reported
as measured, with the sampling noise of the test set.

- ``classification``: a small ResNet on the ``relational`` images (``configs/demo.yaml``).
- ``segmentation`` and ``video`` register their demos from ``glore.tools.demo_segmentation`` and
  ``glore.tools.demo_video``.

``glore demo --quick`` runs each pipeline on a few dozen samples (a smoke test).
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from glore._io import atomic_write_text
from glore.engine.config import add_override_argument

__all__ = [
    "DEMOS",
    "Demo",
    "DemoResult",
    "add_arguments",
    "count_macs",
    "find_demo_config",
    "register_demo",
    "run",
    "run_demo",
]

# A tiny run of the classification pipeline: one epoch on a few dozen images.
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
# A tiny run of the segmentation and video pipelines: one epoch on a few dozen generated samples.
TASK_QUICK_OVERRIDES = (
    "train.epochs=1",
    "data.train_kwargs.num_samples=48",
    "data.val_kwargs.num_samples=16",
    "data.batch_size=16",
    "data.num_workers=0",
    "schedule.warmup_epochs=0",
)


def _glore_variants(config: Any) -> list[tuple[str, str, Any]]:
    """The network without units, then with the units ``model.glore`` places."""
    from glore.engine import ConfigError

    if config.model.glore is None:
        raise ConfigError("model.glore: the demo compares a network with GloRe units to one without; set model.glore")
    return [("baseline", "none", _with(config, glore=None)), ("glore", _spec(config.model.glore), config)]


def _head_variants(config: Any) -> list[tuple[str, str, Any]]:
    """The FCN with its plain head, then with the GloRe head (``model.kwargs.head``)."""
    return [
        ("baseline", "fcn", _with(config, head="fcn")),
        ("glore", str(config.model.kwargs.get("head", "glore")), _with(config, head="glore")),
    ]


def _with(config: Any, *, glore: Any = "keep", head: str | None = None) -> Any:
    config = copy.deepcopy(config)
    if glore != "keep":
        config.model.glore = glore
        if glore is None:
            config.model.glore_args = {}  # the baseline has no units to configure
    if head is not None:
        config.model.kwargs = {**config.model.kwargs, "head": head}
    return config


@dataclass(frozen=True)
class Demo:
    """One task's demo: a recipe, the two networks it compares, and how the report describes them.

    Attributes:
        name: the task (``glore demo NAME``).
        config: the recipe's file name in ``configs/``.
        title: the report's title.
        question: what the built-in data asks, for the report.
        difference: the table column that names what differs between the two networks.
        variants: the baseline and the GloRe network, as ``(name, label, config)``.
        quick: overrides of ``--quick`` (a smoke test of the pipeline).
        unit: what the test set counts (images, videos), for the sampling noise.
    """

    name: str
    config: str
    title: str
    question: str
    difference: str
    variants: Callable[[Any], list[tuple[str, str, Any]]]
    quick: tuple[str, ...]
    unit: str = "images"


DEMOS: dict[str, Demo] = {}


def register_demo(demo: Demo) -> Demo:
    """Make ``demo`` runnable as ``glore demo NAME`` (and part of ``glore demo``)."""
    DEMOS[demo.name] = demo
    return demo


register_demo(
    Demo(
        name="classification",
        config="demo.yaml",
        title="global reasoning on relational images",
        question="Is the red object the same shape as the blue one? The two are placed far apart, so a network must "
        "relate distant positions.",
        difference="GloRe units",
        variants=_glore_variants,
        quick=QUICK_OVERRIDES,
    )
)


def find_demo_config(name: str = "demo.yaml") -> Path:
    """``configs/NAME`` in the current folder, else in the source checkout glore is installed from."""
    candidates = [Path.cwd() / "configs" / name, Path(__file__).resolve().parents[3] / "configs" / name]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"--config: no configs/{name} in the current folder or the glore checkout; pass --config PATH"
    )


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one forward pass for one input of ``input_shape`` (C, H, W) or (C, T, H, W), counted by the
    profiler (``glore.tools.profile.profile_model``), which also counts the unit's in-place ``baddbmm_`` that
    ``FlopCounterMode`` alone leaves out."""
    from glore.tools.profile import profile_model

    return profile_model(model, tuple(input_shape[1:])).total_macs


@dataclass
class DemoResult:
    """One trained model of the demo.

    Attributes:
        name: ``"baseline"`` or ``"glore"``.
        label: what distinguishes it (the insertion spec, the head).
        run_dir: its run folder.
        test: ``evaluate`` metrics on the test split (``val_*`` keys).
        val_best: the best validation value of the primary metric during training.
        params: parameters.
        macs: multiply-adds of one input.
        train_time_s: wall time of training (with the validations).
    """

    name: str
    label: str
    run_dir: Path
    test: dict[str, float]
    val_best: float
    params: int
    macs: int
    train_time_s: float


def run_demo(config: Any, out_dir: str | Path, *, demo: Demo | None = None, stream: Any = None) -> list[DemoResult]:
    """Train and evaluate the baseline and the GloRe network of ``demo`` on ``config``, write the report.

    Args:
        config: the demo's ``Config``.
        out_dir: where ``baseline/``, ``glore/``, ``curves.png`` and ``report.md`` go.
        demo: which demo (default the classification one).
        stream: where the table is printed (default stdout).
    """
    from glore.engine import evaluate, load_model, train
    from glore.engine.logger import plot_curves, read_csv
    from glore.engine.task import build_task

    demo = demo or DEMOS["classification"]
    stream = stream if stream is not None else sys.stdout
    task = build_task(config)
    metric = task.primary_metric
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for name, label, variant in demo.variants(config):
        variant.output.dir = str(out_dir / name)
        print(f"== {demo.name} {name}: {variant.model.name}, {demo.difference.lower()} {label} ==", file=stream)
        start = time.perf_counter()
        train(variant)
        train_time = time.perf_counter() - start
        best = Path(variant.output.dir) / "best.pt"
        test_config = copy.deepcopy(variant)
        test_config.data.val_split = TEST_SPLIT
        test = evaluate(test_config, best)
        model = load_model(best)
        sample = build_task(variant).build_dataset(variant.data.val_split or TEST_SPLIT, train=False)[0][0]
        rows = read_csv(Path(variant.output.dir) / "metrics.csv")
        values = [r[f"val_{metric}"] for r in rows if r.get(f"val_{metric}") is not None]
        results.append(
            DemoResult(
                name=name,
                label=label,
                run_dir=Path(variant.output.dir),
                test=test,
                val_best=max(values, default=float("nan")),
                params=sum(p.numel() for p in model.parameters()),
                macs=count_macs(model, tuple(sample.shape)),
                train_time_s=train_time,
            )
        )
    test_size = _test_size(config)
    series = {r.name: read_csv(r.run_dir / "metrics.csv") for r in results}
    plot_curves([], out_dir / "curves.png", series=series, title=f"{demo.name}: baseline vs GloRe", metric=metric)
    metrics = [m for m in task.metrics if f"val_{m}" in results[0].test][:2]
    table = format_table(results, metrics, demo.difference)
    verdict = _verdict(results, metric, test_size, demo.unit)
    print("", file=stream)
    print(table, file=stream)
    print("", file=stream)
    print(verdict, file=stream)
    report = write_report(config, demo, results, table, verdict, out_dir)
    print(f"\nwrote {report}", file=stream, flush=True)
    return results


def _test_size(config: Any) -> int:
    """Images (or videos) of the test split."""
    from glore.engine.task import build_task

    dataset = build_task(config).build_dataset(TEST_SPLIT, train=False)
    return len(dataset) // int(getattr(dataset, "num_views", 1))


def format_table(results: list[DemoResult], metrics: list[str], difference: str = "GloRe units") -> str:
    """The comparison as a markdown table: test values of ``metrics``, the best validation value of the first."""
    names = [m.replace("_", " ") for m in metrics]
    lines = [
        f"| model | {difference} | " + " | ".join(f"test {n}" for n in names) + f" | best val {names[0]} | params | "
        "GFLOPs | train time |",
        "|---|---|" + "---|" * len(metrics) + "---|---|---|---|",
    ]
    for r in results:
        cells = " | ".join(f"{r.test[f'val_{m}']:.4f}" for m in metrics)
        lines.append(
            f"| {r.name} | {r.label} | {cells} | {r.val_best:.4f} | {r.params / 1e6:.3f}M | {r.macs / 1e9:.4f} | "
            f"{_duration(r.train_time_s)} |"
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


def _verdict(results: list[DemoResult], metric: str, n: int, unit: str) -> str:
    base, glore = results
    a, b = glore.test[f"val_{metric}"], base.test[f"val_{metric}"]
    diff = a - b
    # Binomial standard error of a difference of two rates on n test items each: a rough scale of the sampling noise
    # (for mIoU, whose pixels are not independent, a lower bound).
    p = min(max((a + b) / 2, 0.0), 1.0)
    noise = (2 * p * (1 - p) / max(n, 1)) ** 0.5
    name = metric.replace("_", " ")
    if abs(diff) <= 2 * noise:
        return (
            f"No clear winner: test {name} {a:.4f} with GloRe vs {b:.4f} without (difference {diff:+.4f}, within "
            f"twice the sampling noise {noise:.4f} of {n} test {unit})."
        )
    winner = "GloRe" if diff > 0 else "the baseline"
    return (
        f"As measured, {winner} wins: test {name} {a:.4f} with GloRe vs {b:.4f} without (difference {diff:+.4f} on "
        f"{n} test {unit}; sampling noise about {noise:.4f})."
    )


def write_report(config: Any, demo: Demo, results: list[DemoResult], table: str, verdict: str, out_dir: Path) -> Path:
    """Write ``out_dir/report.md``: the question, the table, the verdict, settings, curves and checkpoints."""
    d, m, o, t = config.data, config.model, config.optim, config.train
    if o.name == "sgd":
        optimiser = (
            f"SGD lr {o.lr} (momentum {o.momentum}{', Nesterov' if o.nesterov else ''}, weight decay {o.weight_decay})"
        )
    else:
        optimiser = f"AdamW lr {o.lr} (weight decay {o.weight_decay})"
    budget = f"{t.iterations} iterations" if t.iterations is not None else f"{t.epochs} epochs"
    lines = [
        f"# glore demo ({demo.name}): {demo.title}",
        "",
        f"{demo.question} Both networks are the same `{m.name}` "
        f"({', '.join(f'{k}={v}' for k, v in m.kwargs.items()) or 'default widths'}) but for the "
        f"{demo.difference.lower()}: {', '.join(f'{r.name} `{r.label}`' for r in results)}.",
        "",
        table,
        "",
        verdict,
        "",
        "Test metrics are of each run's best checkpoint (chosen on the validation split) on the held-out test split. "
        "GFLOPs are billions of multiply-adds per input (the paper's convention), counted by glore's profiler; "
        "training time includes the validations.",
        "",
        "## Settings",
        "",
        f"- data: `{d.name}` {dict(d.kwargs)}, train {dict(d.train_kwargs)}, val/test {dict(d.val_kwargs)}",
        f"- {budget}, global batch {d.batch_size}, {optimiser}, {config.schedule.name} schedule with "
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
    lines += ["", f"Reproduce with `glore demo {demo.name}` (`make demo` runs every task's demo)."]
    path = out_dir / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``glore demo``."""
    _load_task_demos()
    parser.add_argument(
        "tasks",
        nargs="*",
        metavar="TASK",
        help=f"which demos to run, in order: {', '.join(DEMOS)} (default: all of them)",
    )
    parser.add_argument("--config", help="the recipe, for a single TASK (default: the task's configs/demo*.yaml)")
    parser.add_argument("--output", default="runs/demo", help="output folder; each task writes OUTPUT/TASK/")
    parser.add_argument("--quick", action="store_true", help="a tiny run of each pipeline (about a minute each)")
    add_override_argument(parser, "override a value of the demo config for both runs, e.g. --set train.epochs=3")


def _load_task_demos() -> None:
    """The segmentation and video demos register themselves in their tool modules."""
    import importlib

    for module in ("glore.tools.demo_segmentation", "glore.tools.demo_video"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:
                raise


def run(args: argparse.Namespace) -> int:
    """Run ``glore demo``; returns the exit status."""
    from glore.engine import ConfigError, NonFiniteLossError, load_config

    _load_task_demos()
    names = args.tasks or list(DEMOS)
    unknown = [n for n in names if n not in DEMOS]
    if unknown:
        print(f"glore demo: TASK {unknown[0]!r} is not a demo; expected one of {', '.join(DEMOS)}", file=sys.stderr)
        return 2
    if args.config and len(names) != 1:
        print("glore demo: --config needs exactly one TASK (each task has its own recipe)", file=sys.stderr)
        return 2
    for name in names:
        demo = DEMOS[name]
        try:
            path = Path(args.config) if args.config else find_demo_config(demo.config)
            overrides = [*(demo.quick if args.quick else ()), *args.overrides]
            config = load_config(path, overrides)
            run_demo(config, Path(args.output) / name, demo=demo)
        except (ConfigError, FileNotFoundError, ValueError) as err:
            print(f"glore demo {name}: {err}", file=sys.stderr)
            return 2
        except NonFiniteLossError as err:
            print(f"glore demo {name}: {err}", file=sys.stderr)
            return 1
    return 0
