"""The meters' one collective, and metrics that stand on torch alone."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from glore.metrics._reduce import all_reduce_


def test_a_world_of_one_leaves_the_counters_alone_and_a_bad_op_is_named():
    counts = torch.tensor([1, 2, 3])
    all_reduce_(counts, op="max")
    assert counts.tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="op: expected one of \\['max', 'sum'\\], got 'mean'"):
        all_reduce_(counts, op="mean")


def test_the_meters_import_neither_the_engine_nor_the_data():
    code = (
        "import sys, glore.metrics, glore.metrics.video; "
        "print(sorted(m for m in sys.modules if m.startswith(('glore.engine', 'glore.data', 'glore.tasks'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
