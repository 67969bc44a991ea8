"""``glore train CONFIG [--set KEY=VALUE ...] [--resume | --resume-from CHECKPOINT]``: train as a YAML recipe describes.

Under ``torchrun --nproc_per_node=N -m glore train CONFIG`` every process runs this; rank 0 prints and writes.
Exit status: 0 when training finished, 1 when the loss became NaN or infinite (the last good checkpoint is
kept), 2 for a configuration error, a folder in use by another run or a failed write (no space, the file-size
limit, permission), 130 after Ctrl-C, and 128 + the signal after SIGTERM (143) or SIGUSR1 (138), which stop
training gracefully: every process finishes its step and a whole checkpoint of that step is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from glore.engine.config import add_override_argument

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``glore train``."""
    parser.add_argument("config", help="YAML recipe, e.g. configs/cub200_resnet18_glore.yaml")
    add_override_argument(
        parser, "override a config value (YAML syntax), e.g. --set optim.lr=0.1 --set model.glore=res4:1"
    )
    parser.add_argument("--resume", action="store_true", help="continue exactly from output.dir/last.pt")
    parser.add_argument("--resume-from", metavar="CHECKPOINT", help="continue exactly from this checkpoint")
    parser.add_argument(
        "--allow-changes",
        action="store_true",
        help="resume although the config changes what the checkpoint was trained with (data, model, optimiser, "
        "schedule, seed ...); the run is then no longer an exact continuation. A longer schedule (train.epochs or "
        "train.iterations raised) needs no flag",
    )
    parser.add_argument("--output", metavar="DIR", help="run folder (same as --set output.dir=DIR)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh in a folder that holds a run: its checkpoints, tables, TensorBoard events and report are "
        "deleted first (without it, glore train refuses such a folder)",
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")


# What a run writes into its folder: what --overwrite removes, and what makes a folder "hold a run".
RUN_FILES = (
    "last.pt",
    "previous.pt",
    "best.pt",
    "metrics.csv",
    "steps.csv",
    "config.yaml",
    "curves.png",
    "report.md",
)
RUN_FOLDERS = ("tb", "report", "visualize")
# The checkpoints --resume continues from.
RESUMABLE = ("last.pt", "previous.pt")


def resumable_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint ``--resume`` would start from in ``run_dir`` (``last.pt``, else ``previous.pt``), if any."""
    return next((Path(run_dir) / n for n in RESUMABLE if (Path(run_dir) / n).is_file()), None)


def check_run_folder(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to train into a folder that holds a run unless resuming it or told to overwrite it; with
    ``overwrite``, delete the old run's files (rank 0 only) so that nothing of it mixes with the new one.

    A folder whose run stopped before its first checkpoint holds nothing to continue: training starts afresh
    there, after deleting what that run wrote.

    Raises:
        ValueError: ``run_dir`` is a file, lies inside a file, or holds a run and neither flag was given.
    """
    import os
    import shutil

    for parent in (run_dir, *run_dir.parents):
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"--output/output.dir: {str(run_dir)!r} lies inside {str(parent)!r}, which is a file")
    held = [name for name in RUN_FILES if (run_dir / name).exists()] + [
        name for name in RUN_FOLDERS if (run_dir / name).exists()
    ]
    if not held or resume:
        return
    checkpoints = [name for name in held if name.endswith(".pt")]
    main_process = int(os.environ.get("RANK", "0")) == 0
    if checkpoints and not overwrite:
        how = (
            "continue it with --resume"
            if resumable_checkpoint(run_dir) is not None
            else f"continue from its best.pt with --resume-from {str(run_dir / 'best.pt')!r}"
        )
        raise ValueError(
            f"output.dir: {str(run_dir)!r} already holds a run ({', '.join(held[:3])}); {how}, "
            "start afresh there with --overwrite (deletes it), or choose another --output"
        )
    if not checkpoints and main_process:
        print(
            f"glore train: {str(run_dir)!r} holds a run that stopped before its first checkpoint "
            f"({', '.join(held[:3])}): nothing to continue, starting afresh there"
        )
    if main_process:
        for name in held:
            path = run_dir / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def write_report_quietly(run_dir: str) -> None:
    """Write ``report.md`` of a finished run; a failure to draw it is reported, never fatal to the run."""
    from glore.tools.report import write_run_report

    try:
        path = write_run_report(run_dir)
    except Exception as error:  # noqa: BLE001 - the trained checkpoint matters more than its report
        print(f"report.md not written: {type(error).__name__}: {error}", file=sys.stderr)
    else:
        print(f"report: {path}")


def run(args: argparse.Namespace) -> int:
    """Run ``glore train``; returns the exit status."""
    import contextlib
    import os

    from glore._io import WriteError, lock_run_folder
    from glore.engine import NonFiniteLossError, load_config, train
    from glore.engine.distributed import cleanup_distributed, is_main_process

    overrides = list(args.overrides)
    if args.output:
        overrides.append(f"output.dir={args.output}")
    try:
        config = load_config(args.config, overrides)
    except FileNotFoundError as err:
        print(f"glore train: {err}", file=sys.stderr)
        return 2
    if args.print_config:
        import yaml

        from glore.engine import config_to_dict

        print(yaml.safe_dump(config_to_dict(config), sort_keys=False), end="")
        return 0
    if args.resume and args.overwrite:
        print("glore train: --resume and --overwrite contradict each other; give one", file=sys.stderr)
        return 2
    run_dir = Path(config.output.dir)
    check_run_folder(run_dir, resume=True, overwrite=False)  # a file in the way, before the lock makes the folder
    with contextlib.ExitStack() as stack:
        if int(os.environ.get("RANK", "0")) == 0:  # the lock is held before --overwrite deletes anything
            stack.enter_context(lock_run_folder(run_dir))
        check_run_folder(run_dir, resume=bool(args.resume or args.resume_from), overwrite=args.overwrite)
        try:
            metrics = train(config, resume=args.resume_from or args.resume, allow_changes=args.allow_changes)
        except NonFiniteLossError as err:
            if is_main_process():
                print(f"glore train: {err}", file=sys.stderr)
            return 1
        except (KeyboardInterrupt, WriteError) as stop:
            stop.glore_checkpoint = resumable_checkpoint(run_dir)  # what the command-line's answer advises
            raise
        finally:
            main_process = is_main_process()  # asked before the group is gone
            cleanup_distributed()
        if main_process and config.output.report:
            write_report_quietly(config.output.dir)
    if metrics and main_process:
        shown = ", ".join(
            f"{k} {v:.4f}" for k, v in metrics.items() if k.startswith("val_") and k not in ("val_count", "val_skipped")
        )
        print(f"done: {config.output.dir} ({shown})")
    return 0
