"""Video action recognition: clips of T frames, cross-entropy, and evaluation over K temporal clips x M spatial crops
per video with clip and video top-k (``glore.metrics.video.VideoMeter``).

Evaluation datasets enumerate views: each index is one (video, clip, crop) and its ``meta["video"]`` says which
video. The engine's shard sampler evaluates every view once across processes and the meter sums per video, so a
video's views may be split between processes without being lost or counted twice.

Preprocessing: ``data.mean`` and ``data.std``, where a recipe sets them, normalise the clips of every dataset that
decodes videos; left at their defaults, the dataset's preprocessing preset decides (``data.kwargs.preprocess``:
ImageNet's statistics for ``glore``, MXNet's for ``official``). The dataset's sampling, crops and flips come from
``data.kwargs``/``train_kwargs``/``val_kwargs``; the generated ``relational_video`` data normalises itself.
``data.*`` fields the video task does not apply (``color_jitter``, ``crop_scale``, ``eval_crop_ratio``) are refused
when the config loads.

``config.task_args`` (all optional; ``VideoTask.settings``, from which this table is written):

"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from glore.engine.config import Config, ConfigError, DataConfig
from glore.engine.settings import Setting, settings_table
from glore.engine.task import Meter, Task, register_task

from ._common import USER_TRANSFORM, build_zoo_model, dataset_parameters, resolve_task_args, user_transform
from ._inputs import dataset_option, generated, input_batch, video_dataset, video_views

__all__ = ["VideoTask", "official_precise_batchnorm", "precise_bn_frozen", "precise_batchnorm"]


@register_task("video")
class VideoTask(Task):
    """Video classification (``config.task: video``).

    Datasets return ``(clip (3, T, H, W), label, meta)`` with ``meta["video"]`` the video index and expose
    ``num_classes``, ``classes`` and, for evaluation, ``num_views`` (views per video). Networks map clips
    (n, 3, T, H, W) to logits.
    """

    metrics = {"video_top1": "max", "video_top5": "max", "clip_top1": "max", "clip_top5": "max"}
    train_metrics = False
    settings: ClassVar[dict[str, Setting]] = {
        "save_predictions": Setting(
            str | None, None, "a CSV file: one row per video, its top-5 classes and probabilities"
        ),
        "inflate": Setting(
            str | None,
            None,
            "a 2D ImageNet checkpoint (official 'lite' or torchvision layout) inflated into the 3D "
            "network before training",
        ),
        "precise_bn": Setting(
            int,
            0,
            "before each checkpoint, re-estimate BatchNorm statistics over this many training batches (0: off), "
            "as precise_bn_mode says",
            ge=0,
        ),
        "precise_bn_mode": Setting(
            Literal["average", "official"],
            "average",
            "average: the statistics become the plain average over the batches (SlowFast); official: the "
            "official code's two phases, training steps on the first 80% of the batches with biases and "
            "BatchNorm scales fixed, then forward passes whose running averages become the statistics",
        ),
    }

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.args = resolve_task_args(config, type(self))

    @classmethod
    def unused_data(cls, data: DataConfig) -> dict[str, str]:
        """The image-classification preprocessing fields; ``mean``/``std`` for data that normalises itself, and
        ``transform: none`` for a dataset that decodes videos (it has no other preprocessing)."""
        unused = {
            "color_jitter": "video training augmentation is the dataset's, set in data.train_kwargs",
            "crop_scale": "the training short-side range is data.train_kwargs.short_side",
            "eval_crop_ratio": "test views are data.kwargs.crop_size crops of data.val_kwargs.test_short_side",
        }
        if "mean" not in dataset_parameters(data.name):
            why = f"{data.name} makes normalised clips itself"
            unused.update(mean=why, std=why)
        elif data.transform == "none":  # a decoding dataset needs a clip transform: its own, or a user's factory's
            unused["transform"] = (
                f"{data.name} decodes, crops and normalises clips itself; leave it at standard or name a "
                "'package.module:factory'"
            )
        if data.transform not in ("standard", "none"):
            unused.update(mean=USER_TRANSFORM, std=USER_TRANSFORM)
        return unused

    @classmethod
    def check_config(cls, config: Config) -> None:
        """``Task.check_config``, and the normalisation set once: ``data.mean``/``data.std``, not in the dataset's
        keyword arguments."""
        super().check_config(config)
        d = config.data
        for where in ("kwargs", "train_kwargs", "val_kwargs"):
            for name in ("mean", "std"):
                if name in getattr(d, where) and "mean" in dataset_parameters(d.name):
                    raise ConfigError(f"data.{where}.{name}: set data.{name} (the video task passes it to the dataset)")

    def build_dataset(self, split: str, *, train: bool) -> Dataset:
        """A video dataset from ``config.data`` (sizes and sampling in ``data.kwargs``/``train_kwargs``/
        ``val_kwargs``; the dataset applies its own training or test sampling and augmentation)."""
        from glore.data import create_dataset

        d = self.config.data
        return create_dataset(d.name, d.root, split, on_error=d.on_error, **self.dataset_kwargs(train=train))

    def dataset_kwargs(self, *, train: bool) -> dict[str, Any]:
        """The keyword arguments ``build_dataset`` passes to the dataset: ``data.kwargs`` with ``train_kwargs`` or
        ``val_kwargs``, ``train``, and ``data.mean``/``data.std`` for a dataset that decodes videos."""
        d = self.config.data
        kwargs = {**d.kwargs, **(d.train_kwargs if train else d.val_kwargs)}
        parameters = dataset_parameters(d.name)
        if "train" in parameters:
            kwargs.setdefault("train", train)
        custom = user_transform(self.config, train=train)
        if custom is not None:
            kwargs["transform"] = custom
        if "mean" in parameters:  # a decoding dataset: it normalises with data.mean/std where the recipe sets them
            defaults = DataConfig()
            for name in ("mean", "std"):
                value = list(getattr(d, name))
                if value != list(getattr(defaults, name)):
                    kwargs[name] = value
        return kwargs

    def build_datasets(self) -> tuple[Dataset, Dataset | None]:
        """The training and validation datasets. A validation split of a dataset that takes ``classes`` is read with
        the training split's classes (unless ``data.kwargs``/``val_kwargs`` name them): labels keep the training
        indices when it lacks a class, and a class the training split lacks is an error naming it. The two class
        lists must then be equal (``glore.data.check_classes``), in every layout.

        Raises:
            ValueError: the validation split's classes differ from the training split's (one line naming the first
                difference).
        """
        from glore.data import check_classes

        d = self.config.data
        train_set = self.build_dataset(d.train_split, train=True)
        if not d.val_split:
            return train_set, None
        classes = getattr(train_set, "classes", None)
        given = {**d.kwargs, **d.val_kwargs}
        val_kwargs = d.val_kwargs
        if classes is not None and "classes" in dataset_parameters(d.name) and "classes" not in given:
            d.val_kwargs = {**val_kwargs, "classes": list(classes)}
        try:
            val_set = self.build_dataset(d.val_split, train=False)
        finally:
            d.val_kwargs = val_kwargs
        found = getattr(val_set, "classes", None)
        if classes is not None and found is not None:
            where = (f"the {d.train_split!r} split", f"the {d.val_split!r} split")
            check_classes(list(classes), list(found), expected_from=where[0], found_from=where[1])
        return train_set, val_set

    def build_model(self, train_dataset: Dataset) -> nn.Module:
        """``glore.models.create_model`` with ``config.model`` (a 3D network such as ``resnet50_3d``); with
        ``task_args.inflate``, 2D ImageNet weights inflated into it (kernels repeated over time, divided by T; units
        keep their identity init, the classifier its fresh one)."""
        model = build_zoo_model(self.config, train_dataset)
        if self.args["inflate"]:
            from glore.models.resnet3d import inflate_pretrained

            inflate_pretrained(model, self.args["inflate"])
        return model

    def before_checkpoint(self, model: nn.Module, batches: Any, to_device: Any, step: Any = None) -> None:
        """Precise BN (``task_args.precise_bn`` batches): the official code and SlowFast re-estimate BatchNorm
        statistics after training, since the running averages lag behind the weights; ``precise_bn_mode`` says
        how (``precise_batchnorm`` or ``official_precise_batchnorm``, whose training steps are the loop's ``step``).

        Raises:
            ValueError: ``precise_bn_mode: official`` without a training loop's ``step``.
        """
        count = int(self.args["precise_bn"])
        if count <= 0:
            return
        if self.args["precise_bn_mode"] == "average":
            precise_batchnorm(model, batches(), count, to_device)
            return
        if step is None:
            raise ValueError("task_args.precise_bn_mode: 'official' trains during precise BN; it runs in glore train")
        # The official split: the last fifth only updates the statistics. An epoch shorter than ``count`` batches
        # (a small dataset) is split alike, so that the statistics phase always runs.
        count = min(count, len(batches)) if hasattr(batches, "__len__") else count
        stat_steps = max(1, int(round(0.2 * count)))
        official_precise_batchnorm(
            model,
            batches(),
            train_steps=count - stat_steps,
            stat_steps=stat_steps,
            step=step,
            to_device=to_device,
        )

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor, *, train: bool) -> torch.Tensor:
        """Cross-entropy in float32, with ``train.label_smoothing`` during training only."""
        smoothing = self.config.train.label_smoothing if train else 0.0
        return F.cross_entropy(outputs.float(), targets, label_smoothing=smoothing)

    def create_meter(self, dataset: Dataset, *, train: bool = False) -> Meter:
        """A ``VideoMeter`` over the dataset's videos and views; when ``task_args.save_predictions`` names a file,
        its results are also written there as per-video predictions (``write_video_predictions``)."""
        from glore.metrics.video import VideoMeter

        num_classes = int(getattr(dataset, "num_classes", None) or self.config.model.num_classes)
        num_views = int(getattr(dataset, "num_views", 1))
        num_videos = int(getattr(dataset, "num_videos", 0) or max(len(dataset) // num_views, 1))
        meter = VideoMeter(num_classes, num_videos, num_views, ks=(1, 5) if num_classes > 5 else (1,))
        path = None if train else self.args["save_predictions"]
        if path is None:
            return meter
        return _PredictionsWriter(
            meter, Path(path), getattr(dataset, "classes", None), getattr(dataset, "video_names", None)
        )

    # -- raw inputs ---------------------------------------------------------------------------------------------

    def load_input(self, path: str) -> Any:
        """A video file as the evaluation dataset makes it: every test view (``num_clips`` x ``num_crops``) sampled,
        decoded and transformed by ``glore.data.video.VideoDataset`` with ``dataset_kwargs(train=False)``. For the
        generated ``relational_video`` data: one clip of ``num_frames`` consecutive frames, its shorter side and
        centre crop at the data's ``image_size``, normalised as that data normalises itself. Inputs
        (views, 3, T, H, W); ``predict`` (``eval_step``) gives each view's logits."""
        d = self.config.data
        if generated(d.name):
            t, side, _ = self.input_size()
            mean, std = self.input_normalization()
            options = dict(num_frames=t, interval=1, num_clips=1, num_crops=1, crop_size=side, test_short_side=side)
            return input_batch(video_views(path, {**options, "mean": mean, "std": std}), path)
        return input_batch(video_views(path, self.dataset_kwargs(train=False)), path)

    def input_size(self, model: nn.Module | None = None) -> tuple[int, ...]:
        """(T, H, W) of one evaluation clip: ``num_frames`` and ``crop_size`` (``image_size`` for the generated
        data) of the evaluation dataset's options, else the dataset's defaults."""
        d = self.config.data
        kwargs = self.dataset_kwargs(train=False)
        side_key = "image_size" if generated(d.name) else "crop_size"
        frames, side = (dataset_option(d.name, kwargs, key) for key in ("num_frames", side_key))
        return int(frames), int(side), int(side)

    def input_normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The statistics the evaluation clips are normalised with: the video dataset's (``data.mean``/``data.std``
        or its preprocessing preset's), or the generated data's own."""
        if generated(self.config.data.name):
            from glore.data import RELATIONAL_MEAN, RELATIONAL_STD

            return tuple(RELATIONAL_MEAN), tuple(RELATIONAL_STD)
        dataset = video_dataset("", self.dataset_kwargs(train=False))
        return tuple(dataset.mean.flatten().tolist()), tuple(dataset.std.flatten().tolist())


def _empty(batch: Any) -> bool:
    inputs = getattr(batch, "inputs", None)
    return isinstance(inputs, torch.Tensor) and (inputs.dim() == 0 or inputs.shape[0] == 0)


@torch.no_grad()
def precise_batchnorm(model: nn.Module, batches: Any, count: int, to_device: Any = lambda b: b) -> int:
    """Replace every BatchNorm's running mean and variance by their plain average over ``count`` batches in training
    mode, with ``torch.optim.swa_utils.update_bn`` (momentum ``None``: a cumulative average, the same tensors as a
    loop of our own, tests/tasks/test_precise_bn.py), then restore the momenta and the model's mode, also when a
    batch fails. Batches with no sample (all skipped as unreadable) are passed over and not counted.

    Returns:
        The number of batches used (fewer when ``batches`` ends first).
    """
    from torch.optim.swa_utils import update_bn

    used = 0

    def inputs() -> Any:
        nonlocal used
        for batch in batches:
            if used >= count:
                break
            if _empty(batch):  # every sample of it was skipped (data.on_error: skip)
                continue
            used += 1
            yield (to_device(batch).inputs,)  # update_bn calls the model on the first item of a tuple

    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta, was_training = [m.momentum for m in norms], model.training
    try:
        update_bn(inputs(), model)
    finally:  # update_bn restores them only when every batch went through
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.train(was_training)
    return used


__doc__ = (__doc__ or "") + settings_table(VideoTask.settings) + "\n"


class _PredictionsWriter:
    """A meter that computes what its ``VideoMeter`` does, then writes the per-video predictions (main process)."""

    def __init__(
        self, meter: Any, path: Path, class_names: Sequence[str] | None, video_names: Sequence[str] | None
    ) -> None:
        self.meter, self.path, self.class_names, self.video_names = meter, path, class_names, video_names

    def update(self, preds: Any, targets: Any, meta: Any) -> None:
        self.meter.update(preds, targets, meta)

    def reduce(self, device: torch.device | str = "cpu") -> None:
        self.meter.reduce(device)

    def compute(self) -> dict[str, float]:
        from glore.engine.distributed import is_main_process

        out = self.meter.compute()
        if is_main_process():
            write_video_predictions(self.path, self.meter, self.class_names, self.video_names)
        return out


def write_video_predictions(
    path: str | Path,
    meter: Any,
    class_names: Sequence[str] | None = None,
    video_names: Sequence[str] | None = None,
    topk: int = 5,
) -> Path:
    """Write a CSV of one row per evaluated video: its index, name, label, top-k classes and their probabilities
    (the softmax averaged over the video's views, ``VideoMeter.video_scores``), atomically.

    Returns:
        ``path``.
    """
    import csv

    from glore._io import atomic_path

    indices, mean, labels = meter.video_scores()
    names = list(class_names) if class_names else [str(i) for i in range(meter.num_classes)]
    k = min(topk, meter.num_classes)
    probs, top = mean.topk(k, dim=1) if len(mean) else (mean.new_zeros(0, k), torch.zeros(0, k, dtype=torch.int64))
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video", "name", "label", *[f"top{i + 1}" for i in range(k)], "probabilities"])
        for row, video in enumerate(indices.tolist()):
            name = video_names[video] if video_names is not None else ""
            label = names[int(labels[row])] if labels[row] >= 0 else ""
            classes = [names[c] for c in top[row].tolist()]
            writer.writerow([video, name, label, *classes, " ".join(f"{float(p):.4f}" for p in probs[row])])
    return path


def precise_bn_frozen(model: nn.Module) -> list[nn.Parameter]:
    """The parameters the official precise BN keeps fixed while it trains: every bias and the scale of every
    BatchNorm of the network, except the BatchNorms inside GloRe units (the official unit's is named ``blocker``,
    which its ``*bn.weight`` name filter does not match)."""
    from glore.layers import GloRe

    inside_units = {id(m) for unit in model.modules() if isinstance(unit, GloRe) for m in unit.modules()}
    frozen = {id(p): p for name, p in model.named_parameters() if name.endswith(".bias") or name == "bias"}
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and id(module) not in inside_units:
            if module.weight is not None:
                frozen[id(module.weight)] = module.weight
    return list(frozen.values())


def official_precise_batchnorm(
    model: nn.Module,
    batches: Any,
    *,
    train_steps: int,
    stat_steps: int,
    step: Any,
    to_device: Any = lambda b: b,
) -> tuple[int, int]:
    """The official precise BN (``train/model.py``, ``fit``): in the last iterations of each epoch, ``train_steps``
    more training steps (``step(batch, params)``: the loop's step at the current learning rate) that update every
    parameter but those of ``precise_bn_frozen`` (the running statistics follow, the model being in training mode),
    then ``stat_steps`` forward passes in training mode without gradients, whose running averages (each BatchNorm's
    momentum, 0.1 by default) become the statistics. The official code takes 400 + 100 of its batches. A second phase
    shorter than the running averages need to forget their start ((1 - momentum)^stat_steps > 1e-3, fewer than 66
    batches at momentum 0.1) takes the plain average of its batches instead. Batches with no sample (all skipped as
    unreadable) are passed over and not counted.

    Args:
        model: the network (unwrapped); ``step`` trains the same weights (through its distributed wrapper).
        batches: an iterator over training batches (host), the second phase continuing after the first.
        train_steps: batches of the first phase.
        stat_steps: batches of the second phase.
        step: ``step(batch, params) -> loss``.
        to_device: moves a batch to the device (second phase).

    Returns:
        The batches used by each phase (fewer when ``batches`` ends first).
    """
    frozen = {id(p) for p in precise_bn_frozen(model)}
    trained = [p for p in model.parameters() if p.requires_grad and id(p) not in frozen]
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    momenta = [m.momentum for m in norms]
    # A statistics phase too short for the running averages to forget where they started (a small dataset: more
    # than 1e-3 of the old value left) averages its batches instead, what a long phase converges to.
    short = any(m is not None and (1 - m) ** stat_steps > 1e-3 for m in momenta)
    was_training = model.training
    done = [0, 0]
    model.train()
    try:
        for batch in batches:
            if done[0] >= train_steps and done[1] >= stat_steps:
                break
            if _empty(batch):
                continue
            if done[0] < train_steps:
                step(batch, trained)
                done[0] += 1
                continue
            if done[1] == 0 and short:
                for norm in norms:
                    norm.reset_running_stats()
                    norm.momentum = None  # a cumulative average over the phase's batches
            with torch.no_grad():
                model(to_device(batch).inputs)
            done[1] += 1
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        model.train(was_training)
    return done[0], done[1]
