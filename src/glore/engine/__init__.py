"""Training engine: configuration, the task-agnostic loop, checkpoints, several processes, logs and schedules."""

from .checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from .config import Config, ConfigError, apply_overrides, config_to_dict, load_config, save_config
from .optim import build_optimizer, param_groups
from .schedules import build_scheduler, lr_factor
from .task import TASKS, Meter, Task, build_task, register_task
from .trainer import NonFiniteLossError, Trainer, TrainingStopped, evaluate, train

__all__ = [
    "CheckpointError",
    "Config",
    "Meter",
    "ConfigError",
    "NonFiniteLossError",
    "TASKS",
    "Task",
    "Trainer",
    "TrainingStopped",
    "apply_overrides",
    "build_optimizer",
    "build_task",
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
