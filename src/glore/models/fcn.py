"""Fully convolutional networks for semantic segmentation on dilated ResNets, with a GloRe head.

The paper's segmentation network (Chen et al. 2019, Sec. 4.3) is an FCN on a dilated ResNet-50/101 with one GloRe
unit before the classifier. Its official code ships no segmentation network; the layout follows PaddleSeg's public
GloRe model (``paddleseg/models/glore.py``, read for its facts, not copied)::

    image (n, 3, H, W)
      -> dilated ResNet (output stride 8: res4 dilation 2, res5 dilation 4) -> res5 (n, 2048, H/8, W/8)
      -> head: 1x1 conv 2048->512 + BN + ReLU -> unit (GloRe 64 nodes x 128 state | NonLocal | none)
               -> dropout 0.1 -> 1x1 conv 512->K           -> bilinear to (H, W)    = "out"
    res4 (n, 1024, H/8, W/8)
      -> aux head: 3x3 conv 1024->256 + BN + ReLU -> dropout 0.1 -> 1x1 conv 256->K
                                                           -> bilinear to (H, W)    = "aux"

Differences from PaddleSeg's head, each a choice: the unit is glore's :class:`~glore.layers.GloRe` (ReLU between
the graph convolution's two products, as the official unit does; PaddleSeg applies it after the second), it starts
as the identity (zero-initialised output norm, so a fresh head computes what the plain FCN head computes) and it
scales node states by 1/L by default (``unit_args={"normalize": False}`` gives PaddleSeg's unscaled states), which
keeps them the same size between 1024x512 training crops and 2048x1024 whole-image inference. The aux head's 3x3
convolution has no bias (a BN follows it; PaddleSeg's has one, 256 parameters). Each difference is an option, so
PaddleSeg's released networks compute the same function here (``glore.models.convert_paddleseg_state_dict``):
``backbone="resnet50d"`` with ``backbone_args={"dilate_first_block": True}``, ``unit_args={"normalize": False,
"gcn_act": "after"}`` and ``aux_conv_bias=True``.

Output contract: ``forward(x)`` returns a dict. In training mode, with an aux head, ``{"out": logits, "aux":
aux_logits}``; in eval mode ``{"out": logits}`` only, unless ``forward(x, aux=True)`` asks for the aux logits.
Both are (n, num_classes, H, W), upsampled (bilinear, ``align_corners=False``) to the input's size.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import GloRe, NonLocal
from ._builder import GloreNet
from ._registry import get_model_entrypoint, register_model
from ._spec import GloreSpec, check_glore_args
from ._weights import load_pretrained, load_state_dict_file
from .resnet import ResNet

__all__ = ["FCN", "FCNHead", "HEADS"]

HEADS = ("glore", "fcn", "nonlocal")
UNIT_ARGS = ("normalize", "gcn_layers", "order", "zero_init", "gcn_act", "preact")


def conv_bn_relu(in_chs: int, out_chs: int, kernel_size: int, bias: bool = False) -> nn.Sequential:
    """``kernel_size`` convolution (same size, no bias unless ``bias``), BatchNorm, ReLU: keys ``0.*``, ``1.*``."""
    return nn.Sequential(
        nn.Conv2d(in_chs, out_chs, kernel_size, padding=kernel_size // 2, bias=bias),
        nn.BatchNorm2d(out_chs),
        nn.ReLU(inplace=True),
    )


class FCNHead(nn.Module):
    """Conv-BN-ReLU, an optional context unit, dropout and a 1x1 classifier.

    Args:
        in_chs: input channels.
        channels: channels after the first convolution (the unit's width).
        num_classes: classifier outputs.
        kernel_size: kernel of the first convolution (1 for the main head, 3 for the aux head).
        unit: the context block after the convolution (``GloRe``, ``NonLocal``), or None.
        dropout: dropout probability before the classifier.
        conv_bias: give the first convolution a bias (PaddleSeg's aux head has one).
    """

    def __init__(
        self,
        in_chs: int,
        channels: int,
        num_classes: int,
        *,
        kernel_size: int = 1,
        unit: nn.Module | None = None,
        dropout: float = 0.1,
        conv_bias: bool = False,
    ) -> None:
        super().__init__()
        self.conv = conv_bn_relu(in_chs, channels, kernel_size, bias=conv_bias)
        self.unit: nn.Module = unit if unit is not None else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, kernel_size=1)
        self.channels = channels

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(n, in_chs, h, w) -> (n, channels, h, w): the classifier's input, before dropout."""
        return self.unit(self.conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(n, in_chs, h, w) -> logits (n, num_classes, h, w) at the input's resolution."""
        return self.classifier(self.dropout(self.forward_features(x)))


def _returned_class(fn: Any) -> Any:
    """The class a model builder is annotated to return (None if unreadable)."""
    try:
        return typing.get_type_hints(fn).get("return")
    except Exception:  # an unresolvable annotation
        return None


def _check_probability(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"FCN: {name} must be a probability in [0, 1), got {value!r}")
    return float(value)


def _check_channels(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"FCN: {name} must be a positive int, got {value!r}")
    return value


class FCN(GloreNet, nn.Module):
    """A dilated ResNet with an FCN head (plain, GloRe or Non-local) and an optional auxiliary head on res4.

    Args:
        backbone: a registered ResNet-family network (``"resnet50"``, ``"resnet101"``, ``"resnext50_32x4d"``, ...).
        num_classes: classes of the per-pixel classifier (19 for Cityscapes).
        head: ``"glore"`` (a GloRe unit after the head's first convolution), ``"fcn"`` (no unit) or
            ``"nonlocal"`` (an embedded-Gaussian NonLocal block at the same position), the paper's comparison.
        output_stride: the backbone's output stride (8: res4 and res5 dilated; 16: res5 dilated; 32: none). For
            ``resnet_small`` (stem reduces by 2) the values are 4, 8 and 16.
        aux: build the auxiliary FCN head on res4 (its loss is added in training).
        glore: insertion spec of GloRe units in the backbone (``"res4:1"``), besides the head's unit.
        glore_args: options of the backbone's units (see ``create_model``).
        head_channels: channels of the head's first convolution, and of the unit (PaddleSeg: 512).
        num_nodes: N, nodes of the head's GloRe unit (PaddleSeg: 64).
        num_state: S, state channels of the head's GloRe unit (PaddleSeg: 128).
        unit_args: further options of the head's unit: ``normalize``, ``gcn_layers``, ``order``, ``zero_init``,
            ``gcn_act``, ``preact`` for GloRe; ``zero_init`` for NonLocal.
        dropout: dropout before both classifiers.
        aux_channels: channels of the aux head's 3x3 convolution; res4's width / 4 when None (1024 -> 256).
        aux_conv_bias: give the aux head's 3x3 convolution a bias (PaddleSeg's AuxLayer).
        backbone_args: further architecture options of the backbone (``preact``, ``se_ratio``, ``widths``, ...).
        pretrained_backbone: a torchvision ImageNet checkpoint (file or URL) loaded into the backbone; its
            classifier (``fc.*``) is dropped, backbone units keep their identity init. Not part of
            ``model_config``: it names weights, not the architecture.
    """

    def __init__(
        self,
        *,
        backbone: str = "resnet50",
        num_classes: int = 19,
        head: str = "glore",
        output_stride: int = 8,
        aux: bool = True,
        glore: GloreSpec = None,
        glore_args: Mapping[str, Any] | None = None,
        head_channels: int = 512,
        num_nodes: int = 64,
        num_state: int = 128,
        unit_args: Mapping[str, Any] | None = None,
        dropout: float = 0.1,
        aux_channels: int | None = None,
        aux_conv_bias: bool = False,
        backbone_args: Mapping[str, Any] | None = None,
        pretrained_backbone: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        self._model_config: dict[str, Any] = {}
        if head not in HEADS:
            raise ValueError(f"FCN: head must be one of {HEADS}, got {head!r}")
        _check_channels("num_classes", num_classes)
        head_channels = _check_channels("head_channels", head_channels)
        dropout = _check_probability("dropout", dropout)
        if backbone_args is not None and not isinstance(backbone_args, Mapping):
            raise TypeError(
                f"FCN: backbone_args must be a dict of backbone options, got {type(backbone_args).__name__}"
            )
        for key in ("num_classes", "glore", "glore_args", "output_stride"):
            if key in (backbone_args or {}):
                raise ValueError(f"FCN: backbone_args may not set {key!r}; pass it to the FCN itself")
        build = get_model_entrypoint(backbone)
        if _returned_class(build) is not ResNet:
            raise ValueError(
                f"FCN: backbone must be a ResNet-family network (resnet*, seresnet*, resnext*), got {backbone!r}"
            )
        net = build(
            num_classes=0, glore=glore, glore_args=glore_args, output_stride=output_stride, **dict(backbone_args or {})
        )
        self.backbone = net
        self.head_type = head
        self.num_classes = num_classes
        self.output_stride = net.output_stride
        self.feature_info = [{**info, "module": f"backbone.{info['module']}"} for info in net.feature_info]
        res4_chs, res5_chs = net.feature_info[2]["num_chs"], net.feature_info[3]["num_chs"]

        self.head = FCNHead(
            res5_chs,
            head_channels,
            num_classes,
            kernel_size=1,
            unit=self._head_unit(head, head_channels, num_nodes, num_state, unit_args),
            dropout=dropout,
        )
        self.aux_head: FCNHead | None = None
        if aux:
            aux_chs = _check_channels("aux_channels", aux_channels if aux_channels is not None else res4_chs // 4)
            self.aux_head = FCNHead(
                res4_chs, aux_chs, num_classes, kernel_size=3, dropout=dropout, conv_bias=bool(aux_conv_bias)
            )
        self.num_features = head_channels
        self.init_head_weights()
        if pretrained_backbone is not None:
            self.load_backbone(pretrained_backbone)

    @staticmethod
    def _head_unit(
        head: str, channels: int, num_nodes: int, num_state: int, unit_args: Mapping[str, Any] | None
    ) -> nn.Module | None:
        if unit_args is not None and not isinstance(unit_args, Mapping):
            raise TypeError(f"FCN: unit_args must be a dict of the head unit's options, got {type(unit_args).__name__}")
        args = dict(unit_args or {})
        if head == "fcn":
            if args:
                raise TypeError(f"FCN: unit_args {sorted(args)} given, but head='fcn' has no unit")
            return None
        accepted = UNIT_ARGS if head == "glore" else ("zero_init",)
        for key in args:
            if key not in accepted:
                raise TypeError(f"FCN: unit_args: unknown option {key!r} for head={head!r}; expected {accepted}")
        if head == "nonlocal":
            return NonLocal(channels, **args)
        check_glore_args({**args, "num_nodes": num_nodes, "num_state": num_state})
        return GloRe(channels, num_nodes, num_state, **args)

    # ------------------------------------------------------------------------------------------------------------
    # The creation record: weights are not architecture.

    @property
    def model_config(self) -> dict[str, Any]:
        """The JSON dict that ``create_model(**model_config)`` rebuilds the network from (no weights' sources)."""
        return self._model_config

    @model_config.setter
    def model_config(self, config: Mapping[str, Any]) -> None:
        self._model_config = {k: v for k, v in config.items() if k != "pretrained_backbone"}

    # ------------------------------------------------------------------------------------------------------------
    # Weights.

    def init_head_weights(self) -> None:
        """Kaiming-normal (fan-out) convolutions, unit BN, classifiers normal(std 0.01) with zero bias; units own."""
        for head in (self.head, self.aux_head):
            if head is None:
                continue
            for name, m in head.named_modules():
                if name.startswith("unit"):
                    continue
                if isinstance(m, nn.Conv2d):
                    if name == "classifier":
                        nn.init.normal_(m.weight, std=0.01)
                        nn.init.zeros_(m.bias)
                    else:
                        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                        if m.bias is not None:
                            nn.init.zeros_(m.bias)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
            if hasattr(head.unit, "reset_parameters"):
                head.unit.reset_parameters()

    def load_backbone(self, source: str | os.PathLike[str] | Mapping[str, torch.Tensor]) -> FCN:
        """Load an ImageNet checkpoint of torchvision's layout into the backbone; its classifier is dropped.

        Args:
            source: a state dict, a ``.pth``/``.safetensors`` file or an http(s) URL.

        Returns:
            self.

        Raises:
            FileNotFoundError: no such file.
            ValueError: keys or shapes that do not fit the backbone (listed).
        """
        state = dict(source) if isinstance(source, Mapping) else load_state_dict_file(source)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        load_pretrained(self.backbone, state)
        return self

    def reset_classifier(self, num_classes: int) -> None:
        """New classifiers (main and aux) with ``num_classes`` outputs."""
        num_classes = _check_channels("num_classes", num_classes)
        self.num_classes = num_classes
        for head in (self.head, self.aux_head):
            if head is not None:
                old = head.classifier
                head.classifier = nn.Conv2d(head.channels, num_classes, kernel_size=1).to(old.weight)
                nn.init.normal_(head.classifier.weight, std=0.01)
                nn.init.zeros_(head.classifier.bias)
        if self._model_config:
            self._model_config["num_classes"] = num_classes

    # ------------------------------------------------------------------------------------------------------------
    # GloreNet's interface.

    def stage_modules(self) -> dict[str, nn.Module]:
        """The backbone's stage containers by the paper's name."""
        return self.backbone.stage_modules()

    def glore_spec(self) -> dict[str, tuple[int, ...]]:
        """Where the backbone's units are (the head's unit is set by ``head``)."""
        return self.backbone.glore_spec()

    # ------------------------------------------------------------------------------------------------------------
    # Forward.

    def forward_stages(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, in_chans, H, W) -> (res4, res5) features, both at H/output_stride when res5 is dilated."""
        net = self.backbone
        x = net.forward_stem(x)
        res4 = net.layer3(net.layer2(net.layer1(x)))
        res5 = net.layer4(res4)
        if net.preact:
            res5 = net.relu(net.final_norm(res5))
        return res4, res5

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(n, in_chans, H, W) -> res5 features (n, backbone width, H/output_stride, W/output_stride)."""
        return self.forward_stages(x)[1]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """res5 features -> logits (n, num_classes, h, w) at the features' size, or the head's features."""
        return self.head.forward_features(x) if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor, aux: bool | None = None) -> dict[str, torch.Tensor]:
        """(n, in_chans, H, W) -> ``{"out": (n, K, H, W)}``, plus ``"aux"`` in training mode (or if ``aux``).

        Args:
            x: the images.
            aux: return the aux head's logits; None: in training mode when the network has an aux head.

        Raises:
            ValueError: ``aux=True`` on a network built with ``aux=False``.
        """
        if x.dim() != 4:
            raise ValueError(f"FCN input x must have shape (n, C, H, W), got shape {tuple(x.shape)}")
        want_aux = self.training and self.aux_head is not None if aux is None else bool(aux)
        if want_aux and self.aux_head is None:
            raise ValueError("FCN.forward(aux=True): this network was built with aux=False (no aux head)")
        size = x.shape[-2:]
        res4, res5 = self.forward_stages(x)
        out = {"out": F.interpolate(self.head(res5), size=size, mode="bilinear", align_corners=False)}
        if want_aux:
            assert self.aux_head is not None
            out["aux"] = F.interpolate(self.aux_head(res4), size=size, mode="bilinear", align_corners=False)
        return out


def _fcn(defaults: dict[str, Any], kwargs: dict[str, Any]) -> FCN:
    return FCN(**{**defaults, **kwargs})


# Cityscapes: whole 1024 x 2048 images at evaluation, 19 classes; slide windows as the recipes set them.
_CITYSCAPES_CFG = {
    "task": "segmentation",
    "input_size": (3, 1024, 2048),
    "crop_pct": 1.0,
    "num_classes": 19,
    "eval_mode": "whole",
    "eval_crop": (1024, 1024),
    "eval_stride": (683, 683),
}


@register_model(default_cfg=_CITYSCAPES_CFG)
def fcn_resnet50(**kwargs: Any) -> FCN:
    """FCN on a dilated ResNet-50 (output stride 8), GloRe head (512 channels, 64 nodes, 128 state), aux head."""
    return _fcn(dict(backbone="resnet50"), kwargs)


@register_model(default_cfg=_CITYSCAPES_CFG)
def fcn_resnet101(**kwargs: Any) -> FCN:
    """FCN on a dilated ResNet-101 (output stride 8), GloRe head (512 channels, 64 nodes, 128 state), aux head."""
    return _fcn(dict(backbone="resnet101"), kwargs)


@register_model(
    default_cfg={**_CITYSCAPES_CFG, "input_size": (3, 96, 96), "eval_crop": (96, 96), "eval_stride": (64, 64)}
)
def fcn_resnet_small(**kwargs: Any) -> FCN:
    """A small FCN for 64-128 px inputs: ``resnet_small`` at output stride 8 (res5 dilated), a 64-channel head
    with a GloRe unit of 16 nodes x 32 state, an aux head of 32 channels."""
    defaults = dict(backbone="resnet_small", output_stride=8, head_channels=64, num_nodes=16, num_state=32)
    return _fcn(defaults, kwargs)
