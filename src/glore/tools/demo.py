"""``glore demo [TASK ...]``: global reasoning at work, on a laptop CPU, a few minutes a task.

Each task's demo trains the same small network without GloRe and with it, three seeds each, on built-in data whose
label is a relation between parts that the network without GloRe never sees together (its receptive field, or its
one-frame temporal extent, is smaller than their distance), so that its global average pool and linear classifier
cannot compare them; everything else is shared. Every run is evaluated on a held-out test split, and a table of
the task's metrics (mean ± standard deviation over seeds), parameters, GFLOPs (multiply-adds, the paper's
convention) and training time is printed and written to ``runs/demo/TASK/report.md`` with the curves and checkpoints
of every run. The verdict compares the difference of the means over seeds with the spread over seeds plus the
sampling noise of the test set; each demo's wall and CPU time is printed, and ``glore demo`` ends with one summary
table (``runs/demo/summary.md``).

- ``classification``: a small ResNet on the ``relational`` images (``configs/demo.yaml``): are two objects far
  apart the same colour?
- ``segmentation`` and ``video`` register their demos from ``glore.tools.demo_segmentation`` and
  ``glore.tools.demo_video``.

``glore demo --quick`` runs each pipeline on a few dozen samples with one seed (a smoke test, about a minute).
"""

from __future__ import annotations

import copy
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from glore._io import atomic_write_text

__all__ = [
    "DEMOS",
    "Demo",
    "DemoResult",
    "count_macs",
    "find_demo_config",
    "register_demo",
    "run_demo",
]

