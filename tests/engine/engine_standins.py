"""Stand-ins for the engine's tests: a tiny task with a tiny network on a small in-memory dataset.

Also run as a script under torchrun: ``engine_standins.py CONFIG OUT_JSON [TASK_KWARGS_JSON]`` trains the tiny
task (``"resume": true`` among the kwargs resumes) and rank 0 writes the final metrics to OUT_JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from glore.engine import Task, load_config, train
from glore.engine.distributed import cleanup_distributed
from glore.metrics import ClassificationMeter

GLOO_TEARDOWN_ABORT = "terminate called without an active exception"


def run_subprocess(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``cmd``; on a timeout, fail with what it printed (to tell a hang from slowness)."""
    try:
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        if result.returncode and GLOO_TEARDOWN_ABORT in result.stdout + result.stderr:
            # gloo can abort a process while the group is torn down after the run has finished (seen under heavy
            # load, about one run in twenty); run once more, so only a repeated failure fails the test.
            result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        return result
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        errs = err.stderr.decode() if isinstance(err.stderr, bytes) else (err.stderr or "")
        pytest.fail(f"timed out after 300 s: {' '.join(cmd)}\n--- stdout\n{out[-3000:]}\n--- stderr\n{errs[-3000:]}")


class SimulatedCrash(RuntimeError):
    """Stands for a killed process in the resume tests."""


class TinyNet(nn.Module):
    """conv -> (BN) -> relu -> pool -> linear; ``model_config`` rebuilds it."""

    def __init__(self, num_classes: int = 4, width: int = 8, bn: bool = False, dropout: float = 0.1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.norm = nn.BatchNorm2d(width) if bn else nn.Identity()
        self.drop = nn.Dropout(dropout)  # consumes the torch RNG, so resuming must restore it
        self.fc = nn.Linear(width, num_classes)
        self.model_config = {"num_classes": num_classes, "width": width, "bn": bn, "dropout": dropout}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm(self.conv(x)))
        return self.fc(self.drop(x.mean(dim=(2, 3))))


class Labelled(TensorDataset):
    """A TensorDataset with ``num_classes``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> None:
        super().__init__(x, y)
        self.num_classes = num_classes


def make_data(n: int, num_classes: int, size: int, seed: int) -> Labelled:
    """Images whose class is which colour channel is brightest (learnable in a few steps)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(num_classes, (n,), generator=g)
    x = torch.randn(n, 3, size, size, generator=g) * 0.5
    x[torch.arange(n), y % 3] += 1.0 + (y // 3).float().view(-1, 1, 1)
    return Labelled(x, y, num_classes)


class TinyTask(Task):
    """A classification task with a ``TinyNet`` on ``make_data``.

    Args:
        config: the run's configuration.
        n_train: training samples.
        n_val: validation samples.
        num_classes: classes.
        size: image side.
        bn: use BatchNorm in the network.
        dropout: dropout before the classifier.
        nan_at: make the loss NaN from this (1-based) training call of ``loss`` on.
        crash_at: raise ``SimulatedCrash`` at this (1-based) training call of ``loss``.
    """

    metrics = {"top1": "max", "top2": "max", "mean_class_acc": "max"}
    train_metrics = True

    def __init__(
        self,
        config: Any,
        *,
        n_train: int = 32,
        n_val: int = 13,
        num_classes: int = 4,
        size: int = 8,
        bn: bool = False,
        dropout: float = 0.1,
        nan_at: int | None = None,
        crash_at: int | None = None,
    ) -> None:
        super().__init__(config)
        self.n_train, self.n_val, self.num_classes, self.size, self.bn = n_train, n_val, num_classes, size, bn
        self.dropout = dropout
        self.nan_at, self.crash_at = nan_at, crash_at
        self.loss_calls = 0

    def build_dataset(self, split: str, *, train: bool) -> Dataset:
        n = self.n_train if train else self.n_val
        return make_data(n, self.num_classes, self.size, seed=1 if train else 2)

    def build_model(self, train_dataset: Dataset) -> nn.Module:
        return TinyNet(self.num_classes, bn=self.bn, dropout=self.dropout)

    def rebuild_model(self, model_config: dict[str, Any]) -> nn.Module:
        return TinyNet(**model_config)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor, *, train: bool) -> torch.Tensor:
        loss = F.cross_entropy(outputs.float(), targets)
        if train:
            self.loss_calls += 1
            if self.crash_at is not None and self.loss_calls == self.crash_at:
                raise SimulatedCrash(f"simulated crash at training step {self.loss_calls}")
            if self.nan_at is not None and self.loss_calls >= self.nan_at:
                return loss * float("nan")
        return loss

    def create_meter(self, dataset: Dataset, *, train: bool = False) -> ClassificationMeter:
        return ClassificationMeter(self.num_classes, ks=(1, 2))


class PixelNet(nn.Module):
    """A fully convolutional per-pixel classifier; ``kernel=1`` makes it exactly translation-equivariant."""

    def __init__(self, num_classes: int = 3, width: int = 8, kernel: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, kernel, padding=kernel // 2)
        self.norm = nn.BatchNorm2d(width)
        self.drop = nn.Dropout2d(0.1)  # consumes the torch RNG, so resuming must restore it
        self.head = nn.Conv2d(width, num_classes, 1)
        self.model_config = {"num_classes": num_classes, "width": width, "kernel": kernel}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(F.relu(self.norm(self.conv(x)))))  # (n, K, H, W)


