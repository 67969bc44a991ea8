"""Runs ``glore`` with one fault injected, for ``test_faults.py``: ``fault_runner.py GLORE_ARGS...``.

The fault comes from the environment, so the same command line serves one process and torchrun:

- ``GLORE_TEST_FAULT=ACTION:NAME:K:PHASE`` acts at the K-th write (in this process) of the run folder's file NAME
  (``last.pt``, ``previous.pt``, ``best.pt``, ``metrics.csv``, ``steps.csv``, ``config.yaml``). A write is the
  rename that commits an atomic write (``previous.pt``: the rename that keeps the old ``last.pt``) or an append
  to a table. PHASE ``before``: before the write; ``half``: the file half-written (the temporary file cut to half
  its size before its rename, half a row appended); ``after``: right after it.
- ``GLORE_TEST_FAULT=ACTION:step:N`` acts at the N-th training step of this process: ``kill`` after the
  optimiser step (before anything is saved), ``term`` before it (the signal arrives during the step).
- ACTION ``kill`` sends SIGKILL to this process; ``term`` sends SIGTERM and ``usr1`` SIGUSR1, and it carries on.
- ``GLORE_TEST_FAULT_RANK`` (default 0): the torchrun rank that acts.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from pathlib import Path

import torch

import glore._io as glore_io
import glore.engine.logger as glore_logger
import glore.engine.trainer as glore_trainer
from glore.cli import main

SPEC = os.environ.get("GLORE_TEST_FAULT", "")
ACTIVE = bool(SPEC) and int(os.environ.get("RANK", "0")) == int(os.environ.get("GLORE_TEST_FAULT_RANK", "0"))
counts: Counter[str] = Counter()


def act(action: str) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), {"kill": signal.SIGKILL, "term": signal.SIGTERM, "usr1": signal.SIGUSR1}[action])


def install() -> None:
    parts = SPEC.split(":")
    action, name = parts[0], parts[1]
    if name == "step":
        at = int(parts[2])
        real_step = glore_trainer.Trainer._step

        def step(self, *args, **kwargs):
            counts["step"] += 1
            hit = counts["step"] == at
            if hit and action != "kill":
                act(action)
            out = real_step(self, *args, **kwargs)
            if hit and action == "kill":
                act("kill")
            return out

        glore_trainer.Trainer._step = step
        return
    k, phase = int(parts[2]), parts[3]
    real_replace, real_append = os.replace, glore_io.append_text

    def hit(path: str | os.PathLike) -> bool:
        counts[Path(path).name] += 1
        return Path(path).name == name and counts[name] == k

    def replace(src, dst, **kwargs):
        if not hit(dst):
            return real_replace(src, dst, **kwargs)
        if phase == "half" and action == "kill":
            os.truncate(src, os.path.getsize(src) // 2)  # the temporary file half-written, then the kill
            act(action)
        elif phase in ("half", "before"):
            act(action)  # SIGTERM: the handler notes it and the write goes on whole
        result = real_replace(src, dst, **kwargs)
        if phase == "after":
            act(action)
        return result

    def append_text(path, text):
        if not hit(path):
            return real_append(path, text)
        if phase == "half":
            real_append(path, text[: len(text) // 2])
            act(action)
            return real_append(path, text[len(text) // 2 :])
        if phase == "before":
            act(action)
        real_append(path, text)
        if phase == "after":
            act(action)
        return None

    glore_io.os.replace = replace  # the os module's, as glore._io calls it
    glore_logger.append_text = append_text


if __name__ == "__main__":
    torch.set_num_threads(1)
    if ACTIVE:
        install()
    raise SystemExit(main(sys.argv[1:]))
