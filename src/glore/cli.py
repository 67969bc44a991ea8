"""The ``glore`` command. Each subcommand lives in its own module, which provides
``add_arguments(parser)`` and ``run(args) -> int``; this file only lists them."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help). A module is imported only when its command runs or help is asked for.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("glore.tools.train", "train a network as a YAML recipe describes (torchrun for several GPUs or nodes)"),
    "eval": ("glore.tools.evaluate", "evaluate a checkpoint on a dataset split"),
    "demo": ("glore.tools.demo", "train a small ResNet with and without GloRe on relational data and compare"),
    "bench": ("glore.tools.bench", "time the GloRe unit against its product orders, NonLocal and a plain matmul"),
    "profile": ("glore.tools.profile", "parameters and GFLOPs per stage, and the paper's ImageNet table beside them"),
    "visualize": (
        "glore.tools.visualize",
        "projection maps, node assignment, adjacency and residual size of GloRe units",
    ),
    "report": ("glore.tools.report", "write report.md of a training run folder"),
    "data": ("glore.tools.data_check", "list the videos of a dataset that cannot be decoded or are too short"),
    "sweep": ("glore.tools.sweep", "train every combination of a grid of settings over seeds and tabulate the results"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; only ``command``'s module is imported when it is given."""
    parser = argparse.ArgumentParser(prog="glore", description="Graph-based Global Reasoning Networks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if command is None or command == name:
            importlib.import_module(module_name).add_arguments(sub_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``glore`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
