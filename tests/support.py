"""Helpers the tests import (a plain module: every test folder's ``conftest`` is a module of that name, so helpers
are not imported from there): the tiny recipe and a file whose writes fail."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

# A GloRe network small enough to train for an epoch in a second or two on the built-in relational data.
TINY_RECIPE: dict[str, Any] = {
    "model": {
        "name": "resnet_small",
        "glore": "res4:1",
        "glore_args": {"num_nodes": 4, "num_state": 8},
        "kwargs": {"widths": [8, 8, 16, 16], "stem_width": 8},
    },
    "data": {
        "name": "relational",
        "transform": "none",
        "image_size": 32,
        "batch_size": 8,
        "num_workers": 0,
        "kwargs": {"image_size": 32},
        "train_kwargs": {"num_samples": 32},
        "val_kwargs": {"num_samples": 12},
    },
    "optim": {"lr": 0.05},
    "train": {"epochs": 1, "device": "cpu", "progress": "off", "log_every": 2},
    "output": {"dir": "runs/unused", "tensorboard": False, "plots": False, "report": False},
}


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and value:
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def make_tiny_recipe(**changes: dict[str, Any]) -> dict[str, Any]:
    """A fresh copy of ``TINY_RECIPE`` with the keys of the given sections replaced:
    ``make_tiny_recipe(model={"glore": None}, train={"epochs": 2})``."""
    return _merge(copy.deepcopy(TINY_RECIPE), changes)


def failing_open(keep: Callable[[bytes], int], error: Callable[[], BaseException]) -> type:
    """A stand-in for ``open`` whose files write the first ``keep(data)`` bytes of a write to disk, then raise
    ``error()``: a process killed mid-write, a full disk, a file-size limit. Patch it over a module's ``open``."""

    class FailingFile:
        def __init__(self, name: str, mode: str) -> None:
            self.f = open(name, mode)  # noqa: SIM115

        def __enter__(self) -> FailingFile:
            return self

        def __exit__(self, *exc: object) -> None:
            self.f.close()

        def write(self, data: bytes) -> int:
            data = bytes(data)
            self.f.write(data[: keep(data)])
            raise error()

    return FailingFile
