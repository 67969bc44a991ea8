"""Shared settings of the model tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # The networks here are small batches of small images: one intra-op thread is as fast, and it does not fight
    # other processes for the cores (oversubscribed OpenMP threads spin and slow everyone down).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
