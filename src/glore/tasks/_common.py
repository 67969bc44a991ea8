"""What several tasks share: building a zoo network from ``config.model``, checking ``config.task_args`` against a
task's typed settings, and refusing ``data.*`` values a task would drop."""

from __future__ import annotations

import warnings
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from glore.engine import Config
from glore.engine.settings import resolve_settings
from glore.engine.task import Task

__all__ = ["build_zoo_model", "dataset_parameters", "resolve_task_args"]


def build_zoo_model(config: Config, train_dataset: Dataset, **extra: Any) -> nn.Module:
    """``glore.models.create_model`` with ``config.model``; ``num_classes`` defaults to the dataset's.

    Args:
        config: the run's configuration.
        train_dataset: the training set (its ``num_classes``).
        **extra: further keyword arguments of the network (after ``model.kwargs``).

    Raises:
        ValueError: no class count, or one that differs from the dataset's.
    """
    from glore.models import create_model

    m = config.model
    dataset_classes = getattr(train_dataset, "num_classes", None)
    num_classes = m.num_classes if m.num_classes is not None else dataset_classes
    if num_classes is None:
        raise ValueError("model.num_classes: the dataset has no num_classes attribute; set it in the config")
    if dataset_classes is not None and num_classes != dataset_classes:
        raise ValueError(f"model.num_classes: {num_classes} does not match the dataset's {dataset_classes} classes")
    kwargs = {**m.kwargs, **extra}
    if m.pretrained is not None:
        kwargs["pretrained"] = m.pretrained
    # model.glore=null is the documented baseline switch: the recipe's unit options then have no units to configure.
    if m.glore_args and not m.glore:
        # legal (a baseline recipe derived from a GloRe one), but the options place no unit: say so
        warnings.warn(
            f"model.glore_args {dict(m.glore_args)} are ignored: model.glore is null, so the network has no units",
            stacklevel=2,
        )
    glore_args = (m.glore_args or None) if m.glore else None
    return create_model(m.name, num_classes=num_classes, glore=m.glore, glore_args=glore_args, **kwargs)


def resolve_task_args(config: Config | None, task: type[Task]) -> dict[str, Any]:
    """``config.task_args`` checked against ``task.settings`` and completed with their defaults, after the rest of
    ``task.check_config`` (the ``data.*`` values it would drop): what ``load_config`` checks, checked again for a
    ``Config`` built in code.

    Raises:
        ConfigError: an unknown key (named with the valid ones) or a value that does not fit, one line naming it.
    """
    if config is None:
        return resolve_settings({}, task.settings)
    task.check_config(config)
    return resolve_settings(config.task_args, task.settings)


USER_TRANSFORM = "data.transform is a user's factory"
"""Why the preprocessing fields are unused with ``data.transform: "package.module:factory"``."""


def user_transform(config: Config, *, train: bool) -> Any | None:
    """The transform of the user's factory ``data.transform`` names (``"package.module:factory"``), called as
    ``factory(train=train)``; None for ``standard`` and ``none``."""
    spec = config.data.transform
    if spec in ("standard", "none"):
        return None
    from glore.data.transforms import load_transform

    return load_transform(spec)(train=train)


def dataset_parameters(name: str) -> list[str]:
    """The keyword arguments the ``glore.data`` dataset ``name`` takes beyond root, split and transform (empty for
    a name that is not registered: ``create_dataset`` names it when the dataset is built)."""
    from glore.data import _DATASETS, _extra_arguments

    cls = _DATASETS.get(name.lower()) if isinstance(name, str) else None
    return _extra_arguments(cls) if cls is not None else []
