"""Semantic segmentation metrics: IoU per class and category, pixel accuracy, and Cityscapes' instance-weighted iIoU.

``SegmentationMeter`` accumulates, on the device of the predictions and without a host synchronisation:

- a confusion matrix ``conf`` (K, K + 1): rows the true class, columns the predicted class, the last column
  predictions that are no class (e.g. the ignore label: a miss for the true class, a false positive for none);
  pixels whose target is ``ignore_index`` are not counted;
- with instance targets, for every class with instances, the number of instances and the sums over instances of
  ``tp / size`` (class level: pixels predicted as the instance's class) and ``tp_cat / size`` (category level:
  pixels predicted as any class of its category).

``compute()`` follows cityscapesScripts' ``evaluation/evalPixelLevelSemanticLabeling.py`` exactly:

- IoU of class c = TP / (TP + FP + FN), FN counting every miss of a c pixel and FP every non-ignored pixel of
  another class predicted c; NaN when TP + FP + FN = 0; ``miou`` averages the non-NaN classes ("IoU class").
- Category IoU: the same with each category's classes merged (``miou_category``, "IoU category").
- iIoU of an instance class: TP and FN weighted per instance by ``avg_size[c] / instance size`` (ids from the
  instance image: ``id > 1000``, label ``id // 1000``), FP unweighted, over the classes with instances (Cityscapes:
  person, rider, car, truck, bus, train, motorcycle, bicycle); ``iiou`` averages them ("iIoU class").
  ``iiou_category`` does the same for the categories all of whose classes have instances (human, vehicle).
- ``pixel_acc`` = correctly predicted non-ignored pixels / non-ignored pixels.

Predictions are class indices (or logits, reduced by argmax), so a Cityscapes prediction is in train ids; written
as labelIds it gives the official script the same numbers (tests check this to 1e-6).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ._reduce import all_reduce_

__all__ = ["SegmentationMeter"]


class SegmentationMeter:
    """Accumulates a confusion matrix (and instance statistics) over batches; reduces across processes.

    Args:
        num_classes: K, the number of classes.
        ignore_index: the target value of pixels that are not scored.
        classes: class names, for the per-class keys ``iou/<name>``; ``class<k>`` if None.
        categories: category name -> class indices, for ``miou_category``; None to leave it out.
        instance_sizes: class index -> average instance size (pixels) of every class with instances: the weights
            of iIoU; None to leave iIoU out.
        label_to_class: raw label id (instance id // ``instance_divisor``) -> class index (others: anything
            outside [0, K)); needed with ``instance_sizes``.
        instance_divisor: instance ids are ``label * instance_divisor + k``; ids at or below it are no instance.

    Example:
        >>> meter = SegmentationMeter.for_dataset(val_set)
        >>> meter.update(logits, targets, batch.meta)  # every batch: logits (n, K, H, W), targets (n, H, W)
        >>> meter.reduce()  # once, on every process
        >>> meter.compute()  # {"miou": ..., "pixel_acc": ..., "miou_category": ..., "iiou": ..., ...}
    """

    def __init__(
        self,
        num_classes: int,
        *,
        ignore_index: int = 255,
        classes: Sequence[str] | None = None,
        categories: Mapping[str, Sequence[int]] | None = None,
        instance_sizes: Mapping[int, float] | None = None,
        label_to_class: Sequence[int] | None = None,
        instance_divisor: int = 1000,
    ) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes: expected a positive int, got {num_classes!r}")
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int) or 0 <= ignore_index < num_classes:
            raise ValueError(f"ignore_index: expected an int that is not a class index, got {ignore_index!r}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.classes = [f"class{k}" for k in range(num_classes)] if classes is None else list(classes)
        if len(self.classes) != num_classes:
            raise ValueError(f"classes: expected {num_classes} names, got {len(self.classes)}")
        self.categories = {}
        for name, members in (categories or {}).items():
            members = [int(k) for k in members]
            if not members or any(not 0 <= k < num_classes for k in members):
                raise ValueError(f"categories[{name!r}]: expected class indices in [0, {num_classes}), got {members}")
            self.categories[str(name)] = members
        self.instance_sizes = {int(k): float(v) for k, v in (instance_sizes or {}).items()}
        if any(not 0 <= k < num_classes or not v > 0 for k, v in self.instance_sizes.items()):
            raise ValueError(f"instance_sizes: expected class index -> positive size, got {instance_sizes!r}")
        if self.instance_sizes and label_to_class is None:
            raise ValueError("label_to_class is required with instance_sizes (instance id // divisor -> class)")
        self.instance_divisor = int(instance_divisor)
        self.label_to_class = [int(v) for v in (label_to_class or [])]
        # Categories all of whose classes have instances: those iIoU is reported for.
        self.instance_categories = {
            name: members for name, members in self.categories.items() if all(k in self.instance_sizes for k in members)
        }
        self._luts: dict[torch.device, tuple[torch.Tensor, ...]] = {}
        self.reset()

    @classmethod
    def for_dataset(cls, dataset: Any) -> SegmentationMeter:
        """A meter for ``dataset``: reads ``num_classes``, ``ignore_index`` (255 if absent), ``classes`` and, where
        the dataset has them (Cityscapes), ``categories``, ``instance_sizes`` and ``label_to_class``."""
        return cls(
            dataset.num_classes,
            ignore_index=getattr(dataset, "ignore_index", 255),
            classes=getattr(dataset, "classes", None),
            categories=getattr(dataset, "categories", None),
            instance_sizes=getattr(dataset, "instance_sizes", None),
            label_to_class=getattr(dataset, "label_to_class", None),
        )

    @classmethod
    def cityscapes(cls) -> SegmentationMeter:
        """The Cityscapes meter: 19 train ids, categories, and iIoU with cityscapesScripts' average sizes."""
        from glore.data.cityscapes import AVG_CLASS_SIZE, CITYSCAPES_CATEGORIES, CITYSCAPES_CLASSES, LABEL_TO_TRAIN

        return cls(
            len(CITYSCAPES_CLASSES),
            classes=CITYSCAPES_CLASSES,
            categories=CITYSCAPES_CATEGORIES,
            instance_sizes={
                k: AVG_CLASS_SIZE[name] for k, name in enumerate(CITYSCAPES_CLASSES) if name in AVG_CLASS_SIZE
            },
            label_to_class=LABEL_TO_TRAIN.tolist(),
        )

    # -- state ---------------------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything accumulated."""
        k = self.num_classes
        self.conf = torch.zeros(k, k + 1, dtype=torch.int64)
        self.inst_count = torch.zeros(k, dtype=torch.int64)
        self.inst_tp = torch.zeros(k, dtype=torch.float64)  # sum over instances of tp / size
        self.inst_tp_cat = torch.zeros(k, dtype=torch.float64)  # sum over instances of tp_category / size
        self.invalid_targets = torch.zeros((), dtype=torch.int64)
        self.images = torch.zeros((), dtype=torch.int64)
        self.instances_seen = torch.zeros((), dtype=torch.int64)

    def _state(self) -> list[str]:
        return ["conf", "inst_count", "inst_tp", "inst_tp_cat", "invalid_targets", "images", "instances_seen"]

    def _to(self, device: torch.device) -> None:
        if self.conf.device != device:
            for name in self._state():
                setattr(self, name, getattr(self, name).to(device))

    def _lookup(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        """Per-device tables: class -> category (K + 1 entries, -1 none), class -> instance category, slot -> class."""
        if device not in self._luts:
            k = self.num_classes
            category = torch.full((k + 1,), -1, dtype=torch.long)
            for index, members in enumerate(self.categories.values()):
                category[members] = index
            is_instance = torch.zeros(k + 1, dtype=torch.bool)
            is_instance[list(self.instance_sizes)] = True
            label = torch.tensor(self.label_to_class or [-1], dtype=torch.long)
            label = torch.where((label >= 0) & (label < k), label, torch.full_like(label, k))  # k: no class
            self._luts[device] = (category.to(device), is_instance.to(device), label.to(device))
        return self._luts[device]

    # -- accumulation --------------------------------------------------------------------------------------------

    @torch.no_grad()
    def update(self, preds: torch.Tensor, targets: Any, meta: Mapping[str, Any] | None = None) -> None:
        """Add a batch. Nothing here waits for the device.

        Args:
            preds: class indices (n, H, W), or scores (n, K, H, W) reduced by argmax over dim 1.
            targets: int masks (n, H, W) of class indices and ``ignore_index``, or a dict ``{"mask": ...,
                "instances": int (n, H, W)}`` with raw instance ids (for iIoU).
            meta: the batch's metadata (not used).

        Raises:
            ValueError: shapes that do not match; the message names the argument.
        """
        k = self.num_classes
        if preds.dim() == 4:
            if preds.shape[1] != k:
                raise ValueError(f"preds: expected {k} class scores in dim 1, got shape {tuple(preds.shape)}")
            preds = preds.argmax(1)
        if preds.dim() != 3:
            shape = tuple(preds.shape)
            raise ValueError(f"preds: expected (n, H, W) class indices or (n, K, H, W) scores, got {shape}")
        instances = None
        if isinstance(targets, Mapping):
            if "mask" not in targets:
                raise ValueError(f"targets: a dict target needs a 'mask' entry, got keys {sorted(targets)}")
            instances = targets.get("instances")
            targets = targets["mask"]
        if not isinstance(targets, torch.Tensor) or tuple(targets.shape) != tuple(preds.shape):
            shape = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
            raise ValueError(f"targets: expected a mask of the predictions' shape {tuple(preds.shape)}, got {shape}")
        device = preds.device
        self._to(device)
        gt = targets.to(device).long()
        pred = preds.long()
        pred = torch.where((pred >= 0) & (pred < k), pred, torch.full_like(pred, k))  # (n, H, W) in [0, k]
        valid = (gt >= 0) & (gt < k)
        self.invalid_targets += (~valid & (gt != self.ignore_index)).sum()
        # Confusion matrix by scatter-add into K * (K + 1) bins plus one trash bin for unscored pixels: a bincount
        # of fixed length, so no host synchronisation.
        bins = k * (k + 1)
        key = torch.where(valid, gt * (k + 1) + pred, torch.full_like(gt, bins)).flatten()
        counts = torch.zeros(bins + 1, dtype=torch.int64, device=device)
        counts.scatter_add_(0, key, torch.ones((), dtype=torch.int64, device=device).expand_as(key))
        self.conf += counts[:bins].view(k, k + 1)
        self.images += preds.shape[0]
        if instances is not None and self.instance_sizes:
            if tuple(instances.shape) != tuple(preds.shape):
                raise ValueError(
                    f"targets['instances']: expected the predictions' shape {tuple(preds.shape)}, "
                    f"got {tuple(instances.shape)}"
                )
            self._update_instances(pred, instances.to(device).long())

    def _update_instances(self, pred: torch.Tensor, inst: torch.Tensor) -> None:
        """Per instance: size, pixels predicted as its class and as its category; summed per class as tp / size."""
        k = self.num_classes
        category, is_instance, label_lut = self._lookup(pred.device)
        n = pred.shape[0]
        d = self.instance_divisor
        slots = len(label_lut) * d  # instance ids of one image are below this
        label = (inst // d).clamp(0, len(label_lut) - 1)
        cls = label_lut[label]  # (n, H, W): the instance's class, k for none
        is_inst = (inst > d) & (inst < slots) & is_instance[cls]
        offset = torch.arange(n, device=pred.device).view(n, 1, 1) * slots
        trash = n * slots
        key = torch.where(is_inst, inst + offset, torch.full_like(inst, trash)).flatten()  # (n * H * W,)
        one = torch.ones((), dtype=torch.float64, device=pred.device).expand_as(key)

        def per_slot(hit: torch.Tensor) -> torch.Tensor:
            out = torch.zeros(trash + 1, dtype=torch.float64, device=pred.device)
            return out.scatter_add_(0, torch.where(hit.flatten(), key, torch.full_like(key, trash)), one)[:trash]

        size = per_slot(is_inst)  # (n * slots,)
        tp = per_slot(is_inst & (pred == cls))
        tp_cat = per_slot(is_inst & (category[pred] == category[cls]) & (category[cls] >= 0))
        present = size > 0
        ratio = torch.where(present, tp / size.clamp(min=1), torch.zeros_like(size))
        ratio_cat = torch.where(present, tp_cat / size.clamp(min=1), torch.zeros_like(size))
        # slot -> class: slot s of image i holds instance id s % slots, of label (s % slots) // d
        slot_class = label_lut[torch.arange(slots, device=pred.device) // d].repeat(n)  # (n * slots,)
        slot_class = torch.where(present, slot_class, torch.full_like(slot_class, k))
        for name, values in (("inst_count", present.long()), ("inst_tp", ratio), ("inst_tp_cat", ratio_cat)):
            total = torch.zeros(k + 1, dtype=values.dtype, device=pred.device)
            total.scatter_add_(0, slot_class, values)
            setattr(self, name, getattr(self, name) + total[:k])
        self.instances_seen += 1

    def reduce(self, device: torch.device | str = "cpu") -> None:
        """Sum the state over all processes (no-op without a process group). Call it on every process.

        Args:
            device: where the collective runs (CUDA for NCCL, CPU for gloo).
        """
        ints = torch.cat(
            [
                self.conf.flatten(),
                self.inst_count,
                self.invalid_targets.reshape(1),
                self.images.reshape(1),
                self.instances_seen.reshape(1),
            ]
        ).to(device)
        floats = torch.cat([self.inst_tp, self.inst_tp_cat]).to(device)
        all_reduce_(ints, floats)
        k = self.num_classes
        size = k * (k + 1)
        self.conf = ints[:size].view(k, k + 1).clone()
        self.inst_count = ints[size : size + k].clone()
        self.invalid_targets, self.images, self.instances_seen = (ints[size + k + i].clone() for i in range(3))
        self.inst_tp, self.inst_tp_cat = floats[:k].clone(), floats[k:].clone()

    # -- results -------------------------------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Images accumulated so far."""
        return int(self.images)

    def details(self) -> dict[str, dict[str, float]]:
        """Every score by name: ``{"iou": {class: ...}, "iiou": {class: ...}, "iou_category": {category: ...},
        "iiou_category": {category: ...}}`` (NaN where undefined, as cityscapesScripts reports them).

        Raises:
            ValueError: some targets were neither a class index nor ``ignore_index``.
        """
        if int(self.invalid_targets):
            raise ValueError(
                f"targets: {int(self.invalid_targets)} pixels were neither a class index in [0, {self.num_classes}) "
                f"nor the ignore label {self.ignore_index}"
            )
        for name in self._state():
            setattr(self, name, getattr(self, name).cpu())
        k = self.num_classes
        conf = self.conf.double()
        scored = conf[:, :k]  # (K, K): predictions that are classes
        tp = scored.diagonal()
        gt_total = conf.sum(1)  # every miss is a false negative, predictions of no class included
        pred_total = scored.sum(0)  # false positives come only from scored (non-ignored) pixels
        out: dict[str, dict[str, float]] = {"iou": {}, "iou_category": {}, "iiou": {}, "iiou_category": {}}
        for c, name in enumerate(self.classes):
            out["iou"][name] = _ratio(tp[c], gt_total[c] + pred_total[c] - tp[c])
        for name, members in self.categories.items():
            cat_tp = scored[members][:, members].sum()
            out["iou_category"][name] = _ratio(cat_tp, gt_total[members].sum() + pred_total[members].sum() - cat_tp)
        if self.instance_sizes:
            avg = torch.zeros(k, dtype=torch.float64)
            for c, size in self.instance_sizes.items():
                avg[c] = size
            count = self.inst_count.double()
            tp_w = avg * self.inst_tp  # sum over instances of tp * avg / size
            fn_w = avg * (count - self.inst_tp)  # sum over instances of (size - tp) * avg / size
            for c in sorted(self.instance_sizes):
                fp = pred_total[c] - tp[c]
                out["iiou"][self.classes[c]] = _ratio(tp_w[c], tp_w[c] + fp + fn_w[c])
            tp_cat_w = avg * self.inst_tp_cat
            fn_cat_w = avg * (count - self.inst_tp_cat)
            for name, members in self.instance_categories.items():
                cat_tp = scored[members][:, members].sum()
                fp = pred_total[members].sum() - cat_tp
                tp_m = tp_cat_w[members].sum()
                out["iiou_category"][name] = _ratio(tp_m, tp_m + fp + fn_cat_w[members].sum())
        return out

    def compute(self) -> dict[str, float]:
        """The metrics, fractions in [0, 1] (NaN when undefined):

        - ``miou``, ``pixel_acc``; ``miou_category`` with categories; ``iiou`` and ``iiou_category`` with
          ``instance_sizes`` (NaN until instance targets were seen);
        - ``iou/<class>`` for every class (spaces in names become ``_``); ``count``: images seen.

        Raises:
            ValueError: some targets were neither a class index nor ``ignore_index``.
        """
        scores = self.details()
        conf = self.conf.double()
        out: dict[str, float] = {"miou": _nanmean(scores["iou"].values())}
        total = conf.sum()
        out["pixel_acc"] = float(conf[:, : self.num_classes].diagonal().sum() / total) if total > 0 else math.nan
        if self.categories:
            out["miou_category"] = _nanmean(scores["iou_category"].values())
        if self.instance_sizes:
            seen = int(self.instances_seen) > 0
            out["iiou"] = _nanmean(scores["iiou"].values()) if seen else math.nan
            out["iiou_category"] = _nanmean(scores["iiou_category"].values()) if seen else math.nan
        for name, value in scores["iou"].items():
            out[f"iou/{name.replace(' ', '_')}"] = value
        out["count"] = float(self.count)
        return out

    def __repr__(self) -> str:
        return (
            f"SegmentationMeter(num_classes={self.num_classes}, ignore_index={self.ignore_index}, "
            f"categories={list(self.categories)}, instance_classes={sorted(self.instance_sizes)})"
        )


def _ratio(num: torch.Tensor, den: torch.Tensor) -> float:
    return float(num / den) if float(den) > 0 else math.nan


def _nanmean(values: Any) -> float:
    valid = [v for v in values if not math.isnan(v)]
    return sum(valid) / len(valid) if valid else math.nan
