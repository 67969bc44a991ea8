"""3D ResNets for video (the GloRe paper's Kinetics networks), their official checkpoints, and 2D-weight inflation.

The official network (facebookresearch/GloRe, ``network/resnet50_3d_gcn_x5.py`` and ``resnet101_3d_gcn_x5.py``,
read for its facts; see docs/video.md) is a pre-activation 3D ResNet:

- stem: Conv3d 3 -> 32, kernel (3, 5, 5), stride (1, 2, 2), padding (1, 2, 2); BN, ReLU; max-pool (1, 3, 3)
  stride (1, 2, 2) padding (0, 1, 1);
- stages res2..res5 of [3, 4, 6, 3] (R101 [3, 4, 23, 3]) bottlenecks with mid widths 64/128/256/512 and outputs
  256/512/1024/2048. Each bottleneck is BN-ReLU-conv (kt, 1, 1), BN-ReLU-conv (1, 3, 3) carrying the stride,
  BN-ReLU-conv 1x1x1, plus a projection shortcut (BN-ReLU-conv 1x1x1, its own BN) in each stage's first block;
  all BNs have eps 1e-4;
- temporal kernel kt = 3 in every res2 block, res3 blocks 1 and 3, the odd res4 blocks and res5 block 2 (1 elsewhere);
- strides (2, 2, 2) in res3 block 1 and (1, 2, 2) in res4 and res5 block 1 (so 8 frames become 4 after res3);
- a final BN-ReLU after res5, average pooling, dropout 0.5, a linear classifier to 400 classes;
- GloRe units (N = C/4 nodes, S = C/2 states, not normalised) after res3 blocks 1, 3 and res4 blocks 1, 3, 5 (R50)
  or res4 blocks 6, 12, 18 (R101).

glore builds the same network with its own names (``conv1, bn1, layer1..layer4, final_norm, fc``), the units placed
by the insertion spec, adaptive pooling (any number of frames, any size), and ``preact=False`` for a post-activation
variant whose keys are torchvision's, so torchvision ResNet checkpoints inflate into it::

    create_model("resnet50_3d", glore="res3:2,res4:3", glore_args={"normalize": False})             # official R50
    create_model("resnet101_3d", glore={"res3": [1, 3], "res4": [6, 12, 18]}, glore_args={"normalize": False})

:func:`convert_official_video_state_dict` renames a released checkpoint for these networks and
:func:`inflate_2d_state_dict` turns 2D ImageNet weights (the official "lite" layout or torchvision's) into 3D ones.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..layers import GloRe, NonLocal, convert_official_state_dict
from ._builder import GloreNet
from ._registry import register_model
from ._spec import STAGE_MODULES, STAGES, GloreSpec, check_glore_args, parse_glore_spec
from ._stage import Stage
from ._weights import load_pretrained, load_state_dict_file

__all__ = [
    "ResNet3D",
    "Bottleneck3d",
    "PreActBottleneck3d",
    "official_temporal_kernels",
    "convert_official_video_state_dict",
    "official_video_glore_spec",
    "inflate_2d_state_dict",
    "inflate_pretrained",
]

OFFICIAL_NORM_EPS = 1e-4


def _triple(name: str, value: int | Sequence[int]) -> tuple[int, int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value, value)
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 3:
        if all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
            return (int(value[0]), int(value[1]), int(value[2]))
    raise ValueError(f"ResNet3D: {name} must be a positive int or 3 positive ints (t, h, w), got {value!r}")


class Bottleneck3d(nn.Module):
    """Post-activation 3D bottleneck with torchvision's names: conv (kt,1,1), conv (1,3,3) strided, conv 1x1x1.

    ``conv1, bn1, conv2, bn2, conv3, bn3, downsample.0 (conv), downsample.1 (BN)`` are torchvision's keys, so a
    torchvision ResNet's weights inflate into it key for key.

    Args:
        in_chs: input channels.
        mid_chs: channels of the two inner convolutions.
        out_chs: output channels.
        temporal_kernel: kt of the first convolution (1 or 3 in the official networks), padded by kt // 2.
        stride: (temporal, spatial) stride of the (1, 3, 3) convolution and the shortcut.
        groups: groups of the (1, 3, 3) convolution.
        norm_eps: the BatchNorms' eps.
    """

    def __init__(
        self,
        in_chs: int,
        mid_chs: int,
        out_chs: int,
        *,
        temporal_kernel: int = 1,
        stride: tuple[int, int] = (1, 1),
        groups: int = 1,
        norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        kt, (st, ss) = temporal_kernel, stride
        self.conv1 = nn.Conv3d(in_chs, mid_chs, (kt, 1, 1), padding=(kt // 2, 0, 0), bias=False)
        self.bn1 = nn.BatchNorm3d(mid_chs, eps=norm_eps)
        self.conv2 = nn.Conv3d(
            mid_chs, mid_chs, (1, 3, 3), stride=(st, ss, ss), padding=(0, 1, 1), groups=groups, bias=False
        )
        self.bn2 = nn.BatchNorm3d(mid_chs, eps=norm_eps)
        self.conv3 = nn.Conv3d(mid_chs, out_chs, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(out_chs, eps=norm_eps)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if in_chs != out_chs or stride != (1, 1):
            self.downsample = nn.Sequential(
                nn.Conv3d(in_chs, out_chs, 1, stride=(st, ss, ss), bias=False), nn.BatchNorm3d(out_chs, eps=norm_eps)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(n, in_chs, T, H, W) -> (n, out_chs, T / st, H / ss, W / ss)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class PreActBottleneck3d(nn.Module):
    """The official pre-activation 3D bottleneck: BN-ReLU-conv (kt,1,1), BN-ReLU-conv (1,3,3), BN-ReLU-conv 1x1x1.

    The projection shortcut (stage's first block) is BN-ReLU-conv 1x1x1 with a BatchNorm of its own (the official
    ``conv_w1``), not the pre-activation of the main path. Names: ``bn1, conv1, bn2, conv2, bn3, conv3,
    downsample.norm, downsample.conv`` for the official ``conv_m1.{bn,conv}, conv_m2.*, conv_m3.*, conv_w1.*``.

    Args: as :class:`Bottleneck3d`; ``norm_eps`` defaults to the official 1e-4.
    """

    def __init__(
        self,
        in_chs: int,
        mid_chs: int,
        out_chs: int,
        *,
        temporal_kernel: int = 1,
        stride: tuple[int, int] = (1, 1),
        groups: int = 1,
        norm_eps: float = OFFICIAL_NORM_EPS,
    ) -> None:
        super().__init__()
        kt, (st, ss) = temporal_kernel, stride
        self.relu = nn.ReLU(inplace=True)
        self.bn1 = nn.BatchNorm3d(in_chs, eps=norm_eps)
        self.conv1 = nn.Conv3d(in_chs, mid_chs, (kt, 1, 1), padding=(kt // 2, 0, 0), bias=False)
        self.bn2 = nn.BatchNorm3d(mid_chs, eps=norm_eps)
        self.conv2 = nn.Conv3d(
            mid_chs, mid_chs, (1, 3, 3), stride=(st, ss, ss), padding=(0, 1, 1), groups=groups, bias=False
        )
        self.bn3 = nn.BatchNorm3d(mid_chs, eps=norm_eps)
        self.conv3 = nn.Conv3d(mid_chs, out_chs, 1, bias=False)
        self.downsample: nn.Module | None = None
        if in_chs != out_chs or stride != (1, 1):
            self.downsample = nn.Sequential(
                OrderedDict(
                    norm=nn.BatchNorm3d(in_chs, eps=norm_eps),
                    act=nn.ReLU(inplace=True),
                    conv=nn.Conv3d(in_chs, out_chs, 1, stride=(st, ss, ss), bias=False),
                )
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(n, in_chs, T, H, W) -> (n, out_chs, T / st, H / ss, W / ss)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.conv1(self.relu(self.bn1(x)))
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return out + identity


def official_temporal_kernels(depths: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """The official temporal kernel of each block's first convolution, per stage (res2..res5).

    3 in every res2 block, the odd blocks of res3 and res4 (1-based: 1, 3, 5, ...) and block 2 of res5; 1 elsewhere.
    For ResNet-50 ``((3, 3, 3), (3, 1, 3, 1), (3, 1, 3, 1, 3, 1), (1, 3, 1))``.
    """
    d2, d3, d4, d5 = depths
    odd = lambda d: tuple(3 if i % 2 == 1 else 1 for i in range(1, d + 1))  # noqa: E731
    return ((3,) * d2, odd(d3), odd(d4), tuple(3 if i == 2 else 1 for i in range(1, d5 + 1)))


class ResNet3D(GloreNet, nn.Module):
    """3D ResNet for video clips (n, C, T, H, W), pre-activation as the official GloRe networks, with units anywhere.

    Args:
        depths: blocks per stage, res2..res5 (R50: (3, 4, 6, 3); R101: (3, 4, 23, 3)).
        widths: mid width per stage; stage outputs are 4x (256, 512, 1024, 2048 by default).
        num_classes: classifier outputs (400 for Kinetics); 0 leaves the classifier out.
        in_chans: input channels.
        stem_width: channels of the stem convolution (32 officially; torchvision's 2D ResNets have 64).
        stem_kernel: (t, h, w) kernel of the stem convolution, stride (1, 2, 2), padding half the kernel.
        temporal_kernels: per stage, the temporal kernel of each block's first convolution; None: the official
            pattern (:func:`official_temporal_kernels`).
        temporal_strides: temporal stride of each stage's first block (officially (1, 2, 1, 1): res3 halves T).
        groups: groups of each block's (1, 3, 3) convolution.
        preact: the official pre-activation blocks (BN-ReLU-conv, final BN-ReLU); ``False`` builds post-activation
            blocks with torchvision's keys, into which torchvision ResNet weights inflate.
        norm_eps: eps of every BatchNorm; None: 1e-4 (official) with ``preact``, 1e-5 (torchvision's) without.
        drop_rate: dropout before the classifier (0.5 officially).
        glore: insertion spec of the units (``"res3:2,res4:3"``, ``{"res3": [1, 3], "res4": [6, 12, 18]}``).
        glore_args: the units' options; ``{"normalize": False}`` is the official arithmetic, ``{"block":
            "nonlocal"}`` puts NonLocal blocks at the same positions.
    """

    def __init__(
        self,
        *,
        depths: Sequence[int] = (3, 4, 6, 3),
        widths: Sequence[int] = (64, 128, 256, 512),
        num_classes: int = 400,
        in_chans: int = 3,
        stem_width: int = 32,
        stem_kernel: int | Sequence[int] = (3, 5, 5),
        temporal_kernels: Sequence[Sequence[int]] | None = None,
        temporal_strides: Sequence[int] = (1, 2, 1, 1),
        groups: int = 1,
        preact: bool = True,
        norm_eps: float | None = None,
        drop_rate: float = 0.5,
        glore: GloreSpec = None,
        glore_args: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        depths = self._four("depths", depths)
        widths = self._four("widths", widths)
        t_strides = self._four("temporal_strides", temporal_strides)
        kernels = official_temporal_kernels(depths) if temporal_kernels is None else temporal_kernels
        if len(kernels) != 4 or any(len(k) != d for k, d in zip(kernels, depths, strict=True)):
            raise ValueError(
                f"ResNet3D: temporal_kernels must give one odd kernel per block of each stage (depths {depths}), "
                f"got {temporal_kernels!r}"
            )
        kernels = tuple(tuple(int(k) for k in stage) for stage in kernels)
        if any(k < 1 or k % 2 == 0 for stage in kernels for k in stage):
            raise ValueError(f"ResNet3D: temporal kernels must be odd positive ints, got {temporal_kernels!r}")
        stem_k = _triple("stem_kernel", stem_kernel)
        if any(k % 2 == 0 for k in stem_k):
            raise ValueError(f"ResNet3D: stem_kernel must be odd in every dim, got {stem_kernel!r}")
        self.preact = bool(preact)
        eps = float(norm_eps) if norm_eps is not None else (OFFICIAL_NORM_EPS if preact else 1e-5)
        self.drop_rate = float(drop_rate)
        self.temporal_kernels = kernels
        unit_args = check_glore_args(glore_args)
        block_cls = PreActBottleneck3d if preact else Bottleneck3d

        # Stem: conv, BN, ReLU, max-pool (post-activation in both variants, as officially).
        self.conv1 = nn.Conv3d(
            in_chans, stem_width, stem_k, stride=(1, 2, 2), padding=tuple(k // 2 for k in stem_k), bias=False
        )
        self.bn1 = nn.BatchNorm3d(stem_width, eps=eps)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))

        spatial_strides = (1, 2, 2, 2)
        self.feature_info = []
        reduction, t_reduction = 4, 1
        for stage, width, ss, st in zip(STAGES, widths, spatial_strides, t_strides, strict=True):
            reduction, t_reduction = reduction * ss, t_reduction * st
            info = {"module": STAGE_MODULES[stage], "stage": stage, "num_chs": 4 * width, "reduction": reduction}
            self.feature_info.append({**info, "temporal_reduction": t_reduction})
        spec = parse_glore_spec(glore, dict(zip(STAGES, depths, strict=True)), warn=True)
        in_chs = stem_width
        for info, depth, width, ss, st, stage_kernels in zip(
            self.feature_info, depths, widths, spatial_strides, t_strides, kernels, strict=True
        ):
            out_chs = 4 * width
            blocks = [
                block_cls(
                    in_chs if i == 0 else out_chs,
                    width,
                    out_chs,
                    temporal_kernel=stage_kernels[i],
                    stride=(st, ss) if i == 0 else (1, 1),
                    groups=groups,
                    norm_eps=eps,
                )
                for i in range(depth)
            ]
            units = {p: self.glore_unit(info["stage"], **unit_args) for p in spec.get(info["stage"], ())}
            self.add_module(info["module"], Stage(blocks, units))
            in_chs = out_chs
        self.num_features = in_chs
        self.final_norm: nn.Module = nn.BatchNorm3d(in_chs, eps=eps) if preact else nn.Identity()

        # Head: adaptive pooling, so any number of frames and any size work.
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.num_classes = num_classes
        self.fc: nn.Module = nn.Linear(in_chs, num_classes) if num_classes > 0 else nn.Identity()
        self.init_weights()

    @staticmethod
    def _four(name: str, value: Sequence[int]) -> tuple[int, ...]:
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 4:
            raise ValueError(f"ResNet3D: {name} must be 4 positive ints, one per stage (res2..res5), got {value!r}")
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
            raise ValueError(f"ResNet3D: {name} must be 4 positive ints, one per stage (res2..res5), got {value!r}")
        return tuple(value)

    def init_weights(self) -> None:
        """The official init: Xavier-uniform convolutions and classifier with zero biases, unit BatchNorms.

        GloRe and NonLocal units keep their own (identity) init.
        """
        units = [m for m in self.modules() if isinstance(m, GloRe | NonLocal)]
        inside = {id(p) for u in units for p in u.modules()}
        for m in self.modules():
            if id(m) in inside:
                continue
            if isinstance(m, nn.Conv3d | nn.Linear):
                nn.init.xavier_uniform_(m.weight, gain=1.0)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for u in units:
            u.reset_parameters()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(n, in_chans, T, H, W) -> (n, num_features, T', H/32, W/32), T' = T / prod(temporal_strides)."""
        if x.dim() != 5:
            raise ValueError(
                f"ResNet3D expects a clip batch (n, C, T, H, W), got a {x.dim()}-d tensor of shape {tuple(x.shape)}"
            )
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        if self.preact:
            x = self.relu(self.final_norm(x))
        return x


def _resnet3d(defaults: dict[str, Any], kwargs: dict[str, Any]) -> ResNet3D:
    return ResNet3D(**{**defaults, **kwargs})


# Kinetics-400 as the paper tests it: 8 frames every 8, the shorter side resized to 256 and 224 x 224 crops.
_KINETICS_CFG = {"task": "video", "input_size": (3, 8, 224, 224), "frame_interval": 8, "num_classes": 400}
# The official networks (and their "lite" 2D weights) were trained on MXNet's normalisation (network/config.py of
# facebookresearch/GloRe): mean (124, 117, 104) / 255, std 1 / (0.0167 * 255). glore.data.video.OFFICIAL_MEAN/STD.
_OFFICIAL_CFG = {**_KINETICS_CFG, "mean": (124 / 255, 117 / 255, 104 / 255), "std": (1 / (0.0167 * 255),) * 3}


@register_model(default_cfg=_OFFICIAL_CFG)
def resnet50_3d(**kwargs: Any) -> ResNet3D:
    """The GloRe paper's 3D ResNet-50 (Kinetics): 3-4-6-3 pre-activation bottlenecks, 32-channel (3,5,5) stem.

    Official units: ``glore="res3:2,res4:3", glore_args={"normalize": False}``.
    """
    return _resnet3d(dict(depths=(3, 4, 6, 3)), kwargs)


@register_model(default_cfg=_OFFICIAL_CFG)
def resnet101_3d(**kwargs: Any) -> ResNet3D:
    """The GloRe paper's 3D ResNet-101 (Kinetics): 3-4-23-3 pre-activation bottlenecks.

    Official units: ``glore={"res3": [1, 3], "res4": [6, 12, 18]}, glore_args={"normalize": False}``.
    """
    return _resnet3d(dict(depths=(3, 4, 23, 3)), kwargs)


@register_model(default_cfg={**_KINETICS_CFG, "input_size": (3, 8, 32, 32), "frame_interval": 1, "crop_pct": 1.0})
def resnet_small_3d(**kwargs: Any) -> ResNet3D:
    """A small 3D ResNet for tests and CPU demos: one bottleneck per stage, mid widths 8-64, a 16-channel stem."""
    return _resnet3d(dict(depths=(1, 1, 1, 1), widths=(8, 16, 32, 64), stem_width=16), kwargs)


# ----------------------------------------------------------------------------------------------------------------
# Official checkpoints.

_BLOCK_KEY = re.compile(r"conv([2-5])\.B(\d+)\.(conv_m[123]|conv_w1)\.(bn|conv)\.(.+)")
_UNIT_KEY = re.compile(r"conv([2-5])\.B(\d+)_extra\.(.+)")
_PLAIN_KEYS = {"conv1.conv.": "conv1.", "conv1.bn.": "bn1.", "tail.bn.": "final_norm.", "classifier.": "fc."}


def _unwrap(state_dict: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of a bare state dict or of a ``{'epoch', 'state_dict'}`` checkpoint, without ``module.``."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a dict (a state dict or a checkpoint), got {type(state_dict).__name__}")
    if isinstance(state_dict.get("state_dict"), Mapping):
        state_dict = state_dict["state_dict"]
    bad = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise TypeError(f"state_dict: values must be tensors, got non-tensors under {bad[:5]}")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state_dict.items()}


