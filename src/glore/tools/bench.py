"""``glore bench``: time the GloRe unit in both product orders against a Non-local block and a plain matmul.

Configurations that are compared are timed with :mod:`torch.utils.benchmark` in alternating rounds, and every
comparison is a ratio of two times taken in the same run, so the numbers say how the unit runs relative to this
machine's matrix products rather than how fast the machine is. Definitions (also in docs/benchmarks.md):

- time: by default the fastest per-run time over all timed blocks (``--statistic min``): on a machine shared
  with other processes the fastest block is the one least disturbed by them; ``--statistic median`` reports
  the median block instead. Both are printed.

- MACs: multiply-adds of the block's matrix products for the whole batch (GloRe: :meth:`GloRe.macs` of the
  order used; NonLocal: :func:`non_local_macs`). Training (forward + backward) counts 3x the forward MACs: each
  product's backward is two products of the same size (the gradients of both operands).
- GMAC/s: MACs / time / 1e9 (billions of multiply-adds per second; the paper's "GFLOPs" are MACs).
- matmul rate: GMAC/s of one float32 ``(C x C) @ (C x n*L)`` matmul timed in the same run, the 1x1 convolution
  of the unit's width over the whole batch. ``vs matmul`` = the block's GMAC/s / that rate.
"""

from __future__ import annotations

import argparse
import copy
import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils import benchmark

from glore.layers import GloRe, NonLocal

__all__ = ["SHAPES", "TARGETS", "Result", "non_local_macs", "run_benchmark", "add_arguments", "run", "main"]

# name -> (n, C, *spatial); default nodes C/4 and state C/2.
SHAPES: dict[str, tuple[int, ...]] = {
    "res4": (8, 1024, 14, 14),
    "res3": (8, 512, 28, 28),
    "seg": (2, 1024, 64, 128),  # output stride 8 on a 512x1024 crop
    "video": (2, 1024, 4, 14, 14),
}

# The unit's speed targets: shape -> minimum speed-up of "auto" over "direct" in (eval, train).
TARGETS: dict[str, tuple[float, float]] = {"res3": (1.5, 1.3), "seg": (1.7, 1.4), "res4": (0.95, 0.95)}
# Minimum fraction of the plain-matmul rate the unit (order "auto") reaches, per mode.
RATE_TARGETS: dict[str, float] = {"eval": 0.70, "train": 0.50}
# NonLocal joins the interleaved rounds unless its MACs exceed this multiple of GloRe direct's (the segmentation
# shape, where one call takes seconds): then it is timed alone, in one blocked_autorange of min_run_time.
NONLOCAL_INTERLEAVE_LIMIT = 4.0


@dataclass
class Result:
    """One timed configuration."""

    shape: str
    mode: str  # "eval" (forward, no grad) or "train" (forward + backward)
    block: str
    seconds: float | None  # the chosen statistic (min or median) per run; None when skipped
    macs: int
    matmul_rate: float  # GMAC/s of the reference matmul of this shape
    note: str = ""
    median: float | None = None  # median seconds per run

    @property
    def gmacs_per_s(self) -> float | None:
        return None if self.seconds is None else self.macs / self.seconds / 1e9

    @property
    def vs_matmul(self) -> float | None:
        rate = self.gmacs_per_s
        return None if rate is None else rate / self.matmul_rate


