"""Training engine: configuration, the task-agnostic loop, checkpoints, several processes, logs and schedules."""

from .checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from .config import Config, ConfigError, apply_overrides, config_to_dict, load_config, save_config
from .schedules import build_scheduler, lr_factor
from .trainer import (
    TASKS,
    ClassificationTask,
    NonFiniteLossError,
    Task,
    Trainer,
    build_optimizer,
    evaluate,
    param_groups,
    register_task,
    train,
)

__all__ = [
    "CheckpointError",
    "ClassificationTask",
    "Config",
    "ConfigError",
    "NonFiniteLossError",
    "TASKS",
    "Task",
    "Trainer",
    "apply_overrides",
    "build_optimizer",
    "build_scheduler",
    "config_to_dict",
    "evaluate",
    "load_checkpoint",
    "load_config",
    "load_model",
    "lr_factor",
    "param_groups",
    "register_task",
    "save_checkpoint",
    "save_config",
    "train",
]
