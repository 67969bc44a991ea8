"""Continuing a run from its checkpoint: which checkpoint (``last.pt``, else ``previous.pt``), whether the config
may continue it (``RESUME_FREE_KEYS``, a longer schedule, ``--allow-changes``), loading the weights with an error that
names the mismatch, and repairing a ``best.pt`` that a kill left unwritten.

The ``Trainer`` restores its own state (optimiser, schedule, generators, position in the epoch) from what these
functions return.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import Config, ConfigError, config_to_dict

__all__ = [
    "RESUME_FREE_KEYS",
    "RESUME_LONGER_KEYS",
    "check_config_changes",
    "load_weights",
    "read_resume_checkpoint",
    "repair_best",
]

# Config keys that a resumed run may change without a word in the result: where the data lies, how it is loaded,
# what is shown and written where.
RESUME_FREE_KEYS = (
    "data.root",
    "data.num_workers",
    "train.progress",
    "train.log_every",
    "train.checkpoint_every_iters",
    "train.checkpoint_every_minutes",
    "output.dir",
    "output.tensorboard",
    "output.plots",
    "output.report",
)
# Keys a resumed run may raise: a longer schedule (its learning-rate schedule is stretched to the new length).
RESUME_LONGER_KEYS = ("train.epochs", "train.iterations")


def read_resume_checkpoint(
    resume: bool | str | Path, run_dir: Path, device: torch.device | str
) -> tuple[Path, dict[str, Any], str | None]:
    """The checkpoint to resume from: ``resume``'s path, or ``run_dir/last.pt``, falling back to ``previous.pt``
    when ``last.pt`` is missing or corrupt.

    Returns:
        ``(path, state, fallback)``: ``fallback`` is the line that says why ``previous.pt`` was taken (``last.pt``
        is then bad: the next checkpoint must not keep it as ``previous.pt``), else ``None``.

    Raises:
        FileNotFoundError: no checkpoint to resume from.
        CheckpointError: none that can be read whole.
    """
    if not isinstance(resume, bool):
        path = Path(resume)
        if not path.is_file():
            raise FileNotFoundError(f"resume: no checkpoint at {str(path)!r} to resume from")
        return path, load_checkpoint(path, map_location=device), None
    problems: list[str] = []
    for name in ("last.pt", "previous.pt"):
        path = run_dir / name
        if not path.is_file():
            problems.append(f"{name} is missing")
            continue
        try:
            state = load_checkpoint(path, map_location=device)
        except CheckpointError as error:
            problems.append(str(error))
            continue
        fallback = f"resume: {problems[0]}; falling back to the previous checkpoint {str(path)!r}" if problems else None
        return path, state, fallback
    if all(p.endswith("is missing") for p in problems):
        raise FileNotFoundError(
            f"resume: no checkpoint in {str(run_dir)!r} to resume from (no last.pt or previous.pt); "
            "start the run with the same command without --resume"
        )
    raise CheckpointError(
        f"resume: no whole checkpoint in {str(run_dir)!r} ({'; '.join(problems)}); start afresh with "
        "--overwrite or continue from another checkpoint with --resume-from"
    )


def _flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as ``{"a.b.c": value}``."""
    if not isinstance(values, dict) or (prefix and not values):
        return {prefix: values}
    out: dict[str, Any] = {}
    for key, value in values.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def check_config_changes(saved: dict[str, Any], config: Config, path: Path, *, allow_changes: bool) -> list[str]:
    """The keys ``config`` changes against the checkpoint's ``saved`` config, as lines for the log.

    Raises:
        ConfigError: a change that breaks an exact continuation (anything but ``RESUME_FREE_KEYS`` and a longer
            schedule) without ``allow_changes``.
    """
    if not saved:
        return []
    recorded = _flatten(saved)
    # A default mapping (model.glore_args: {}) the checkpoint fills with its own keys is not a key of its own.
    defaults = {
        k: v for k, v in _flatten(config_to_dict(Config())).items() if not any(r.startswith(k + ".") for r in recorded)
    }
    old = {**defaults, **recorded}
    new = _flatten(config_to_dict(config))
    changes = [(k, old.get(k, "<absent>"), new.get(k, "<absent>")) for k in dict.fromkeys([*old, *new])]
    changes = [c for c in changes if c[1] != c[2]]
    free, longer, breaking = [], [], []
    for key, before, after in changes:
        text = f"{key} {before!r} -> {after!r}"
        if key in RESUME_FREE_KEYS:
            free.append(text)
        elif key in RESUME_LONGER_KEYS and isinstance(before, int) and isinstance(after, int) and after > before:
            longer.append(text)
        else:
            breaking.append(text)
    if breaking and not allow_changes:
        raise ConfigError(
            f"resume: this config changes what {str(path)!r} was trained with: {', '.join(breaking)}; an exact "
            "continuation needs them as they were: resume with --allow-changes to accept them (the run is then "
            "no longer bit-for-bit what an uninterrupted run gives), or start a new run in another --output"
        )
    notes = []
    if longer:
        notes.append(
            f"resume: a longer schedule: {', '.join(longer)} (the learning rate schedule is "
            "stretched to the new length)"
        )
    if breaking:
        notes.append(
            f"resume: continuing with changed {', '.join(breaking)} (--allow-changes): not an exact continuation"
        )
    if free:
        notes.append(f"resume: also changed: {', '.join(free)} (no effect on the result)")
    return notes


def repair_best(run_dir: Path, path: Path, state: dict[str, Any], *, step: int, best_step: int | None) -> str | None:
    """Rewrite ``best.pt`` from the resumed checkpoint ``state`` (of ``step`` iterations, read from ``path``) when
    that checkpoint is the best and the run stopped before ``best.pt`` was written (or ``best.pt`` is damaged).

    Returns:
        The line for the log when it rewrote ``best.pt``.
    """
    if best_step is None or int(best_step) != step or state.get("partial") is not None:
        return None
    best = run_dir / "best.pt"
    try:
        current = load_checkpoint(best).get("checksum") if best.is_file() else None
    except CheckpointError:
        current = None
    if current is not None and current == state.get("checksum"):
        return None
    save_checkpoint(state, best)
    return f"resume: best.pt did not hold the best checkpoint (step {step}); rewritten from {str(path)!r}"


def load_weights(model: nn.Module, state_dict: dict[str, Any], path: str | Path) -> None:
    """``model.load_state_dict(state_dict)``, with a one-line ValueError naming the checkpoint and the first
    mismatches when it was written by another network (architecture, class count)."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as error:
        own = model.state_dict()
        missing = [k for k in own if k not in state_dict][:3]
        unexpected = [k for k in state_dict if k not in own][:3]
        shapes = [
            f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
            for k, v in own.items()
            if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
        ][:2]
        detail = "; ".join(
            part
            for part in (
                f"missing {missing}" if missing else "",
                f"unexpected {unexpected}" if unexpected else "",
                f"shapes (checkpoint vs network) {shapes}" if shapes else "",
            )
            if part
        )
        raise ValueError(
            f"checkpoint {str(path)!r} does not fit the network this config builds: {detail or error}"
        ) from None