def non_local_macs(input_shape: Sequence[int], inter_channels: int, *, subsample: bool = False) -> int:
    """Multiply-adds of one embedded-Gaussian :class:`NonLocal` block's products, for the whole batch.

    theta (i x C over L), phi and g (i x C over L'), the attention logits and their weighted sum (L x L' x i
    each) and the output conv (C x i over L); the softmax, norm and residual add are elementwise and left out.

    Args:
        input_shape: (n, C, *spatial).
        inter_channels: i, the embedding width.
        subsample: phi and g see a context pooled by 2 over height and width (over the one dim of a sequence).
    """
    n, c, *spatial = (int(s) for s in input_shape)
    length = math.prod(spatial)
    if subsample:
        pooled = list(spatial)
        for d in range(max(0, len(pooled) - 2), len(pooled)):
            pooled[d] = -(-pooled[d] // 2)
        context = math.prod(pooled)
    else:
        context = length
    i = inter_channels
    per_sample = i * c * length + 2 * i * c * context + 2 * length * context * i + c * i * length
    return n * per_sample


def _stats(measurement: benchmark.Measurement) -> tuple[float, float]:
    """(fastest, median) seconds per run over the measurement's blocks."""
    return min(measurement.times), measurement.median


# Clocks for --clock: wall-clock time, or the CPU time of this process (with --threads 1: the time the work
# itself takes, whatever other processes do with the other cores; with more threads it counts OpenMP spin-waits).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
_clock: list[Callable[[], float]] = [CLOCKS["wall"]]


def _timer(fn: Callable[[], object]) -> benchmark.Timer:
    return benchmark.Timer(stmt="fn()", globals={"fn": fn}, timer=_clock[0])


def _time(fn: Callable[[], object], min_run_time: float) -> tuple[float, float]:
    """(fastest, median) seconds per run of ``fn`` over blocks of at least ``min_run_time`` in all.

    The first call (``blocked_autorange``'s estimate of the block size) is not among the timed blocks.
    """
    timer = _timer(fn)
    return _stats(timer.blocked_autorange(min_run_time=min_run_time))


def _time_interleaved(
    fns: Sequence[Callable[[], object]], min_run_time: float, rounds: int = 3
) -> list[tuple[float, float]]:
    """(fastest, median) seconds per run of each of ``fns``, timed in alternating rounds so that load from
    other processes on a shared machine falls on all of them alike; each round starts with a different one."""
    timers = [_timer(fn) for fn in fns]
    measured: list[list[benchmark.Measurement]] = [[] for _ in fns]
    for r in range(rounds):
        for i in range(len(fns)):
            k = (i + r) % len(fns)
            measured[k].append(timers[k].blocked_autorange(min_run_time=min_run_time / rounds))
    return [_stats(benchmark.Measurement.merge(m)[0]) for m in measured]


def _eval_step(module: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    def step() -> object:
        with torch.no_grad():
            return module(x)

    return step


def _train_step(module: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    x = x.detach().requires_grad_()  # a unit inside a network passes a gradient back to its input
    grad = torch.randn_like(x)

    def step() -> object:
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x).backward(grad)
        return None

    return step


def _matmul_step(shape: Sequence[int]) -> tuple[Callable[[], object], int]:
    """The reference product of ``shape`` and its multiply-adds: (C, C) x (C, n*L) -> (C, n*L), float32."""
    n, c = shape[:2]
    columns = n * math.prod(shape[2:])
    weight, act = torch.randn(c, c), torch.randn(c, columns)
    return (lambda: torch.mm(weight, act)), c * c * columns


def run_benchmark(
    shapes: Sequence[str] = tuple(SHAPES),
    *,
    min_run_time: float = 0.5,
    nonlocal_blocks: bool = True,
    fuse_shape: str | None = "res4",
    statistic: str = "min",
    rounds: int = 4,
    clock: str = "wall",
    log: Callable[[str], None] = print,
) -> list[Result]:
    """Time GloRe (auto, direct), NonLocal and the fused unit on ``shapes``; returns one Result per timing.

    Args:
        shapes: names from :data:`SHAPES`.
        min_run_time: seconds of timed runs per configuration (at least one run is timed).
        nonlocal_blocks: also time the Non-local block.
        fuse_shape: the shape at which a fused unit is timed against the unfused one in eval mode (None: skip).
        statistic: ``"min"`` (fastest block) or ``"median"``: which time the results and ratios use.
        rounds: how many alternating rounds share ``min_run_time`` for blocks that are compared.
        clock: ``"wall"`` (elapsed time) or ``"cpu"`` (CPU time of this process; use it with one thread).
        log: called with a progress line per configuration.
    """
    if statistic not in ("min", "median"):
        raise ValueError(f"statistic must be 'min' or 'median', got {statistic!r}")
    pick = 0 if statistic == "min" else 1
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {tuple(CLOCKS)}, got {clock!r}")
    _clock[0] = CLOCKS[clock]
    results: list[Result] = []
    for name in shapes:
        shape = SHAPES[name]
        channels = shape[1]
        torch.manual_seed(0)
        x = torch.randn(shape)
        matmul, matmul_macs = _matmul_step(shape)
        log(f"{name} {shape}")
        for mode in ("eval", "train"):
            factor = 3 if mode == "train" else 1
            make_step = _eval_step if mode == "eval" else _train_step
            units = {order: GloRe(channels, order=order).train(mode == "train") for order in ("auto", "direct")}
            blocks: dict[str, nn.Module] = {f"GloRe {order}": unit for order, unit in units.items()}
            macs = {label: factor * unit.macs(shape)[unit.resolve_order(shape)] for label, unit in blocks.items()}
            notes = {label: f"order {unit.resolve_order(shape)}" for label, unit in blocks.items()}
            alone = None
            if nonlocal_blocks:
                block = NonLocal(channels).train(mode == "train")
                macs["NonLocal"] = factor * non_local_macs(shape, block.inter_channels)
                # Interleaved with the others unless it is so slow that the rounds would dominate the run.
                if macs["NonLocal"] <= NONLOCAL_INTERLEAVE_LIMIT * macs["GloRe direct"]:
                    blocks["NonLocal"], notes["NonLocal"] = block, ""
                else:
                    alone, notes["NonLocal"] = block, "timed alone"
            # The reference matmul is timed in the same rounds as the blocks it is compared with.
            steps = [matmul] + [make_step(module, x) for module in blocks.values()]
            matmul_time, *times = _time_interleaved(steps, min_run_time, rounds)
            rate = matmul_macs / matmul_time[pick] / 1e9
            log(f"  {mode:5s} plain matmul: {rate:.1f} GMAC/s")
            timings: dict[str, tuple[float | None, float | None]] = dict(zip(blocks, times, strict=True))
            if alone is not None:
                try:
                    timings["NonLocal"] = _time(make_step(alone, x), min_run_time)
                except (RuntimeError, MemoryError) as error:  # out of memory on a large map
                    timings["NonLocal"] = (None, None)
                    notes["NonLocal"] = f"skipped: {str(error).splitlines()[0][:80]}"
            for label, timing in timings.items():
                seconds = timing[pick]
                results.append(Result(name, mode, label, seconds, macs[label], rate, notes[label], timing[1]))
                shown = notes[label] if seconds is None else f"{seconds * 1e3:.1f} ms {notes[label]}"
                log(f"  {mode:5s} {label}: {shown}")
            del make_step
        if name == fuse_shape:
            unit = GloRe(channels).eval()
            fused = copy.deepcopy(unit).fuse()
            pairs = (("GloRe auto, unfused", unit), ("GloRe auto, fused", fused))
            steps = [matmul] + [_eval_step(module, x) for _, module in pairs]
            matmul_time, *times = _time_interleaved(steps, min_run_time, rounds)
            rate = matmul_macs / matmul_time[pick] / 1e9
            for (label, module), timing in zip(pairs, times, strict=True):
                used = module.resolve_order(shape)
                macs = module.macs(shape)[used]
                results.append(Result(name, "eval", label, timing[pick], macs, rate, f"order {used}", timing[1]))
                log(f"  eval  {label}: {timing[pick] * 1e3:.1f} ms")
    return results


def _find(results: Sequence[Result], shape: str, mode: str, block: str) -> Result | None:
    return next((r for r in results if (r.shape, r.mode, r.block) == (shape, mode, block)), None)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _speedup(slow: Result | None, fast: Result | None) -> float | None:
    if slow is None or fast is None or slow.seconds is None or fast.seconds is None:
        return None
    return slow.seconds / fast.seconds


def format_report(results: Sequence[Result]) -> str:
    """Markdown tables: every timing, the ratios per shape, and each speed target with met/missed."""
    lines = [
        "| shape | mode | block | time (ms) | median (ms) | GMACs | GMAC/s | vs matmul | note |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        time_ms = None if r.seconds is None else r.seconds * 1e3
        median_ms = None if r.median is None else r.median * 1e3
        lines.append(
            f"| {r.shape} {SHAPES[r.shape]} | {r.mode} | {r.block} | {_fmt(time_ms, '.1f')} | {_fmt(median_ms, '.1f')} "
            f"| {r.macs / 1e9:.2f} "
            f"| {_fmt(r.gmacs_per_s, '.1f')} | {_fmt(r.vs_matmul, '.2f')} | {r.note} |"
        )
    shapes = list(dict.fromkeys(r.shape for r in results))
    lines += [
        "",
        "| shape | matmul GMAC/s (eval) | auto/direct eval | auto/direct train "
        "| NonLocal/GloRe eval | NonLocal/GloRe train |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in shapes:
        cells = []
        for mode in ("eval", "train"):
            cells.append(_speedup(_find(results, name, mode, "GloRe direct"), _find(results, name, mode, "GloRe auto")))
        for mode in ("eval", "train"):
            cells.append(_speedup(_find(results, name, mode, "NonLocal"), _find(results, name, mode, "GloRe auto")))
        rate = next(r.matmul_rate for r in results if r.shape == name and r.mode == "eval")
        lines.append(
            f"| {name} | {rate:.1f} | " + " | ".join(_fmt(c, ".2f") + "x" * (c is not None) for c in cells) + " |"
        )
    fused = _speedup(
        _find(results, "res4", "eval", "GloRe auto, unfused"), _find(results, "res4", "eval", "GloRe auto, fused")
    )
    if fused is not None:
        lines += ["", f"Fused vs unfused unit, res4 eval: {fused:.2f}x faster."]
    lines += ["", "| target | measured | met |", "|---|---:|---|"]
    for name in shapes:
        for mode, index in (("eval", 0), ("train", 1)):
            if name in TARGETS:
                ratio = _speedup(_find(results, name, mode, "GloRe direct"), _find(results, name, mode, "GloRe auto"))
                goal = TARGETS[name][index]
                if name == "res4":
                    text = f"{name} {mode}: auto not slower than direct (>= {goal}x)"
                else:
                    text = f"{name} {mode}: auto faster than direct by >= {goal}x"
                lines.append(_target_line(text, ratio, goal, "x"))
            ratio = _speedup(_find(results, name, mode, "NonLocal"), _find(results, name, mode, "GloRe auto"))
            lines.append(_target_line(f"{name} {mode}: GloRe faster than NonLocal", ratio, 1.0, "x", strict=True))
            auto = _find(results, name, mode, "GloRe auto")
            share = None if auto is None else auto.vs_matmul
            goal = RATE_TARGETS[mode]
            lines.append(_target_line(f"{name} {mode}: unit >= {goal:.0%} of the matmul rate", share, goal, ""))
    return "\n".join(lines)


def _target_line(text: str, value: float | None, goal: float, unit: str, *, strict: bool = False) -> str:
    if value is None:
        return f"| {text} | - | not measured |"
    met = value > goal if strict else value >= goal
    return f"| {text} | {value:.2f}{unit} | {'yes' if met else 'NO'} |"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options to ``parser``."""
    parser.add_argument(
        "--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES), help="shapes to time (default: all)"
    )
    parser.add_argument(
        "--min-run-time", type=float, default=0.5, help="seconds of timed runs per configuration (default 0.5)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--no-nonlocal", action="store_true", help="do not time the Non-local block")
    parser.add_argument(
        "--statistic",
        choices=("min", "median"),
        default="min",
        help="time reported and used in ratios: the fastest timed block (default) or the median block",
    )
    parser.add_argument(
        "--clock",
        choices=tuple(CLOCKS),
        default="wall",
        help="wall: elapsed time (default); cpu: CPU time of the process, robust to other load with --threads 1",
    )
    parser.add_argument(
        "--rounds", type=int, default=4, help="alternating rounds for blocks that are compared (default 4)"
    )


def run(args: argparse.Namespace) -> int:
    """Run the benchmark with parsed ``args`` and print the report; returns the exit status."""
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f"--threads must be a positive integer, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.rounds < 1:
        raise SystemExit(f"--rounds must be a positive integer, got {args.rounds}")
    if args.min_run_time <= 0:
        raise SystemExit(f"--min-run-time must be positive, got {args.min_run_time}")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
        f"float32, min_run_time {args.min_run_time} s, {args.rounds} rounds, statistic {args.statistic}, "
        f"{args.clock} clock"
    )
    results = run_benchmark(
        args.shapes,
        min_run_time=args.min_run_time,
        nonlocal_blocks=not args.no_nonlocal,
        statistic=args.statistic,
        rounds=args.rounds,
        clock=args.clock,
    )
    print()
    print(format_report(results))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run: the entry point of benchmarks/bench_unit.py."""
    parser = argparse.ArgumentParser(prog="bench_unit", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
