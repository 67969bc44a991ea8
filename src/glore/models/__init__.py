"""The networks of the paper, with GloRe units anywhere: registry, builders, attach and weights."""

from . import dpn, resnet  # noqa: F401  (registers the families)
from ._builder import STAGES, GloreNet, Stage, create_model, load_pretrained, parse_glore_spec, unit_positions
from ._registry import is_model, list_models, register_model
from .attach import attach
from .dpn import DPN
from .resnet import ResNet

__all__ = [
    "STAGES",
    "attach",
    "DPN",
    "GloreNet",
    "ResNet",
    "Stage",
    "create_model",
    "is_model",
    "list_models",
    "load_pretrained",
    "parse_glore_spec",
    "register_model",
    "unit_positions",
]
