"""``glore demo [TASK...]``: the command over the demos of ``glore.tools.demo`` (classification) and of
``glore.tools.demo_segmentation`` and ``glore.tools.demo_video``, which register themselves when imported here.

The command lives apart from the demos so that imports run one way: the task demos import ``glore.tools.demo``, and
this module imports all three.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import glore.tools.demo_segmentation  # noqa: F401  (registers the segmentation demo)
import glore.tools.demo_video  # noqa: F401  (registers the video demo)
from glore._io import atomic_write_text
from glore.engine.config import add_override_argument
from glore.tools.demo import (
    DEMOS,
    _cpu_seconds,
    _duration,
    find_demo_config,
    machine_line,
    run_demo,
    summary_table,
)

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``glore demo``."""
    parser.add_argument(
        "tasks",
        nargs="*",
        metavar="TASK",
        help=f"which demos to run, in order: {', '.join(DEMOS)} (default: all of them)",
    )
    parser.add_argument("--config", help="the recipe, for a single TASK (default: the task's configs/demo*.yaml)")
    parser.add_argument("--output", default="runs/demo", help="output folder; each task writes OUTPUT/TASK/")
    parser.add_argument(
        "--quick", action="store_true", help="a tiny run of each pipeline, one seed (about a minute for all three)"
    )
    parser.add_argument(
        "--seeds",
        type=_parse_seeds,
        help="comma-separated train.seed of each network's runs (default 0,1,2; with --quick 0)",
    )
    add_override_argument(parser, "override a value of the demo config for every run, e.g. --set train.epochs=3")


def _parse_seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 0,1,2, got {text!r}") from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct seeds, got {text!r}")
    return seeds


def run(args: argparse.Namespace) -> int:
    """Run ``glore demo``; returns the exit status."""
    from glore.engine import ConfigError, NonFiniteLossError, load_config

    names = args.tasks or list(DEMOS)
    unknown = [n for n in names if n not in DEMOS]
    if unknown:
        print(f"glore demo: TASK {unknown[0]!r} is not a demo; expected one of {', '.join(DEMOS)}", file=sys.stderr)
        return 2
    if args.config and len(names) != 1:
        print("glore demo: --config needs exactly one TASK (each task has its own recipe)", file=sys.stderr)
        return 2
    seeds = getattr(args, "seeds", None) or ((0,) if args.quick else None)
    wall0, cpu0 = time.perf_counter(), _cpu_seconds()
    summaries = []
    for name in names:
        demo = DEMOS[name]
        try:
            path = Path(args.config) if args.config else find_demo_config(demo.config)
            overrides = [*(demo.quick if args.quick else ()), *args.overrides]
            config = load_config(path, overrides)
            summaries.append(run_demo(config, Path(args.output) / name, demo=demo, seeds=seeds))
        except (ConfigError, FileNotFoundError, ValueError) as err:
            print(f"glore demo {name}: {err}", file=sys.stderr)
            return 2
        except NonFiniteLossError as err:
            print(f"glore demo {name}: {err}", file=sys.stderr)
            return 1
    table = summary_table(summaries)
    footer = (
        f"{len(summaries)} demo{'s' if len(summaries) > 1 else ''} in {_duration(time.perf_counter() - wall0)} "
        f"wall, {_duration(_cpu_seconds() - cpu0)} CPU; {machine_line()}"
    )
    if args.quick:
        footer += "\n--quick: tiny runs with one seed that check the pipelines; their numbers measure nothing."
    print(f"\n{table}\n\n{footer}", flush=True)
    out = Path(args.output)
    atomic_write_text(out / "summary.md", f"# glore demo{' --quick' if args.quick else ''}\n\n{table}\n\n{footer}\n")
    return 0
