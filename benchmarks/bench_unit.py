"""Time the GloRe unit (both product orders) against a Non-local block and a plain matmul.

Same as ``glore bench``; the code lives in glore.tools.bench. Run: ``.venv/bin/python benchmarks/bench_unit.py``.

``--eval-formulas`` times instead the eval-mode forward of one unit computed four ways, in float32 and under
bfloat16 autocast (with a bfloat16 input, as a unit gets it inside a network), all in the same alternating rounds:

- ``unfolded``: the extend product, then the BatchNorm with its running statistics as its own pass over the output,
  then the residual add (the unit's training-mode formula with running statistics);
- ``folded``: the norm folded into the extend weight and one product accumulating into ``X + b`` (the eval path);
- ``folded, in-place``: the same with the in-place ``(X + b).baddbmm_(...)`` the unit used before it became
  correct under autocast (float32 only: under autocast that form fails on mixed dtypes);
- ``fused``: after ``GloRe.fuse()`` (W_g folded into the extend weight as well).

Run: ``.venv/bin/python benchmarks/bench_unit.py --eval-formulas --threads 1 --clock cpu``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import platform
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

import glore.layers.glore as glore_unit
from glore.layers import GloRe
from glore.tools.bench import CLOCKS, SHAPES, _clock, _time_interleaved, add_arguments, run

# The shapes where "auto" takes each order: res3 reassociated, res4 direct.
EVAL_SHAPES = ("res3", "res4")
PRECISIONS: dict[str, torch.dtype | None] = {"float32": None, "bfloat16 autocast": torch.bfloat16}


def _in_place_add_product(
    x_flat: torch.Tensor, addend: torch.Tensor | None, left: torch.Tensor, right: torch.Tensor
) -> torch.Tensor:
    """The unit's former fused add: ``(x + b).baddbmm_(left, right)`` (float32 inputs of one dtype only)."""
    if addend is None:
        # x + (n, C, K) x (n, K, L) -> (n, C, L)
        return torch.baddbmm(x_flat, left, right)
    # x + b is a fresh tensor: accumulate (n, C, K) x (n, K, L) -> (n, C, L) into it in place
    return (x_flat + addend).baddbmm_(left, right)


@contextlib.contextmanager
def _former_add_product() -> Iterator[None]:
    """Run the unit with its former in-place fused add."""
    current = glore_unit._add_product
    glore_unit._add_product = _in_place_add_product
    try:
        yield
    finally:
        glore_unit._add_product = current


def _unfolded(unit: GloRe) -> GloRe:
    """A copy of an eval-mode unit whose norm cannot be folded (the same BatchNorm behind a container), so it runs
    the extend product, the norm's own pass and the residual add one after the other."""
    copied = copy.deepcopy(unit)
    copied.norm = nn.Sequential(copied.norm)
    return copied


def _step(
    unit: GloRe, x: torch.Tensor, amp: torch.dtype | None, context: Callable[[], contextlib.AbstractContextManager]
) -> Callable[[], object]:
    def step() -> object:
        with torch.no_grad(), torch.autocast("cpu", dtype=amp or torch.bfloat16, enabled=amp is not None), context():
            return unit(x)

    return step


def run_eval_formulas(
    shapes: Sequence[str], *, min_run_time: float, rounds: int, statistic: str
) -> list[tuple[str, str, str, float, float]]:
    """Time the four eval-mode formulas of each shape and precision; returns (shape, precision, formula, seconds,
    seconds / folded seconds) rows, seconds being the fastest (or median) block."""
    pick = 0 if statistic == "min" else 1
    rows = []
    for name in shapes:
        shape = SHAPES[name]
        torch.manual_seed(0)
        unit = GloRe(shape[1]).eval()
        with torch.no_grad():  # a trained unit: the norm's statistics and weight away from their initial values
            unit.norm.weight.uniform_(0.5, 1.5)
            unit.norm.bias.normal_()
            unit.norm.running_mean.normal_()
            unit.norm.running_var.uniform_(0.5, 1.5)
        fused = copy.deepcopy(unit).fuse()
        for label, amp in PRECISIONS.items():
            x = torch.randn(shape).to(amp or torch.float32)
            blocks = {
                "unfolded": _step(_unfolded(unit), x, amp, contextlib.nullcontext),
                "folded": _step(unit, x, amp, contextlib.nullcontext),
                "fused": _step(fused, x, amp, contextlib.nullcontext),
            }
            if amp is None:
                blocks["folded, in-place"] = _step(unit, x, amp, _former_add_product)
            with torch.no_grad():  # the formulas compute one function
                expected = blocks["unfolded"]()
                for formula, block in blocks.items():
                    err = ((block().float() - expected.float()).abs().max() / expected.float().abs().max()).item()
                    assert err < (1e-5 if amp is None else 3e-2), f"{name} {label} {formula}: rel. error {err:.2e}"
            times = _time_interleaved(list(blocks.values()), min_run_time, rounds)
            folded = times[list(blocks).index("folded")][pick]
            for formula, timing in zip(blocks, times, strict=True):
                rows.append((name, label, formula, timing[pick], timing[pick] / folded))
                print(f"  {name} {label:17s} {formula:16s} {timing[pick] * 1e3:8.1f} ms  {timing[pick] / folded:.2f}")
    return rows


def format_eval_formulas(rows: Sequence[tuple[str, str, str, float, float]]) -> str:
    """A markdown table of :func:`run_eval_formulas` rows."""
    lines = [
        "| shape | order | precision | formula | time (ms) | time / folded |",
        "|---|---|---|---|---:|---:|",
    ]
    for name, label, formula, seconds, ratio in rows:
        order = GloRe(SHAPES[name][1]).resolve_order(SHAPES[name])
        lines.append(f"| {name} {SHAPES[name]} | {order} | {label} | {formula} | {seconds * 1e3:.1f} | {ratio:.2f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the unit benchmark, or with ``--eval-formulas`` the eval-formula comparison."""
    parser = argparse.ArgumentParser(prog="bench_unit", description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument(
        "--eval-formulas",
        action="store_true",
        help="time the eval-mode formulas (unfolded, folded, former in-place, fused) in float32 and bf16 autocast "
        f"on {', '.join(EVAL_SHAPES)} (or --shapes)",
    )
    args = parser.parse_args(argv)
    if not args.eval_formulas:
        return run(args)
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f"--threads must be a positive integer, got {args.threads}")
        torch.set_num_threads(args.threads)
    _clock[0] = CLOCKS[args.clock]
    shapes = args.shapes if args.shapes != list(SHAPES) else list(EVAL_SHAPES)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
        f"min_run_time {args.min_run_time} s, {args.rounds} rounds, statistic {args.statistic}, {args.clock} clock"
    )
    rows = run_eval_formulas(shapes, min_run_time=args.min_run_time, rounds=args.rounds, statistic=args.statistic)
    print()
    print(format_eval_formulas(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
