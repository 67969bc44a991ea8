"""The ``glore`` command. Each subcommand lives in its own module, which provides
``add_arguments(parser)`` and ``run(args) -> int``; this file lists them and turns users' mistakes into answers.

A user error (a bad config, data layout, checkpoint or argument: ``ConfigError``, ``CheckpointError``,
``ValueError``, ``TypeError``, ``OSError`` ...) prints one line ``glore COMMAND: message`` and exits 2; ``--debug``
(or ``GLORE_DEBUG=1``) shows the traceback instead. Ctrl-C exits 130; during ``glore train`` it prints the command that
continues the run (checkpoints are written atomically, so nothing is left half-written), or says that no checkpoint
was written yet. SIGTERM or SIGUSR1 during ``glore train`` stop it after a whole checkpoint of the step reached;
it prints the command that continues the run and exits 128 + the signal (143, 138). SIGXFSZ is ignored, so a
write past the file-size limit (``ulimit -f``) fails with a message naming the file instead of killing glore.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import shlex
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

# name -> (module, one-line help). A module is imported only when its command runs or help is asked for.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("glore.tools.train", "train a network as a YAML recipe describes (torchrun for several GPUs or nodes)"),
    "eval": ("glore.tools.evaluate", "evaluate a checkpoint on a dataset split"),
    "predict": ("glore.tools.predict", "classes of images or videos, or segmentation masks, from a trained network"),
    "demo": ("glore.tools.demo_cli", "train a small ResNet with and without GloRe on relational data and compare"),
    "bench": ("glore.tools.bench", "time the GloRe unit against its product orders, NonLocal and a plain matmul"),
    "profile": ("glore.tools.profile", "parameters and GFLOPs per stage, and the paper's ImageNet table beside them"),
    "visualize": (
        "glore.tools.visualize",
        "projection maps, node assignment, adjacency and residual size of GloRe units",
    ),
    "report": ("glore.tools.report", "write report.md of a training run folder"),
    "data": ("glore.tools.data_check", "list the videos of a dataset that cannot be decoded or are too short"),
    "sweep": ("glore.tools.sweep", "train every combination of a grid of settings over seeds and tabulate the results"),
    "convert": (
        "glore.tools.convert",
        "convert released GloRe weights (PaddleSeg .pdparams, MindSpore .ckpt) to a glore .safetensors file",
    ),
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


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the input was wrong (shown as one line), not that glore has a bug."""
    import yaml

    from glore.engine import CheckpointError, ConfigError

    return (ConfigError, CheckpointError, ValueError, TypeError, OSError, KeyError, yaml.YAMLError)


def file_in_the_way(path: str | os.PathLike[str]) -> Path | None:
    """The regular file among ``path`` and its parents, which stops ``path`` from being (or lying in) a folder."""
    for parent in (Path(path), *Path(path).parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def output_folder(path: str | os.PathLike[str], argument: str) -> Path:
    """``path`` as a ``Path`` if it is, or can become, a folder; else a ValueError naming ``argument`` and the file.

    Raises:
        ValueError: ``path`` is a regular file or lies inside one (``--out run/last.pt/maps``).
    """
    blocker = file_in_the_way(path)
    if blocker is not None:
        where = "is a file" if blocker == Path(path) else f"lies inside {str(blocker)!r}, which is a file"
        raise ValueError(f"{argument}: {str(path)!r} {where}; expected a folder")
    return Path(path)


def _one_line(error: BaseException) -> str:
    """The message of ``error`` on one line, with the file for OS errors."""
    blocker = None
    if isinstance(error, OSError) and error.errno in (errno.ENOTDIR, errno.EEXIST) and error.filename is not None:
        blocker = file_in_the_way(error.filename)
    if blocker is not None:
        text = f"cannot write {str(error.filename)!r}: {str(blocker)!r} is a file, not a folder"
    elif isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.strerror}: {error.filename}"
    else:
        text = str(error) or type(error).__name__
    if isinstance(error, KeyError):
        text = f"missing key {text}"
    return " ".join(text.split())


def _resume_hint(argv: Sequence[str], *, resume: bool = True) -> str:
    """The ``glore train`` command that continues an interrupted run (``resume=False``: that starts it again)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--resume-from":
            skip = True  # the run's own last.pt continues it, not the checkpoint it started from
        elif arg not in ("--resume", "--overwrite", "--debug") and not arg.startswith("--resume-from="):
            kept.append(arg)
    return shlex.join(["glore", *kept, *(["--resume"] if resume else [])])


def _train_hint(argv: Sequence[str], checkpoint: object) -> str:
    """How to go on after ``glore train`` stopped: continue from ``checkpoint``, or start again without one."""
    torchrun = " (under the same torchrun command)" if "RANK" in os.environ else ""
    if checkpoint is None:
        return f"no checkpoint was written yet; start again with: {_resume_hint(argv, resume=False)}{torchrun}"
    return f"continue with: {_resume_hint(argv)}{torchrun}"


def _warning_line(message: Warning | str, category: type[Warning], filename: str, lineno: int, line=None) -> str:  # noqa: ANN001
    """A warning as one line ``glore: warning: ...`` (Python's default adds the source file, line and code)."""
    return "glore: warning: " + " ".join(str(message).split()) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``glore`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("GLORE_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    if argv[:1] == ["--version"]:
        from glore import __version__

        print(f"glore {__version__}")
        return 0
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    parser.add_argument("--version", action="store_true", help="print glore's version and exit")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors (also GLORE_DEBUG=1)")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    formatwarning = warnings.formatwarning
    if not debug:
        warnings.formatwarning = _warning_line
    if hasattr(signal, "SIGXFSZ"):  # past `ulimit -f` a write then fails (and is reported) instead of killing glore
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    stopped: tuple[type[BaseException], ...] = ()
    if args.command in ("train", "demo", "sweep"):  # the commands that train (only they import the engine here)
        from glore.engine.trainer import TrainingStopped

        stopped = (TrainingStopped,)
    try:
        module = importlib.import_module(COMMANDS[args.command][0])
        return int(module.run(args) or 0)
    except stopped as stop:
        if int(os.environ.get("RANK", "0")) == 0:
            hint = f"; {_train_hint(argv, stop.checkpoint)}" if args.command == "train" else ""
            print(f"glore {args.command}: {stop}{hint}", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt as stop:
        if int(os.environ.get("RANK", "0")) != 0:
            return 130  # rank 0 says it once
        hint = ""
        if args.command == "train":
            checkpoint = getattr(stop, "glore_checkpoint", "unknown")
            hint = f"; {_train_hint(argv, checkpoint)}"
            hint += " (the last checkpoint is whole)" if checkpoint is not None else ""
        print(f"\nglore {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
    except SystemExit as stop:
        if isinstance(stop.code, str):  # a command's own one-line refusal
            message = stop.code if stop.code.startswith("glore ") else f"glore {args.command}: {stop.code}"
            print(message, file=sys.stderr)
            return 2
        raise
    except _user_errors() as error:
        if debug:
            raise
        hint = ""
        checkpoint = getattr(error, "glore_checkpoint", None)
        if args.command == "train" and checkpoint is not None:  # a failed write: the run goes on once it is fixed
            hint = f"; once that is fixed, {_train_hint(argv, checkpoint)}"
        print(f"glore {args.command}: {_one_line(error)}{hint} (--debug shows the traceback)", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = formatwarning


if __name__ == "__main__":
    raise SystemExit(main())