def _official_block_key(stage: str, block: str, layer: str, kind: str, tail: str) -> str:
    """``conv3.B02.conv_m1.bn.weight`` -> ``layer2.1.bn1.weight``; ``conv_w1`` -> ``downsample.{norm,conv}``."""
    module = f"{STAGE_MODULES[STAGES[int(stage) - 2]]}.{int(block) - 1}"
    if layer == "conv_w1":
        return f"{module}.downsample.{'norm' if kind == 'bn' else 'conv'}.{tail}"
    return f"{module}.{kind}{layer[-1]}.{tail}"


def official_video_glore_spec(state_dict: Mapping[str, Any]) -> dict[str, list[int]]:
    """Where the units of an official video checkpoint sit: ``{"res3": [1, 3], "res4": [1, 3, 5]}``.

    Pass it as ``glore=`` (with ``glore_args={"normalize": False}``) to build the network the checkpoint fits.
    """
    spec: dict[str, set[int]] = {}
    for key in _unwrap(state_dict):
        match = _UNIT_KEY.fullmatch(key)
        if match:
            spec.setdefault(STAGES[int(match.group(1)) - 2], set()).add(int(match.group(2)))
    return {stage: sorted(spec[stage]) for stage in STAGES if stage in spec}


def _convert_official_names(state: Mapping[str, torch.Tensor], *, units: bool) -> dict[str, torch.Tensor]:
    # (stage, official block number) -> the unit's number in glore's Stage (glore1, glore2, ...)
    unit_index = {
        (stage, block): i + 1
        for stage, blocks in official_video_glore_spec(state).items()
        for i, block in enumerate(blocks)
    }
    converted: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state.items():
        plain = next((p for p in _PLAIN_KEYS if key.startswith(p)), None)
        block = _BLOCK_KEY.fullmatch(key)
        unit = _UNIT_KEY.fullmatch(key) if units else None
        if plain is not None:
            converted[_PLAIN_KEYS[plain] + key[len(plain) :]] = value
        elif block is not None:
            converted[_official_block_key(*block.groups())] = value
        elif unit is not None:
            stage = STAGES[int(unit.group(1)) - 2]
            prefix = f"{STAGE_MODULES[stage]}.glore{unit_index[(stage, int(unit.group(2)))]}."
            converted.update(convert_official_state_dict({prefix + unit.group(3): value}))
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(
            f"state_dict: {len(unknown)} keys are not keys of the official GloRe video network "
            f"(conv1.{{conv,bn}}, conv{{2..5}}.BNN.conv_m{{1,2,3}}/conv_w1.{{bn,conv}}, conv{{3,4}}.BNN_extra.*, "
            f"tail.bn, classifier): {unknown[:8]}"
        )
    return converted


