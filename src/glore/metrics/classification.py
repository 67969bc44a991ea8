"""Classification metrics: top-k accuracy and mean per-class accuracy (the fine-grained convention).

``ClassificationMeter`` accumulates integer counts batch by batch on the device of the logits with fixed-shape
operations only (no host synchronisation per batch: no ``.item()``, no boolean-mask selection, no ``bincount``);
``reduce()`` sums them over all processes, so the result is exact however the samples were split (provided each
sample is seen by one process), and ``compute()`` reads them once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._reduce import all_reduce_, is_distributed

__all__ = ["ClassificationMeter", "mean_class_accuracy", "topk_accuracy", "topk_correct"]


def _check(logits: torch.Tensor, targets: torch.Tensor) -> None:
    if logits.dim() != 2:
        raise ValueError(f"logits: expected shape (n, num_classes), got {tuple(logits.shape)}")
    if targets.dim() != 1 or targets.shape[0] != logits.shape[0]:
        raise ValueError(f"targets: expected shape ({logits.shape[0]},) to match logits, got {tuple(targets.shape)}")


def topk_correct(logits: torch.Tensor, targets: torch.Tensor, ks: Sequence[int] = (1, 5)) -> list[int]:
    """Number of samples whose target is among the ``k`` highest logits, for each ``k``.

    ``k`` larger than the number of classes counts every sample as correct.

    Args:
        logits: (n, num_classes) scores.
        targets: (n,) class indices.
        ks: the values of k.
    """
    _check(logits, targets)
    if logits.shape[0] == 0:
        return [0 for _ in ks]
    maxk = min(max(ks), logits.shape[1])
    top = logits.topk(maxk, dim=1).indices  # (n, maxk)
    hit = top.eq(targets.view(-1, 1))  # (n, maxk)
    return [int(hit[:, : min(k, maxk)].any(dim=1).sum()) for k in ks]


def topk_accuracy(logits: torch.Tensor, targets: torch.Tensor, ks: Sequence[int] = (1, 5)) -> list[float]:
    """Fraction of samples whose target is among the ``k`` highest logits, for each ``k``.

    Args:
        logits: (n, num_classes) scores.
        targets: (n,) class indices.
        ks: the values of k.
    """
    n = logits.shape[0]
    if n == 0:
        raise ValueError("logits: expected at least one sample")
    return [c / n for c in topk_correct(logits, targets, ks)]


def mean_class_accuracy(preds: torch.Tensor, targets: torch.Tensor, num_classes: int) -> float:
    """Top-1 accuracy of each class, averaged over the classes that occur in ``targets``.

    Args:
        preds: (n,) predicted class indices.
        targets: (n,) true class indices.
        num_classes: number of classes.
    """
    meter = ClassificationMeter(num_classes, ks=(1,))
    meter.correct_per_class += torch.bincount(targets[preds == targets], minlength=num_classes).cpu()
    meter.total_per_class += torch.bincount(targets, minlength=num_classes).cpu()
    return meter.compute()["mean_class_acc"]


class ClassificationMeter:
    """Accumulates top-k hits and per-class counts over batches, then reduces them across processes.

    Args:
        num_classes: number of classes.
        ks: the k of the top-k accuracies reported as ``top{k}``.

    Example:
        >>> meter = ClassificationMeter(10)
        >>> meter.update(logits, targets)  # every batch
        >>> meter.reduce()  # once, on every process
        >>> meter.compute()  # {"top1": ..., "top5": ..., "mean_class_acc": ..., "count": ...}
    """

    def __init__(self, num_classes: int, ks: Sequence[int] = (1, 5)) -> None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes: expected a positive int, got {num_classes!r}")
        if not ks or any(not isinstance(k, int) or k < 1 for k in ks):
            raise ValueError(f"ks: expected positive ints, got {ks!r}")
        self.num_classes = num_classes
        self.ks = tuple(ks)
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated."""
        self.topk_hits = torch.zeros(len(self.ks), dtype=torch.int64)
        self.correct_per_class = torch.zeros(self.num_classes, dtype=torch.int64)
        self.total_per_class = torch.zeros(self.num_classes, dtype=torch.int64)
        self.invalid_targets = torch.zeros((), dtype=torch.int64)

    def _to(self, device: torch.device) -> None:
        if self.topk_hits.device != device:
            self.topk_hits = self.topk_hits.to(device)
            self.correct_per_class = self.correct_per_class.to(device)
            self.total_per_class = self.total_per_class.to(device)
            self.invalid_targets = self.invalid_targets.to(device)

    @property
    def count(self) -> int:
        """Samples accumulated so far."""
        return int(self.total_per_class.sum())

    @torch.no_grad()
    def update(self, logits: torch.Tensor, targets: torch.Tensor, meta: object = None) -> None:
        """Add a batch. Counts stay on the logits' device: nothing here waits for the device.

        Args:
            logits: (n, num_classes) scores.
            targets: (n,) class indices in ``[0, num_classes)``; others are counted and reported by ``compute``.
            meta: the batch's metadata (not used).
        """
        _check(logits, targets)
        if logits.shape[1] != self.num_classes:
            raise ValueError(f"logits: expected {self.num_classes} classes, got {logits.shape[1]}")
        self._to(logits.device)
        targets = targets.long().to(logits.device)
        # Only fixed-shape operations: a boolean-mask selection or ``bincount`` would make the host wait for the
        # device (their output size depends on the data). Invalid targets are counted under class 0 with weight 0.
        valid = (targets >= 0) & (targets < self.num_classes)  # (n,)
        self.invalid_targets += (~valid).sum()
        safe = torch.where(valid, targets, torch.zeros_like(targets))  # (n,)
        maxk = min(max(self.ks), self.num_classes)
        top = logits.topk(maxk, dim=1).indices  # (n, maxk)
        hit = top.eq(safe.view(-1, 1)) & valid.view(-1, 1)  # (n, maxk)
        self.topk_hits += torch.stack([hit[:, : min(k, maxk)].any(dim=1).sum() for k in self.ks])
        self.correct_per_class.index_add_(0, safe, hit[:, 0].long())
        self.total_per_class.index_add_(0, safe, valid.long())

    def reduce(self, device: torch.device | str = "cpu") -> None:
        """Sum the counts over all processes (a no-op without a process group). Call it on every process.

        Args:
            device: where the collective runs (CUDA for NCCL, CPU for gloo).
        """
        if not is_distributed():
            return
        packed = torch.cat(
            [self.topk_hits, self.correct_per_class, self.total_per_class, self.invalid_targets.reshape(1)]
        ).to(device)
        all_reduce_(packed)
        k, c = len(self.ks), self.num_classes
        self.topk_hits = packed[:k].clone()
        self.correct_per_class = packed[k : k + c].clone()
        self.total_per_class = packed[k + c : k + 2 * c].clone()
        self.invalid_targets = packed[-1].clone()

    def compute(self) -> dict[str, float]:
        """``top{k}`` for each k, ``mean_class_acc`` (over classes with at least one sample) and ``count``.

        Accuracies are fractions in [0, 1]; with no samples they are NaN.

        Raises:
            ValueError: some targets were not class indices in ``[0, num_classes)``.
        """
        if int(self.invalid_targets):
            raise ValueError(
                f"targets: {int(self.invalid_targets)} targets were not class indices in [0, {self.num_classes})"
            )
        self.topk_hits, self.correct_per_class, self.total_per_class = (
            t.cpu() for t in (self.topk_hits, self.correct_per_class, self.total_per_class)
        )
        n = self.count
        out: dict[str, float] = {}
        for k, hits in zip(self.ks, self.topk_hits.tolist(), strict=True):
            out[f"top{k}"] = hits / n if n else float("nan")
        present = self.total_per_class > 0
        if present.any():
            per_class = self.correct_per_class[present].double() / self.total_per_class[present].double()
            out["mean_class_acc"] = float(per_class.mean())
        else:
            out["mean_class_acc"] = float("nan")
        out["count"] = float(n)
        return out