# A tiny run of the classification pipeline: one epoch on a few dozen images (at the recipe's image size, which the
# objects' gap needs).
QUICK_OVERRIDES = (
    "train.epochs=1",
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
    """The FCN with its plain head and no units, then with the GloRe head (``model.kwargs.unit_args`` its options)
    and the backbone units ``model.glore`` places (if any)."""
    label = "glore" if config.model.glore is None else f"glore + {_spec(config.model.glore)}"
    return [
        ("baseline", "fcn", _with(config, glore=None, head="fcn")),
        ("glore", label, _with(config, head="glore")),
    ]


def _with(config: Any, *, glore: Any = "keep", head: str | None = None) -> Any:
    config = copy.deepcopy(config)
    if glore != "keep":
        config.model.glore = glore
        if glore is None:
            config.model.glore_args = {}  # the baseline has no units to configure
    if head is not None:
        config.model.kwargs = {**config.model.kwargs, "head": head}
        if head == "fcn":
            config.model.kwargs.pop("unit_args", None)  # the plain head has no unit to configure
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
        why: why the baseline cannot answer the question (the report's second paragraph).
        seeds: the ``train.seed`` of each network's runs.
        noise: ``noise(test_config, checkpoint, value, test_size)``, the sampling standard deviation of one run's
            test value of the primary metric; None: binomial (the metric is a rate over ``test_size`` items).
    """

    name: str
    config: str
    title: str
    question: str
    difference: str
    variants: Callable[[Any], list[tuple[str, str, Any]]]
    quick: tuple[str, ...]
    unit: str = "images"
    why: str = ""
    seeds: tuple[int, ...] = (0, 1, 2)
    noise: Callable[[Any, Path, float, int], float] | None = None


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
        question="Are the two objects, at opposite sides of the image, the same colour?",
        difference="GloRe units",
        variants=_glore_variants,
        quick=QUICK_OVERRIDES,
        why="Why the baseline cannot: its receptive field is 35 x 35 pixels (bottleneck blocks, one 3x3 convolution "
        "each) and the two objects are at least 35 pixels apart along x or y, so no feature before the global "
        "average pool sees both. The pool adds a term of one object to a term of the other, and the linear "
        "classifier's logit is u(first colour) + v(second colour) for each placement. With two colours "
        "logit(a, a) + logit(b, b) = logit(a, b) + logit(b, a), so the four colour pairs of a placement cannot all be "
        "classified right: at most 3 of 4 test images, however long it trains. A GloRe unit pools the whole map into "
        "graph nodes, mixes them non-linearly and projects the result back to every position, so it can compare "
        "the two objects.",
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
    profiler (``glore.tools.profile.profile_model``, ``FlopCounterMode`` over every product of the network)."""
    from glore.tools.profile import profile_model

    return profile_model(model, tuple(input_shape[1:])).total_macs


@dataclass
class DemoResult:
    """One trained model of the demo, with one seed.

    Attributes:
        name: ``"baseline"`` or ``"glore"``.
        label: what distinguishes it (the insertion spec, the head).
        seed: the run's ``train.seed``.
        run_dir: its run folder.
        test: ``evaluate`` metrics on the test split (``val_*`` keys).
        val_best: the best validation value of the primary metric during training.
        params: parameters.
        macs: multiply-adds of one input.
        train_time_s: wall time of training (with the validations).
        noise: the sampling standard deviation of the run's test value of the primary metric (binomial for a rate,
            a bootstrap over test images for mIoU).
    """

    name: str
    label: str
    seed: int
    run_dir: Path
    test: dict[str, float]
    val_best: float
    params: int
    macs: int
    train_time_s: float
    noise: float = float("nan")


@dataclass(frozen=True)
class Comparison:
    """The baseline's and GloRe's test values over seeds, and what they say.

    Attributes:
        baseline: the baseline's value of each seed.
        glore: the GloRe network's value of each seed.
        noise: the sampling standard deviation of a difference of two runs' values on the test set.
    """

    baseline: tuple[float, ...]
    glore: tuple[float, ...]
    noise: float

    @property
    def difference(self) -> float:
        """Mean over seeds of GloRe minus mean over seeds of the baseline."""
        return _mean(self.glore) - _mean(self.baseline)

    @property
    def spread(self) -> float:
        """The larger of the two sample standard deviations over seeds (0 with one seed each)."""
        return max(_std(self.baseline), _std(self.glore))

    @property
    def margin(self) -> float:
        """What the difference must exceed to name a winner: the spread over seeds plus the sampling noise."""
        return self.spread + self.noise

    @property
    def winner(self) -> str | None:
        """``"glore"`` or ``"baseline"`` when the mean difference exceeds ``margin``, else None."""
        if self.difference > self.margin:
            return "glore"
        if -self.difference > self.margin:
            return "baseline"
        return None


def compare(baseline: list[float], glore: list[float], noise: float) -> Comparison:
    """Compare the seeds' values of the two networks; see ``Comparison``.

    Raises:
        ValueError: a side has no value, or ``noise`` is negative or not finite.
    """
    if not baseline or not glore:
        raise ValueError(f"compare: need a value per seed for both networks, got {baseline!r} and {glore!r}")
    if not math.isfinite(noise) or noise < 0:
        raise ValueError(f"compare: noise must be a finite number >= 0, got {noise!r}")
    return Comparison(tuple(float(v) for v in baseline), tuple(float(v) for v in glore), float(noise))


def binomial_noise(rate: float, n: int) -> float:
    """Standard deviation of a rate measured on ``n`` independent test items: ``sqrt(p (1 - p) / n)``."""
    p = min(max(float(rate), 0.0), 1.0)
    return math.sqrt(p * (1 - p) / max(int(n), 1))


def _mean(values: tuple[float, ...] | list[float]) -> float:
    return sum(values) / len(values)


def _std(values: tuple[float, ...] | list[float]) -> float:
    """Sample standard deviation (n - 1); 0 for a single value."""
    if len(values) < 2:
        return 0.0
    mean = _mean(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


@dataclass
class DemoSummary:
    """A task's demo: every run, the comparison, and what it cost.

    Attributes:
        demo: the demo.
        metric: the primary metric (``top1``, ``miou``, ``video_top1``).
        test_size: images (or videos) of the test split.
        results: every run, the baseline's seeds first.
        comparison: the primary metric's comparison.
        wall_s: wall time of the whole demo (training, tests, report).
        cpu_s: CPU time (user + system) of this process and its finished children over the demo.
    """

    demo: Demo
    metric: str
    test_size: int
    results: list[DemoResult]
    comparison: Comparison
    wall_s: float
    cpu_s: float


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its waited-for children (data loader workers)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_demo(
    config: Any,
    out_dir: str | Path,
    *,
    demo: Demo | None = None,
    seeds: tuple[int, ...] | list[int] | None = None,
    stream: Any = None,
) -> DemoSummary:
    """Train and evaluate the baseline and the GloRe network of ``demo`` with each seed, write the report.

    Each run goes to ``out_dir/NAME/seedS/`` (NAME: ``baseline``, ``glore``). The data are the same for every
    run (``data.kwargs.seed``); the seed sets the initial weights and the order of the batches.

    Args:
        config: the demo's ``Config``.
        out_dir: where the runs, ``curves.png`` and ``report.md`` go.
        demo: which demo (default the classification one).
        seeds: the ``train.seed`` of each run (default ``demo.seeds``).
        stream: where the table is printed (default stdout).
    """
    from glore.engine.logger import plot_curves, read_csv
    from glore.engine.task import build_task

    demo = demo or DEMOS["classification"]
    seeds = tuple(int(s) for s in (seeds if seeds is not None else demo.seeds))
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds: expected distinct integers, got {list(seeds)}")
    stream = stream if stream is not None else sys.stdout
    wall0, cpu0 = time.perf_counter(), _cpu_seconds()
    task = build_task(config)
    metric = task.primary_metric
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    test_size = _test_size(config)
    results: list[DemoResult] = []
    with warnings.catch_warnings():
        # A recipe may start its units away from the identity (``zero_init: false``; the segmentation demo's head
        # learns its relation much sooner so, docs/experiments.md). The models warn about it because it changes a
        # trained network at once; the demo trains from scratch, so the warning does not apply.
        warnings.filterwarnings("ignore", message=r"glore_args: zero_init=False")
        _train_variants(config, demo, seeds, out_dir, test_size, metric, results, stream)
    base = [r for r in results if r.name == "baseline"]
    glore = [r for r in results if r.name == "glore"]
    # The test set is the same for every run, so its sampling noise does not average out over seeds: the noise of
    # the difference of the means is that of one baseline run against one GloRe run.
    noise = math.sqrt(_mean([r.noise**2 for r in base]) + _mean([r.noise**2 for r in glore]))
    comparison = compare([r.test[f"val_{metric}"] for r in base], [r.test[f"val_{metric}"] for r in glore], noise)
    series = {f"{r.name} seed {r.seed}": read_csv(r.run_dir / "metrics.csv") for r in results}
    plot_curves([], out_dir / "curves.png", series=series, title=f"{demo.name}: baseline vs GloRe", metric=metric)
    metrics = [m for m in task.metrics if f"val_{m}" in results[0].test][:2]
    table = format_table(results, metrics, demo.difference)
    verdict = _verdict(comparison, metric, test_size, demo.unit)
    summary = DemoSummary(
        demo, metric, test_size, results, comparison, time.perf_counter() - wall0, _cpu_seconds() - cpu0
    )
    print("", file=stream)
    print(table, file=stream)
    print("", file=stream)
    print(verdict, file=stream)
    report = write_report(config, demo, summary, table, verdict, out_dir)
    print(
        f"\n{demo.name} demo: {len(results)} runs in {_duration(summary.wall_s)} "
        f"(CPU time {_duration(summary.cpu_s)}, {torch.get_num_threads()} torch threads); wrote {report}",
        file=stream,
        flush=True,
    )
    return summary


def _train_variants(
    config: Any,
    demo: Demo,
    seeds: tuple[int, ...],
    out_dir: Path,
    test_size: int,
    metric: str,
    results: list[DemoResult],
    stream: Any,
) -> None:
    """Train, test and measure each network of ``demo`` with each seed, appending to ``results``."""
    from glore.engine import evaluate, load_model, train
    from glore.engine.logger import read_csv
    from glore.engine.task import build_task

    for name, label, variant in demo.variants(config):
        for seed in seeds:
            run_config = copy.deepcopy(variant)
            run_config.train.seed = seed
            run_config.output.dir = str(out_dir / name / f"seed{seed}")
            print(
                f"== {demo.name} {name} seed {seed}: {variant.model.name}, {demo.difference.lower()} {label} ==",
                file=stream,
                flush=True,
            )
            start = time.perf_counter()
            train(run_config)
            train_time = time.perf_counter() - start
            best = Path(run_config.output.dir) / "best.pt"
            test_config = copy.deepcopy(run_config)
            test_config.data.val_split = TEST_SPLIT
            test = evaluate(test_config, best)
            model = load_model(best)
            sample = build_task(run_config).build_dataset(run_config.data.val_split or TEST_SPLIT, train=False)[0][0]
            rows = read_csv(Path(run_config.output.dir) / "metrics.csv")
            values = [r[f"val_{metric}"] for r in rows if r.get(f"val_{metric}") is not None]
            value = test[f"val_{metric}"]
            noise = demo.noise(test_config, best, value, test_size) if demo.noise else binomial_noise(value, test_size)
            results.append(
                DemoResult(
                    name=name,
                    label=label,
                    seed=seed,
                    run_dir=Path(run_config.output.dir),
                    test=test,
                    val_best=max(values, default=float("nan")),
                    params=sum(p.numel() for p in model.parameters()),
                    macs=count_macs(model, tuple(sample.shape)),
                    train_time_s=train_time,
                    noise=noise,
                )
            )


def _test_size(config: Any) -> int:
    """Images (or videos) of the test split."""
    from glore.engine.task import build_task

    dataset = build_task(config).build_dataset(TEST_SPLIT, train=False)
    return len(dataset) // int(getattr(dataset, "num_views", 1))


def format_table(results: list[DemoResult], metrics: list[str], difference: str = "GloRe units") -> str:
    """The comparison as a markdown table, one row per network: the test values of ``metrics`` as mean ± sample
    standard deviation over seeds, each seed's value of the first, its best validation value (mean), parameters,
    GFLOPs and the training time of all seeds."""
    names = [m.replace("_", " ") for m in metrics]
    lines = [
        f"| model | {difference} | seeds | "
        + " | ".join(f"test {n}" for n in names)
        + f" | test {names[0]} per seed | best val {names[0]} | params | GFLOPs | train time |",
        "|---|---|---|" + "---|" * len(metrics) + "---|---|---|---|---|",
    ]
    for name in dict.fromkeys(r.name for r in results):
        runs = [r for r in results if r.name == name]
        cells = []
        for m in metrics:
            values = [r.test[f"val_{m}"] for r in runs]
            cells.append(f"{_mean(values):.4f} ± {_std(values):.4f}")
        per_seed = ", ".join(f"{r.test[f'val_{metrics[0]}']:.4f}" for r in runs)
        first = runs[0]
        lines.append(
            f"| {name} | {first.label} | {len(runs)} | {' | '.join(cells)} | {per_seed} | "
            f"{_mean([r.val_best for r in runs]):.4f} | {first.params / 1e6:.3f}M | {first.macs / 1e9:.4f} | "
            f"{_duration(sum(r.train_time_s for r in runs))} |"
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


def _verdict(comparison: Comparison, metric: str, n: int, unit: str) -> str:
    """One line on the mean over seeds against the spread over seeds plus the sampling noise."""
    c = comparison
    name = metric.replace("_", " ")
    seeds = f"{len(c.glore)} seed{'s' if len(c.glore) > 1 else ''}"
    numbers = (
        f"mean test {name} over {seeds} {_mean(c.glore):.4f} with GloRe vs {_mean(c.baseline):.4f} without "
        f"(difference {c.difference:+.4f}; spread over seeds {c.spread:.4f}, sampling noise {c.noise:.4f} of {n} "
        f"test {unit})"
    )
    if len(c.glore) < 2 or len(c.baseline) < 2:
        numbers += "; one seed has no spread, so this is one draw"
    if c.winner is None:
        return f"No clear winner: {numbers}: the difference is within the spread plus the noise ({c.margin:.4f})."
    winner = "GloRe" if c.winner == "glore" else "The baseline"
    return f"{winner} wins by more than the spread plus the noise ({c.margin:.4f}): {numbers}."


def cpu_name() -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line() -> str:
    """The CPU, its count of logical CPUs, torch's threads and torch's version, in one line."""
    return (
        f"{cpu_name()}, {os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, {platform.system()}"
    )


def write_report(config: Any, demo: Demo, summary: DemoSummary, table: str, verdict: str, out_dir: Path) -> Path:
    """Write ``out_dir/report.md``: the question, why the baseline cannot answer it, the table, the verdict,
    settings, time, curves and checkpoints."""
    d, m, o, t = config.data, config.model, config.optim, config.train
    results = summary.results
    if o.name == "sgd":
        optimiser = (
            f"SGD lr {o.lr} (momentum {o.momentum}{', Nesterov' if o.nesterov else ''}, weight decay {o.weight_decay})"
        )
    else:
        optimiser = f"AdamW lr {o.lr} (weight decay {o.weight_decay})"
    budget = f"{t.iterations} iterations" if t.iterations is not None else f"{t.epochs} epochs"
    labels = ", ".join(f"{name} `{label}`" for name, label in dict((r.name, r.label) for r in results).items())
    seeds = sorted({r.seed for r in results})
    lines = [
        f"# glore demo ({demo.name}): {demo.title}",
        "",
        f"{demo.question} Both networks are the same `{m.name}` "
        f"({', '.join(f'{k}={v}' for k, v in m.kwargs.items()) or 'default widths'}) but for the "
        f"{demo.difference.lower()}: {labels}.",
        "",
        *([demo.why, ""] if demo.why else []),
        table,
        "",
        verdict,
        "",
        f"Each network is trained with seeds {', '.join(map(str, seeds))} (initial weights and batch order; the data "
        "are the same). Test values are of each run's best checkpoint (chosen on the validation split) on the "
        "held-out test split, as mean ± sample standard deviation over seeds. The sampling noise is the standard "
        "deviation of a difference of two runs' values due to the finite test set (binomial for a rate, a bootstrap "
        "over test images for mIoU). GFLOPs are billions of multiply-adds per input (the paper's convention), "
        "counted by glore's profiler; training time includes the validations.",
        "",
        "## Settings",
        "",
        f"- data: `{d.name}` {dict(d.kwargs)}, train {dict(d.train_kwargs)}, val/test {dict(d.val_kwargs)}",
        f"- {budget}, global batch {d.batch_size}, {optimiser}, {config.schedule.name} schedule with "
        f"{config.schedule.warmup_epochs} warm-up epochs, seeds {', '.join(map(str, seeds))}",
        f"- machine: {machine_line()}",
        f"- time: {len(results)} runs in {_duration(summary.wall_s)} wall, {_duration(summary.cpu_s)} CPU "
        "(user + system)",
        "",
        "## Curves",
        "",
        "![validation and training curves of every run](curves.png)",
        "",
        "## Files",
        "",
    ]
    for r in results:
        folder = f"{r.run_dir.parent.name}/{r.run_dir.name}"
        lines.append(
            f"- {r.name} seed {r.seed}: `{folder}/best.pt`, `{folder}/last.pt`, `{folder}/metrics.csv`, "
            f"`{folder}/curves.png`, TensorBoard events in `{folder}/tb/`"
        )
    lines += ["", f"Reproduce with `glore demo {demo.name}` (`make demo` runs every task's demo)."]
    path = out_dir / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def summary_table(summaries: list[DemoSummary]) -> str:
    """One markdown row per demo: the primary metric's mean ± std over seeds for both networks, the difference of
    the means, the spread plus the sampling noise it is measured against, the verdict and the demo's time."""
    lines = [
        "| task | test metric | seeds | baseline | GloRe | difference | spread + noise | winner | time (wall, CPU) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        c = s.comparison
        winner = {"glore": "GloRe", "baseline": "baseline", None: "none"}[c.winner]
        lines.append(
            f"| {s.demo.name} | {s.metric.replace('_', ' ')} ({s.test_size} {s.demo.unit}) | {len(c.glore)} | "
            f"{_mean(c.baseline):.4f} ± {_std(c.baseline):.4f} | {_mean(c.glore):.4f} ± {_std(c.glore):.4f} | "
            f"{c.difference:+.4f} | {c.spread:.4f} + {c.noise:.4f} | {winner} | "
            f"{_duration(s.wall_s)}, {_duration(s.cpu_s)} |"
        )
    return "\n".join(lines)