def convert_official_video_state_dict(state_dict: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Convert a released GloRe Kinetics checkpoint into the state dict of glore's ``resnet50_3d``/``resnet101_3d``.

    Accepts the released ``{'epoch', 'state_dict'}`` form or a bare state dict, with or without the ``module.``
    prefix of DataParallel. Keys are renamed (``conv3.B02.conv_m1.bn.weight`` -> ``layer2.1.bn1.weight``,
    ``conv4.B03_extra.gcn.conv1.weight`` -> ``layer3.glore2.gcn.0.node_conv.weight``, ``tail.bn`` ->
    ``final_norm``, ``classifier`` -> ``fc``) and the units' 1x1x1 kernels reshaped; every other tensor is kept
    as is. The result loads strictly into ``create_model(name, glore=official_video_glore_spec(ckpt),
    glore_args={"normalize": False})`` and computes the same outputs.

    Raises:
        TypeError: ``state_dict`` is not a dict of tensors.
        ValueError: a key belongs to no part of the official network (the first ones are listed).
    """
    return _convert_official_names(_unwrap(state_dict), units=True)


# ----------------------------------------------------------------------------------------------------------------
# Inflation of 2D weights.


def inflate_2d_state_dict(
    state_dict: Mapping[str, Any], model: nn.Module, *, classifier: str = "fc"
) -> dict[str, torch.Tensor]:
    """Inflate a 2D ResNet's weights into the 3D network ``model``: each kernel repeated T times, divided by T.

    Two 2D layouts are read: the official "lite" ImageNet networks (``resnet50-lite.pth``, keys as the official
    3D network's: ``conv1.conv``, ``conv2.B01.conv_m1.{bn,conv}``, ...; they fit the default pre-activation
    ``resnet50_3d``/``resnet101_3d``), and torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``, ...; they fit
    the post-activation variant ``create_model("resnet50_3d", preact=False, stem_width=64, stem_kernel=(1, 7, 7))``,
    or ``(3, 7, 7)`` for a 3-frame stem). A (O, I, h, w) kernel becomes (O, I, T, h, w) with T the model's
    temporal kernel, ``w / T`` on every slice, so on a clip of identical frames a temporal convolution sees the 2D
    response; BatchNorm and other tensors are copied. GloRe/NonLocal units are absent from 2D weights and keep
    their identity init; a classifier whose shape differs is passed through as it is (``load_pretrained`` then
    keeps the model's fresh one, with a warning).

    Args:
        state_dict: the 2D weights (a bare state dict or a checkpoint holding one under ``state_dict``; a
            ``module.`` prefix is removed).
        model: the 3D network that will receive the weights (its shapes give each T).
        classifier: the classifier's name in ``model``.

    Returns:
        A state dict for ``load_pretrained(model, inflated)``.

    Raises:
        ValueError: a tensor of the 2D weights has no counterpart in ``model`` or an incompatible shape; the
            message names the layouts and the variant they fit.
    """
    state = _unwrap(state_dict)
    official = any(_BLOCK_KEY.fullmatch(k) for k in state)
    if official:
        state = _convert_official_names(state, units=False)
    own = model.state_dict()
    inflated: dict[str, torch.Tensor] = {}
    problems = []
    for key, value in state.items():
        if key not in own:
            problems.append(f"{key}: not in the model")
            continue
        target = own[key].shape
        if key.startswith(classifier + ".") and tuple(value.shape) != tuple(target):
            inflated[key] = value  # another number of classes: load_pretrained keeps the fresh one, with a warning
            continue
        if value.dim() == 4 and len(target) == 5 and (target[:2] + target[3:]) == value.shape:
            t = target[2]
            # (O, I, h, w) -> (O, I, 1, h, w) -> (O, I, T, h, w), each slice w / T
            value = (value / t).unsqueeze(2).expand(-1, -1, t, -1, -1).contiguous()
        elif tuple(value.shape) != tuple(target):
            problems.append(f"{key}: 2D {tuple(value.shape)} vs 3D {tuple(target)}")
            continue
        inflated[key] = value
    if problems:
        layout = "official lite" if official else "torchvision"
        fits = (
            "the pre-activation resnet50_3d/resnet101_3d (the default)"
            if official
            else "the post-activation variant: create_model(name, preact=False, stem_width=64, stem_kernel=(1, 7, 7))"
        )
        raise ValueError(
            f"inflate_2d_state_dict: the {layout} 2D weights do not fit {type(model).__name__} "
            f"({len(problems)} problems: {problems[:6]}); {layout} weights fit {fits}"
        )
    return inflated


def inflate_pretrained(
    model: nn.Module, source: str | os.PathLike[str] | Mapping[str, torch.Tensor], *, classifier: str = "fc"
) -> nn.Module:
    """Load 2D ImageNet weights (a file, URL or state dict) into the 3D ``model`` by inflation; returns ``model``.

    See :func:`inflate_2d_state_dict`; units keep their identity init, a classifier of another shape its fresh one.
    """
    state = source if isinstance(source, Mapping) else load_state_dict_file(source)
    return load_pretrained(model, inflate_2d_state_dict(state, model, classifier=classifier), classifier=classifier)
