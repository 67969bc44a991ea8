"""Image classification: ``glore.data`` datasets, ``glore.models`` networks, cross-entropy with optional label
smoothing, top-1/top-5/mean per-class accuracy."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from glore.engine.config import DataConfig
from glore.engine.settings import Setting
from glore.engine.task import Meter, Task, register_task

from ._common import USER_TRANSFORM, build_zoo_model, resolve_task_args, user_transform
from ._inputs import generated, generated_image_tensor, input_batch, read_input_image

__all__ = ["ClassificationTask", "check_same_classes"]


def check_same_classes(train_set: Dataset, val_set: Dataset, train_split: str, val_split: str) -> None:
    """Raise a ValueError naming the first difference when the two splits' ``classes`` lists differ."""
    a, b = getattr(train_set, "classes", None), getattr(val_set, "classes", None)
    if a is None or b is None or list(a) == list(b):
        return
    if len(a) != len(b):
        only = sorted(set(a) ^ set(b))[:3]
        raise ValueError(
            f"data: the {train_split!r} split has {len(a)} classes and the {val_split!r} split {len(b)}; "
            f"in one and not the other: {only}"
        )
    i = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
    raise ValueError(
        f"data: class {i} is {a[i]!r} in the {train_split!r} split but {b[i]!r} in the {val_split!r} split; "
        "the validation labels would be wrong: give both splits the same class folders"
    )


@register_task("classification")
class ClassificationTask(Task):
    """Image classification (``config.task: classification``).

    The default ``train_step``/``eval_step`` apply: the network maps images to logits; the loss is cross-entropy in
    float32 with ``train.label_smoothing`` during training only.
    """

    metrics = {"top1": "max", "top5": "max", "mean_class_acc": "max"}
    train_metrics = True
    # Classification has no options of its own: a key here is a mistake (e.g. --save-predictions).
    settings: ClassVar[dict[str, Setting]] = {}

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        resolve_task_args(config, type(self))

    @classmethod
    def unused_data(cls, data: DataConfig) -> dict[str, str]:
        """Without the standard transform (``data.transform: none``, or the relational data, which makes normalised
        tensors itself) the preprocessing fields are not applied."""
        if data.transform == "standard" and data.name != "relational":
            return {}
        why = "data.transform is none" if data.transform == "none" else "the relational data normalises itself"
        if data.transform not in ("standard", "none"):
            why = USER_TRANSFORM
        return {name: why for name in ("mean", "std", "color_jitter", "crop_scale", "eval_crop_ratio")}

    def build_dataset(self, split: str, *, train: bool) -> Dataset:
        """A dataset from ``config.data`` through ``glore.data.create_dataset``."""
        from glore.data import create_dataset

        d = self.config.data
        kwargs = {**d.kwargs, **(d.train_kwargs if train else d.val_kwargs)}
        transform = self.image_transform(train=train)
        if d.name == "relational":  # data.image_size is the size reports compute GFLOPs from: one size for both
            if kwargs.setdefault("image_size", d.image_size) != d.image_size:
                raise ValueError(
                    f"data.kwargs.image_size: {kwargs['image_size']} differs from data.image_size "
                    f"{d.image_size}; set data.image_size alone"
                )
        return create_dataset(d.name, d.root, split, transform=transform, on_error=d.on_error, **kwargs)

    def build_datasets(self) -> tuple[Dataset, Dataset | None]:
        """Both splits, with their class lists compared: a validation split whose classes differ from the training
        split's (other names, other order, other count) would be scored against the wrong labels."""
        train_set, val_set = super().build_datasets()
        if val_set is not None:
            check_same_classes(train_set, val_set, self.config.data.train_split, self.config.data.val_split)
        return train_set, val_set

    def build_model(self, train_dataset: Dataset) -> nn.Module:
        """``glore.models.create_model`` with ``config.model``; ``num_classes`` defaults to the dataset's."""
        return build_zoo_model(self.config, train_dataset)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor, *, train: bool) -> torch.Tensor:
        """Cross-entropy in float32, with ``train.label_smoothing`` during training only."""
        smoothing = self.config.train.label_smoothing if train else 0.0
        return F.cross_entropy(outputs.float(), targets, label_smoothing=smoothing)

    def create_meter(self, dataset: Dataset, *, train: bool = False) -> Meter:
        """A ``ClassificationMeter`` with top-1, mean per-class accuracy, and top-5 when there are more than five
        classes."""
        from glore.metrics import ClassificationMeter

        num_classes = getattr(dataset, "num_classes", None) or self.config.model.num_classes
        if num_classes is None:
            raise ValueError("model.num_classes: the dataset has no num_classes attribute; set it in the config")
        return ClassificationMeter(int(num_classes), ks=(1, 5) if num_classes > 5 else (1,))

    # -- raw inputs ---------------------------------------------------------------------------------------------

    def image_transform(self, *, train: bool) -> Any:
        """The transform the datasets get (PIL image -> normalised tensor): ``glore.data.transforms``' random resized
        crop (training) or resize and centre crop (evaluation) with ``data.*``; None for ``data.transform: none``
        and for the relational data, which makes normalised tensors itself; the user's factory's with
        ``data.transform: "package.module:factory"``."""
        custom = user_transform(self.config, train=train)
        if custom is not None:
            return custom
        d = self.config.data
        if d.transform != "standard" or generated(d.name):
            return None
        from glore.data.transforms import build_transform

        if len(d.crop_scale) != 2:
            raise ValueError(f"data.crop_scale: expected [min, max], got {d.crop_scale}")
        extra: dict[str, Any] = (
            {"color_jitter": d.color_jitter, "scale": tuple(d.crop_scale)}
            if train
            else {"resize_ratio": d.eval_crop_ratio}
        )
        return build_transform(train, d.image_size, mean=d.mean, std=d.std, **extra)

    def load_input(self, path: str) -> Any:
        """An image file as the evaluation datasets make it: decoded by ``glore.data.read_image`` (with the
        transform's JPEG draft size) and passed through ``image_transform(train=False)``; a file of the generated
        data's pictures is normalised as that data normalises itself. Inputs (1, 3, H, W)."""
        if generated(self.config.data.name):
            return input_batch(generated_image_tensor(path)[None], path)
        from glore.data.transforms import to_tensor

        transform = self.image_transform(train=False)
        image = read_input_image(path, draft_size=getattr(transform, "draft_size", None))
        x = to_tensor(image) if transform is None else transform(image)
        return input_batch(x[None], path)  # (1, 3, H, W)

    def input_size(self, model: nn.Module | None = None) -> tuple[int, ...]:
        """(``data.image_size``, ``data.image_size``): the evaluation crop (the generated images' side)."""
        side = int(self.config.data.image_size)
        return (side, side)

    def input_normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``data.mean``/``data.std``; the generated data's own statistics for it; none (0 and 1) without the
        standard transform."""
        if generated(self.config.data.name):
            from glore.data import RELATIONAL_MEAN, RELATIONAL_STD

            return tuple(RELATIONAL_MEAN), tuple(RELATIONAL_STD)
        if self.config.data.transform != "standard":  # pixels in [0, 1], not normalised
            return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        return super().input_normalization()
