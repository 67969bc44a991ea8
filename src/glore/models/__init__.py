"""The networks of the paper, with GloRe units anywhere: registry, builders, attach and weights."""

from . import dpn, fcn, resnet, resnet3d  # noqa: F401  (registers the families)
from ._builder import GloreNet, create_model, resolve_data_config
from ._registry import IMAGENET_CFG, get_default_cfg, is_model, list_models, register_model
from ._spec import STAGES, parse_glore_spec, unit_positions
from ._stage import Stage
from ._weights import load_pretrained
from .attach import attach
from .convert import convert_mindspore_checkpoint, convert_paddleseg_state_dict
from .dpn import DPN
from .resnet import ResNet
from .resnet3d import ResNet3D, convert_official_video_state_dict, inflate_2d_state_dict, inflate_pretrained

__all__ = [
    "IMAGENET_CFG",
    "STAGES",
    "attach",
    "DPN",
    "GloreNet",
    "ResNet",
    "ResNet3D",
    "convert_mindspore_checkpoint",
    "convert_official_video_state_dict",
    "convert_paddleseg_state_dict",
    "inflate_2d_state_dict",
    "inflate_pretrained",
    "Stage",
    "create_model",
    "get_default_cfg",
    "is_model",
    "list_models",
    "load_pretrained",
    "parse_glore_spec",
    "register_model",
    "resolve_data_config",
    "unit_positions",
]
