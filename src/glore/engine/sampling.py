"""Dataset and sampler wrappers that make a run's data exact and repeatable.

- ``EpochSampler`` sends the epoch with every index to the loader's workers (which persist across epochs) and can
  start a pass part-way, for a run resumed in the middle of an epoch.
- ``SeededDataset`` computes sample ``index`` of epoch ``epoch`` with the random generators seeded from
  ``(seed, epoch, index)``: augmentation is a function of the sample and the epoch alone.
- ``CachedDataset`` keeps every sample of a dataset that does not change between epochs in memory.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["CachedDataset", "EpochSampler", "SeededDataset"]


class CachedDataset(Dataset):
    """Every sample of ``dataset`` computed once (with ``num_workers`` loader processes) and kept in memory.

    Args:
        dataset: a dataset whose samples do not change between epochs.
        num_workers: processes that compute the samples.
    """

    def __init__(self, dataset: Dataset, num_workers: int = 0) -> None:
        from torch.utils._pytree import tree_map

        self.dataset = dataset
        # Its own generator: the workers' seeds must not be drawn from (and shift) the global one.
        generator = torch.Generator().manual_seed(0)
        loader = DataLoader(
            dataset, batch_size=None, num_workers=num_workers, collate_fn=_identity, generator=generator
        )
        # Tensors from worker processes live in shared memory, one segment each: copy them out, so that
        # thousands of cached samples do not hold thousands of segments (and file descriptors) open.
        self.samples = [tree_map(lambda v: v.clone() if isinstance(v, torch.Tensor) else v, s) for s in loader]

    def __getattr__(self, name: str) -> Any:
        # num_classes, classes ... of the wrapped dataset
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Any:
        return self.samples[index]


class EpochSampler(Sampler[tuple[int, int]]):
    """Wraps a sampler so that it yields ``(epoch, index)``: the epoch travels with each index to the loader's
    workers, which may be started once for the whole run (persistent workers).

    Args:
        sampler: yields dataset indices; its ``set_epoch`` is called too when it has one.
    """

    def __init__(self, sampler: Sampler[int]) -> None:
        self.sampler = sampler
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Use ``epoch`` for the next pass (and reshuffle the wrapped sampler), leaving out its first ``skip``
        indices: a run resumed after ``k`` full batches of an epoch passes ``k * batch_size`` and sees exactly the
        batches it had not trained on."""
        if skip < 0:
            raise ValueError(f"skip: expected >= 0, got {skip}")
        self.epoch, self.skip = epoch, skip
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, skip = self.epoch, self.skip
        return ((epoch, int(index)) for i, index in enumerate(self.sampler) if i >= skip)

    def __len__(self) -> int:
        return max(len(self.sampler) - self.skip, 0)  # type: ignore[arg-type]


class SeededDataset(Dataset):
    """Computes sample ``index`` of epoch ``epoch`` with python's, numpy's and torch's generators seeded from
    ``(seed, epoch, index)``.

    Random augmentation is then a function of the sample and the epoch alone: the same whatever the number of
    loader workers or processes, whether workers persist across epochs, and after resuming. In the main process
    (``num_workers=0``) the global generator states are restored afterwards, so the training loop's own random
    draws (dropout) do not depend on the data.

    Args:
        dataset: the wrapped dataset (its attributes, such as ``num_classes``, are passed through).
        seed: the run's seed.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = int(seed)

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def sample_seed(self, epoch: int, index: int) -> int:
        """The seed of sample ``index`` in ``epoch`` (63 bits)."""
        return (((self.seed * 1_000_003) ^ (epoch * 998_244_353)) * 2_654_435_761 + index) % (2**63 - 1)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        seed = self.sample_seed(epoch, index)
        in_worker = torch.utils.data.get_worker_info() is not None
        saved = None if in_worker else (random.getstate(), np.random.get_state(), torch.get_rng_state())
        random.seed(seed)
        np.random.seed(seed % 2**32)
        # The CPU generator only: torch.manual_seed would also reseed every CUDA generator, on every sample.
        torch.default_generator.manual_seed(seed)
        try:
            return self.dataset[index]
        finally:
            if saved is not None:
                random.setstate(saved[0])
                np.random.set_state(saved[1])
                torch.set_rng_state(saved[2])


def _identity(sample: Any) -> Any:
    return sample


def _batch_len(inputs: Any) -> int:
    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0]) if inputs.dim() > 0 else 0
    return len(inputs)