class PixelData(Dataset):
    """Images whose every pixel's class is its brightest channel; targets are a dict (mask and a weight map),
    meta carries an id."""

    num_classes = 3

    def __init__(self, n: int, size: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randn(n, 3, size, size, generator=g)
        self.masks = self.images.argmax(dim=1)  # (n, H, W)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, Any]]:
        flip = torch.rand(()) < 0.5  # random augmentation: must depend on (seed, epoch, index) only
        image, mask = self.images[i], self.masks[i]
        if flip:
            image, mask = image.flip(-1), mask.flip(-1)
        return image, {"mask": mask, "weight": torch.ones(mask.shape)}, {"id": f"img{i:03d}", "size": mask.shape}


class PixelMeter:
    """Confusion matrix on the device; ``miou`` and ``pixel_acc``; counts the distinct ids it saw."""

    def __init__(self, num_classes: int) -> None:
        self.k = num_classes
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        self.ids: set[str] = set()

    def update(self, preds: torch.Tensor, targets: dict[str, torch.Tensor], meta: dict[str, list[Any]]) -> None:
        labels = preds.argmax(dim=1) if preds.dim() == 4 else preds  # (n, H, W)
        index = targets["mask"].reshape(-1) * self.k + labels.reshape(-1)  # (n*H*W,)
        self.confusion = self.confusion.to(index.device) + torch.bincount(index, minlength=self.k**2).view(self.k, -1)
        self.ids.update(meta["id"])

    def reduce(self, device: Any = "cpu") -> None:
        from glore.engine.distributed import all_reduce_sum

        self.confusion = all_reduce_sum(self.confusion.to(device))

    def compute(self) -> dict[str, float]:
        c = self.confusion.double().cpu()
        tp = c.diag()
        iou = tp / (c.sum(0) + c.sum(1) - tp).clamp(min=1)
        return {"miou": float(iou.mean()), "pixel_acc": float(tp.sum() / c.sum().clamp(min=1)), "count": float(c.sum())}


class PixelTask(Task):
    """A per-pixel task that is not classification: dict targets, meta, and a sliding-window ``eval_step``.

    Args:
        config: the run's configuration.
        window: side of the sliding window of ``eval_step`` (None: whole image).
        stride: its stride.
        crash_at: raise ``SimulatedCrash`` at this (1-based) training step.
        kernel: the network's first kernel size.
    """

    metrics = {"miou": "max", "pixel_acc": "max"}

    def __init__(
        self, config: Any, *, window: int | None = 8, stride: int = 4, crash_at: int | None = None, kernel: int = 3
    ) -> None:
        super().__init__(config)
        self.window, self.stride, self.crash_at, self.kernel = window, stride, crash_at, kernel
        self.steps = 0

    def build_dataset(self, split: str, *, train: bool) -> Dataset:
        return PixelData(32 if train else 10, 12, seed=1 if train else 2)

    def build_model(self, train_dataset: Dataset) -> nn.Module:
        return PixelNet(kernel=self.kernel)

    def rebuild_model(self, model_config: dict[str, Any]) -> nn.Module:
        return PixelNet(**model_config)

    def loss(self, outputs: torch.Tensor, targets: dict[str, torch.Tensor], *, train: bool) -> torch.Tensor:
        per_pixel = F.cross_entropy(outputs.float(), targets["mask"], reduction="none")  # (n, H, W)
        return (per_pixel * targets["weight"]).sum() / targets["weight"].sum()

    def train_step(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, Any]:
        self.steps += 1
        if self.crash_at is not None and self.steps == self.crash_at:
            raise SimulatedCrash(f"simulated crash at training step {self.steps}")
        return super().train_step(model, batch)

    def eval_step(self, model: nn.Module, batch: Any) -> torch.Tensor:
        return sliding_window(model, batch.inputs, self.window, self.stride)

    def create_meter(self, dataset: Dataset, *, train: bool = False) -> PixelMeter:
        return PixelMeter(3)


def sliding_window(model: nn.Module, x: torch.Tensor, window: int | None, stride: int) -> torch.Tensor:
    """Logits averaged over the windows that cover each pixel (the last window of a row or column is aligned with
    the border)."""
    n, _, h, w = x.shape
    if window is None or window >= max(h, w):
        return model(x)
    starts_y = sorted({*range(0, h - window, stride), h - window})
    starts_x = sorted({*range(0, w - window, stride), w - window})
    total, count = None, torch.zeros(1, 1, h, w, device=x.device)
    for y in starts_y:
        for x0 in starts_x:
            logits = model(x[:, :, y : y + window, x0 : x0 + window])  # (n, K, window, window)
            if total is None:
                total = torch.zeros(n, logits.shape[1], h, w, device=x.device, dtype=logits.dtype)
            total[:, :, y : y + window, x0 : x0 + window] += logits
            count[:, :, y : y + window, x0 : x0 + window] += 1
    return total / count


def tiny_config(out_dir: str, **sections: dict[str, Any]) -> Any:
    """A config for ``TinyTask`` writing to ``out_dir``; ``sections`` update its sections."""
    values: dict[str, Any] = {
        "data": {"batch_size": 8, "num_workers": 0},
        "optim": {"lr": 0.05},
        "schedule": {"name": "cosine", "warmup_epochs": 1},
        "train": {"epochs": 2, "device": "cpu", "progress": "off", "log_every": 2},
        "output": {"dir": out_dir, "tensorboard": False, "plots": False, "best_metric": "top1"},
    }
    for name, update in sections.items():
        values.setdefault(name, {}).update(update)
    return load_config(values)


if __name__ == "__main__":
    torch.set_num_threads(1)
    config_path, out_json = sys.argv[1], sys.argv[2]
    task_kwargs = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    resume = task_kwargs.pop("resume", False)
    config = load_config(config_path)
    task_class = PixelTask if task_kwargs.pop("task", "tiny") == "pixel" else TinyTask
    metrics = train(config, task_class(config, **task_kwargs), resume=resume)
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    cleanup_distributed()
    if rank == 0:
        with open(out_json, "w") as f:
            json.dump(metrics, f)
