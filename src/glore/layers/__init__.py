"""Building blocks: the GloRe unit, its graph convolution, and the blocks it is compared with."""

from .glore import PRODUCT_ORDERS, GloRe, GraphConv, convert_official_state_dict, fuse, glore_macs
from .helpers import channels_last_format, check_feature_input, check_positive_int, make_divisible, to_channels_last
from .non_local import NonLocal
from .squeeze_excite import SqueezeExcite

__all__ = [
    "GloRe",
    "GraphConv",
    "NonLocal",
    "SqueezeExcite",
    "PRODUCT_ORDERS",
    "convert_official_state_dict",
    "fuse",
    "glore_macs",
    "make_divisible",
    "check_positive_int",
    "check_feature_input",
    "channels_last_format",
    "to_channels_last",
]
