"""ResNets (He et al. 2016): torchvision's v1.5, the pre-activation variant, SE-ResNets and ResNeXts, with GloRe.

The default network is torchvision's post-activation ResNet v1.5 (stride in the 3x3 convolution) with its
state-dict names (``conv1``, ``bn1``, ``layer1..4``, ``fc``, ``downsample.0/.1``), so its checkpoints load.
``preact=True`` builds the pre-activation ResNet (He et al., "Identity Mappings in Deep Residual Networks") that
the paper's MXNet models use: BN-ReLU before each convolution, a projection shortcut on the pre-activated input,
and a final BN-ReLU before pooling.

ResNet-D (He et al., "Bag of Tricks for Image Classification", 2019; timm's ``resnet50d``, PaddlePaddle's
``ResNet50_vd``) is ``stem_type="deep"`` (three 3x3 convolutions, 32-32-64 channels, instead of one 7x7) with
``avg_down=True`` (a strided shortcut average-pools 2x2 and then projects with a stride-1 1x1 convolution), under
timm's state-dict names (``conv1.0/.1/.3/.4/.6``, ``downsample.1/.2``). Options that other frameworks' networks
need to compute the same function: ``norm_eps`` (MindSpore's 1e-4), ``same_padding`` (TensorFlow/MindSpore
"same" padding of strided convolutions and the max-pool: the extra row and column at the bottom and right),
``dilate_first_block`` (PaddleSeg dilates the first block of a dilated stage too) and ``shortcut_norm``
(a pre-activation shortcut with a BatchNorm of its own).

GloRe units go after the blocks named by the insertion spec (see ``_spec.parse_glore_spec``)::

    stem -> layer1 (res2) -> layer2 (res3) -> layer3 (res4) -> layer4 (res5) -> pool -> fc
                             [0, glore1, 1, 2, glore2, 3]     [0, glore1, 1, 2, glore2, 3, 4, glore3, 5]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import GloRe, SqueezeExcite
from ._builder import GloreNet
from ._registry import register_model
from ._spec import STAGE_MODULES, STAGES, GloreSpec, check_glore_args, parse_glore_spec
from ._stage import Stage

__all__ = [
    "ResNet",
    "BasicBlock",
    "Bottleneck",
    "PreActBasicBlock",
    "PreActBottleneck",
    "Conv2dSame",
    "MaxPool2dSame",
    "stage_strides",
]

SAME_PADDINGS = ("none", "pool", "all")


def _same_pad(
    x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...], value: float = 0.0
) -> torch.Tensor:
    """Pad ``x`` (n, C, H, W) as TensorFlow's "same": ``ceil(size / stride)`` outputs, the odd pixel at the end."""
    pads = []
    for size, k, s, d in zip(x.shape[-2:], kernel, stride, dilation, strict=True):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    return F.pad(x, (left, right, top, bottom), value=value) if top or bottom or left or right else x


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow/MindSpore "same" padding computed from the input's size (its ``padding`` is 0).

    At stride 1 with an odd kernel this is the usual symmetric padding; at stride 2 on an even size the extra
    row and column go at the bottom and right, where PyTorch's symmetric padding shifts the sampling grid by one.
    The state dict is an ``nn.Conv2d``'s.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _same_pad(x, self.kernel_size, self.stride, self.dilation)  # type: ignore[arg-type]
        return self._conv_forward(x, self.weight, self.bias)


class MaxPool2dSame(nn.MaxPool2d):
    """``nn.MaxPool2d`` with TensorFlow/MindSpore "same" padding (by -inf) computed from the input's size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pair = (self.kernel_size, self.kernel_size) if isinstance(self.kernel_size, int) else self.kernel_size
        step = (self.stride, self.stride) if isinstance(self.stride, int) else self.stride
        x = _same_pad(x, pair, step, (1, 1), value=float("-inf"))  # type: ignore[arg-type]
        return F.max_pool2d(x, pair, step, 0, 1, self.ceil_mode)


def conv3x3(
    in_chs: int, out_chs: int, stride: int = 1, groups: int = 1, dilation: int = 1, same: bool = False
) -> nn.Conv2d:
    """3x3 convolution with padding ``dilation`` (same size at stride 1), no bias; with ``same`` and a stride,
    TensorFlow's "same" padding (:class:`Conv2dSame`)."""
    if same and stride > 1:
        return Conv2dSame(in_chs, out_chs, 3, stride=stride, dilation=dilation, groups=groups, bias=False)
    return nn.Conv2d(
        in_chs, out_chs, kernel_size=3, stride=stride, padding=dilation, dilation=dilation, groups=groups, bias=False
    )


def conv1x1(in_chs: int, out_chs: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias."""
    return nn.Conv2d(in_chs, out_chs, kernel_size=1, stride=stride, bias=False)


def _se(channels: int, se_ratio: float | None) -> nn.Module | None:
    return SqueezeExcite(channels, rd_ratio=se_ratio) if se_ratio else None


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (post-activation, torchvision's names).

    Args:
        in_chs: input channels.
        planes: output channels.
        stride: stride of the first convolution.
        downsample: the projection shortcut, when shape changes.
        groups: must be 1.
        base_width: must be 64.
        se_ratio: squeeze-excite bottleneck ratio, None for no SE.
        dilation: dilation of the 3x3 convolutions (a dilated stage, whose stride became dilation).
        first_dilation: dilation of the first (strided) 3x3 convolution; ``dilation`` when None. The first block
            of a dilated stage keeps the previous stage's dilation there, as torchvision's
            ``replace_stride_with_dilation`` does.
        norm_layer: the BatchNorm class (``partial(nn.BatchNorm2d, eps=1e-4)`` for MindSpore's networks).
        same_pad: TensorFlow "same" padding of the strided 3x3 convolution (:class:`Conv2dSame`).
        own_shortcut_norm: pre-activation blocks only: the projection shortcut is ``downsample(x)`` with a
            BN-ReLU of its own inside ``downsample`` instead of ``downsample(relu(bn1(x)))``.
    """

    expansion = 1

    def __init__(
        self,
        in_chs: int,
        planes: int,
        *,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        se_ratio: float | None = None,
        dilation: int = 1,
        first_dilation: int | None = None,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        same_pad: bool = False,
        own_shortcut_norm: bool = False,
    ) -> None:
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError(f"BasicBlock needs groups=1 and width_per_group=64, got {groups} and {base_width}")
        first = dilation if first_dilation is None else first_dilation
        self.conv1 = conv3x3(in_chs, planes, stride, dilation=first, same=same_pad)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, dilation=dilation)
        self.bn2 = norm_layer(planes)
        self.se = _se(planes, se_ratio)
        self.downsample = downsample

    def zero_init_last(self) -> None:
        """Zero the last BN weight so the residual branch starts at zero."""
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.se is not None:
            out = self.se(out)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided, grouped), 1x1 expand, with a shortcut (post-activation, torchvision's names).

    Args:
        in_chs: input channels.
        planes: the bottleneck's base width; the output has ``planes * 4`` channels.
        stride: stride of the 3x3 convolution (ResNet v1.5).
        downsample: the projection shortcut, when shape changes.
        groups: groups of the 3x3 convolution (ResNeXt's cardinality).
        base_width: width per group; the 3x3 has ``int(planes * base_width / 64) * groups`` channels.
        se_ratio: squeeze-excite bottleneck ratio, None for no SE.
        dilation: the stage's dilation (used by the 3x3 when ``first_dilation`` is None).
        first_dilation: dilation of the 3x3 convolution, the block's only one; the first block of a dilated stage
            gets the previous stage's dilation, as torchvision's ``replace_stride_with_dilation`` does.
        norm_layer, same_pad, own_shortcut_norm: as :class:`BasicBlock`.
    """

    expansion = 4

    def __init__(
        self,
        in_chs: int,
        planes: int,
        *,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        se_ratio: float | None = None,
        dilation: int = 1,
        first_dilation: int | None = None,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        same_pad: bool = False,
        own_shortcut_norm: bool = False,
    ) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        out_chs = planes * self.expansion
        self.conv1 = conv1x1(in_chs, width)
        self.bn1 = norm_layer(width)
        first = dilation if first_dilation is None else first_dilation
        self.conv2 = conv3x3(width, width, stride, groups, first, same=same_pad)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, out_chs)
        self.bn3 = norm_layer(out_chs)
        self.relu = nn.ReLU(inplace=True)
        self.se = _se(out_chs, se_ratio)
        self.downsample = downsample

    def zero_init_last(self) -> None:
        """Zero the last BN weight so the residual branch starts at zero."""
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se is not None:
            out = self.se(out)
        return self.relu(out + identity)


class PreActBasicBlock(nn.Module):
    """Pre-activation basic block: BN-ReLU-conv3x3 twice; the shortcut projects the pre-activated input.

    Args: as :class:`BasicBlock`.
    """

    expansion = 1

    def __init__(
        self,
        in_chs: int,
        planes: int,
        *,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        se_ratio: float | None = None,
        dilation: int = 1,
        first_dilation: int | None = None,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        same_pad: bool = False,
        own_shortcut_norm: bool = False,
    ) -> None:
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError(f"BasicBlock needs groups=1 and width_per_group=64, got {groups} and {base_width}")
        self.bn1 = norm_layer(in_chs)
        self.relu = nn.ReLU(inplace=True)
        first = dilation if first_dilation is None else first_dilation
        self.conv1 = conv3x3(in_chs, planes, stride, dilation=first, same=same_pad)
        self.bn2 = norm_layer(planes)
        self.conv2 = conv3x3(planes, planes, dilation=dilation)
        self.se = _se(planes, se_ratio)
        self.downsample = downsample
        self.own_shortcut_norm = own_shortcut_norm

    def zero_init_last(self) -> None:
        """Zero the last convolution so the residual branch starts at zero (no BN follows it)."""
        nn.init.zeros_(self.conv2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu(self.bn1(x))
        identity = x if self.downsample is None else self.downsample(x if self.own_shortcut_norm else pre)
        out = self.conv1(pre)
        out = self.conv2(self.relu(self.bn2(out)))
        if self.se is not None:
            out = self.se(out)
        return out + identity


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck: BN-ReLU-conv1x1, BN-ReLU-conv3x3 (strided, grouped), BN-ReLU-conv1x1.

    Args: as :class:`Bottleneck`.
    """

    expansion = 4

    def __init__(
        self,
        in_chs: int,
        planes: int,
        *,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        se_ratio: float | None = None,
        dilation: int = 1,
        first_dilation: int | None = None,
        norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
        same_pad: bool = False,
        own_shortcut_norm: bool = False,
    ) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        out_chs = planes * self.expansion
        self.bn1 = norm_layer(in_chs)
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = conv1x1(in_chs, width)
        self.bn2 = norm_layer(width)
        first = dilation if first_dilation is None else first_dilation
        self.conv2 = conv3x3(width, width, stride, groups, first, same=same_pad)
        self.bn3 = norm_layer(width)
        self.conv3 = conv1x1(width, out_chs)
        self.se = _se(out_chs, se_ratio)
        self.downsample = downsample
        self.own_shortcut_norm = own_shortcut_norm

    def zero_init_last(self) -> None:
        """Zero the last convolution so the residual branch starts at zero (no BN follows it)."""
        nn.init.zeros_(self.conv3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu(self.bn1(x))
        identity = x if self.downsample is None else self.downsample(x if self.own_shortcut_norm else pre)
        out = self.conv1(pre)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        if self.se is not None:
            out = self.se(out)
        return out + identity


_BLOCKS = {
    ("basic", False): BasicBlock,
    ("bottleneck", False): Bottleneck,
    ("basic", True): PreActBasicBlock,
    ("bottleneck", True): PreActBottleneck,
}


def _four(name: str, value: Sequence[int]) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 4:
        raise ValueError(f"ResNet: {name} must be 4 positive ints, one per stage (res2..res5), got {value!r}")
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
        raise ValueError(f"ResNet: {name} must be 4 positive ints, one per stage (res2..res5), got {value!r}")
    return tuple(value)


def stage_strides(stem_reduction: int, output_stride: int | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Strides and dilations of res2..res5 for a network whose stem reduces by ``stem_reduction``.

    Stages res3..res5 halve the resolution; for a smaller ``output_stride`` the stride-2 of res5 (then res4)
    becomes stride 1 and multiplies the dilation of that stage and the ones after it by 2, as in DeepLab and
    mmsegmentation's FCN-D8 (ResNet-50, stem 4: output stride 8 gives dilations 1, 1, 2, 4; 16 gives 1, 1, 1, 2).

    Args:
        stem_reduction: the stem's downsampling factor (4 for the ImageNet stem with its max-pool).
        output_stride: the downsampling of the last stage's output; None for the undilated network.

    Returns:
        ``(strides, dilations)``, 4 ints each.

    Raises:
        ValueError: ``output_stride`` is not reachable by dilating res4 and/or res5.
    """
    strides, dilations = (1, 2, 2, 2), (1, 1, 1, 1)
    if output_stride is None:
        return strides, dilations
    full = stem_reduction * 8
    allowed = (full // 4, full // 2, full)
    if isinstance(output_stride, bool) or not isinstance(output_stride, int) or output_stride not in allowed:
        raise ValueError(
            f"ResNet: output_stride must be one of {allowed} (a stem reducing by {stem_reduction}, res4 and/or res5 "
            f"dilated) or None, got {output_stride!r}"
        )
    new_strides, new_dilations, reduction, dilation = [], [], stem_reduction, 1
    for stride in strides:
        if reduction * stride > output_stride:
            dilation, stride = dilation * stride, 1
        reduction *= stride
        new_strides.append(stride)
        new_dilations.append(dilation)
    return tuple(new_strides), tuple(new_dilations)


class ResNet(GloreNet, nn.Module):
    """ResNet / SE-ResNet / ResNeXt, post- or pre-activation, with GloRe units after chosen blocks.

    Args:
        block: ``"basic"`` (two 3x3) or ``"bottleneck"`` (1x1-3x3-1x1, 4x expansion).
        depths: blocks per stage, res2..res5 (ResNet-50: (3, 4, 6, 3)).
        widths: base width per stage (torchvision's ``planes``); stage outputs are ``widths * expansion``.
        num_classes: classifier outputs; 0 leaves the classifier out.
        in_chans: input channels.
        stem_width: channels of the stem convolution.
        stem_kernel: kernel size of the stem convolution (7 in ImageNet ResNets, 3 for small images).
        stem_stride: stride of the stem convolution.
        stem_pool: use the stem's 3x3 stride-2 max-pool.
        stem_type: ``""``: one ``stem_kernel`` convolution; ``"deep"``: three 3x3 convolutions with BN-ReLU between
            them, ``stem_width // 2``, ``stem_width // 2`` and ``stem_width`` channels, the first strided (ResNet-D;
            ``conv1`` is then an ``nn.Sequential`` with timm's keys ``conv1.0/.1/.3/.4/.6``).
        output_stride: replace the stride of res5 (and res4) by dilation so the last stage's output is this many
            times smaller than the input (8 or 16 for ImageNet ResNets, for segmentation); None: 32, undilated.
            State-dict keys and shapes do not change, so ImageNet weights load.
        dilate_first_block: the first block of a dilated stage uses the stage's dilation (PaddleSeg's ResNet_vd)
            instead of the previous stage's (torchvision's ``replace_stride_with_dilation``, timm).
        avg_down: a strided projection shortcut average-pools (2x2, stride 2, ceil mode, padding not counted) and
            then projects with a stride-1 1x1 convolution (ResNet-D); keys ``downsample.1`` (conv), ``.2`` (BN).
        same_padding: ``"none"``: PyTorch's symmetric padding; ``"pool"``: TensorFlow/MindSpore "same" padding
            of the stem's max-pool; ``"all"``: of the max-pool and every strided 3x3 convolution (MindSpore's
            ``pad_mode="same"``, which differs from symmetric padding on even sizes).
        norm_eps: eps of every BatchNorm of the backbone (1e-5 as torchvision; MindSpore's networks use 1e-4).
        groups: groups of each bottleneck's 3x3 convolution (ResNeXt cardinality).
        width_per_group: width of each group (ResNeXt 32x4d: 4).
        preact: build the pre-activation variant (the paper's MXNet networks) instead of torchvision's.
        shortcut_norm: with ``preact``: the projection shortcut is BN-ReLU-conv on the block's input, a BatchNorm
            of its own (MindSpore's glore_resnet101/200; keys ``downsample.0`` BN, ``downsample.2`` conv), instead
            of a conv on the block's first pre-activation.
        se_ratio: put a squeeze-excite gate of this bottleneck ratio in every block (SE-ResNet: 1/16).
        zero_init_residual: zero each block's last norm (or, pre-activation, its last conv) at init.
        drop_rate: dropout before the classifier.
        glore: the insertion spec of GloRe units (``"res3:2,res4:3"``, ``{"res4": [1, 3, 5]}``).
        glore_args: the units' options (``num_nodes``, ``num_state``, ``normalize``, ``gcn_layers``, ``order``).
    """

    def __init__(
        self,
        *,
        block: str = "bottleneck",
        depths: Sequence[int] = (3, 4, 6, 3),
        widths: Sequence[int] = (64, 128, 256, 512),
        num_classes: int = 1000,
        in_chans: int = 3,
        # Stem configs.
        stem_width: int = 64,
        stem_kernel: int = 7,
        stem_stride: int = 2,
        stem_pool: bool = True,
        stem_type: str = "",
        output_stride: int | None = None,
        dilate_first_block: bool = False,
        # Block configs.
        groups: int = 1,
        width_per_group: int = 64,
        preact: bool = False,
        shortcut_norm: bool = False,
        avg_down: bool = False,
        same_padding: str = "none",
        norm_eps: float = 1e-5,
        se_ratio: float | None = None,
        zero_init_residual: bool = False,
        # Head configs.
        drop_rate: float = 0.0,
        # GloRe configs.
        glore: GloreSpec = None,
        glore_args: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if block not in ("basic", "bottleneck"):
            raise ValueError(f"ResNet: block must be 'basic' or 'bottleneck', got {block!r}")
        depths = _four("depths", depths)
        widths = _four("widths", widths)
        if stem_type not in ("", "deep"):
            raise ValueError(f"ResNet: stem_type must be '' or 'deep', got {stem_type!r}")
        if same_padding not in SAME_PADDINGS:
            raise ValueError(f"ResNet: same_padding must be one of {SAME_PADDINGS}, got {same_padding!r}")
        if isinstance(norm_eps, bool) or not isinstance(norm_eps, int | float) or not norm_eps > 0:
            raise ValueError(f"ResNet: norm_eps must be a positive number, got {norm_eps!r}")
        if shortcut_norm and not preact:
            raise ValueError("ResNet: shortcut_norm=True needs preact=True (a post-activation shortcut has its BN)")
        if shortcut_norm and avg_down:
            raise ValueError("ResNet: shortcut_norm and avg_down cannot be combined")
        block_cls = _BLOCKS[(block, bool(preact))]
        self.preact = bool(preact)
        self.drop_rate = float(drop_rate)
        unit_args = check_glore_args(glore_args)
        norm_layer = partial(nn.BatchNorm2d, eps=float(norm_eps))
        same_all = same_padding == "all"

        # Stem.
        if stem_type == "deep":
            mid = stem_width // 2
            self.conv1: nn.Module = nn.Sequential(
                conv3x3(in_chans, mid, stem_stride, same=same_all),
                norm_layer(mid),
                nn.ReLU(inplace=True),
                conv3x3(mid, mid),
                norm_layer(mid),
                nn.ReLU(inplace=True),
                conv3x3(mid, stem_width),
            )
        elif same_all and stem_stride > 1:
            self.conv1 = Conv2dSame(in_chans, stem_width, stem_kernel, stride=stem_stride, bias=False)
        else:
            self.conv1 = nn.Conv2d(
                in_chans, stem_width, kernel_size=stem_kernel, stride=stem_stride, padding=stem_kernel // 2, bias=False
            )
        self.bn1 = norm_layer(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool: nn.Module = nn.Identity()
        if stem_pool:
            same_pool = same_padding != "none"
            self.maxpool = MaxPool2dSame(3, 2) if same_pool else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        # Stages: feature_info first, so that glore_unit() knows each stage's width.
        reduction = stem_stride * (2 if stem_pool else 1)
        strides, dilations = stage_strides(reduction, output_stride)
        self.dilations = dilations
        self.feature_info = []
        for stage, width, stride in zip(STAGES, widths, strides, strict=True):
            reduction *= stride
            self.feature_info.append(
                {
                    "module": STAGE_MODULES[stage],
                    "stage": stage,
                    "num_chs": width * block_cls.expansion,
                    "reduction": reduction,
                }
            )
        spec = parse_glore_spec(glore, dict(zip(STAGES, depths, strict=True)), warn=True)
        in_chs, previous_dilation = stem_width, 1
        for info, depth, width, stride, dilation in zip(
            self.feature_info, depths, widths, strides, dilations, strict=True
        ):
            out_chs = width * block_cls.expansion
            downsample = None
            if stride != 1 or in_chs != out_chs or dilation != previous_dilation:  # a stride turned dilation too
                downsample = self._shortcut(in_chs, out_chs, stride, norm_layer, preact, shortcut_norm, avg_down)
            blocks = []
            for i in range(depth):
                blocks.append(
                    block_cls(
                        in_chs if i == 0 else out_chs,
                        width,
                        stride=stride if i == 0 else 1,
                        downsample=downsample if i == 0 else None,
                        groups=groups,
                        base_width=width_per_group,
                        se_ratio=se_ratio,
                        dilation=dilation,
                        first_dilation=previous_dilation if i == 0 and not dilate_first_block else dilation,
                        norm_layer=norm_layer,
                        same_pad=same_all,
                        own_shortcut_norm=shortcut_norm,
                    )
                )
            units = {p: self.glore_unit(info["stage"], **unit_args) for p in spec.get(info["stage"], ())}
            self.add_module(info["module"], Stage(blocks, units))
            in_chs, previous_dilation = out_chs, dilation
        self.num_features = in_chs
        self.output_stride = reduction
        self.final_norm: nn.Module = norm_layer(in_chs) if preact else nn.Identity()

        # Head.
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_classes = num_classes
        self.fc: nn.Module = nn.Linear(in_chs, num_classes) if num_classes > 0 else nn.Identity()
        self.init_weights(zero_init_residual=zero_init_residual)

    @staticmethod
    def _shortcut(
        in_chs: int,
        out_chs: int,
        stride: int,
        norm_layer: Callable[[int], nn.Module],
        preact: bool,
        shortcut_norm: bool,
        avg_down: bool,
    ) -> nn.Sequential:
        """The projection shortcut of a stage's first block."""
        if shortcut_norm:  # BN-ReLU-conv on the block's input
            return nn.Sequential(norm_layer(in_chs), nn.ReLU(inplace=True), conv1x1(in_chs, out_chs, stride))
        # Pre-activation shortcuts take the already normalised input, so they need no norm of their own.
        norm = [] if preact else [norm_layer(out_chs)]
        if avg_down:
            pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
            return nn.Sequential(pool, conv1x1(in_chs, out_chs), *norm)
        return nn.Sequential(conv1x1(in_chs, out_chs, stride), *norm)

    def init_weights(self, *, zero_init_residual: bool = False) -> None:
        """torchvision's init: Kaiming-normal (fan-out) convolutions, unit BN; GloRe units keep their own init."""
        for name, m in self.named_modules():
            if isinstance(m, GloRe):
                m.reset_parameters()
            elif ".glore" in name:
                continue  # inside a unit: the unit owns its init
            elif isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if hasattr(m, "zero_init_last"):
                    m.zero_init_last()

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        """(n, in_chans, H, W) -> the stem's output, (n, stem_width, H/4, W/4) for the ImageNet stem."""
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(n, in_chans, H, W) -> (n, num_features, H/32, W/32) (the last stage's output)."""
        x = self.forward_stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        if self.preact:
            x = self.relu(self.final_norm(x))
        return x


def _resnet(defaults: dict[str, Any], kwargs: dict[str, Any]) -> ResNet:
    return ResNet(**{**defaults, **kwargs})


# Small generated or CIFAR-sized images, used whole (no crop).
_SMALL_CFG = {"input_size": (3, 64, 64), "crop_pct": 1.0}


@register_model(default_cfg=_SMALL_CFG)
def resnet_small(**kwargs: Any) -> ResNet:
    """A small BasicBlock ResNet for 32-96 px inputs: 3x3 stride-2 stem, no max-pool, widths 32-256, 1 block each."""
    defaults = dict(block="basic", depths=(1, 1, 1, 1), widths=(32, 64, 128, 256), stem_width=32, stem_kernel=3)
    return _resnet({**defaults, "stem_stride": 2, "stem_pool": False}, kwargs)


@register_model
def resnet18(**kwargs: Any) -> ResNet:
    """ResNet-18: 2-2-2-2 basic blocks (11.7M parameters)."""
    return _resnet(dict(block="basic", depths=(2, 2, 2, 2)), kwargs)


@register_model
def resnet34(**kwargs: Any) -> ResNet:
    """ResNet-34: 3-4-6-3 basic blocks (21.8M parameters)."""
    return _resnet(dict(block="basic", depths=(3, 4, 6, 3)), kwargs)


@register_model
def resnet50(**kwargs: Any) -> ResNet:
    """ResNet-50: 3-4-6-3 bottlenecks (25.6M parameters)."""
    return _resnet(dict(block="bottleneck", depths=(3, 4, 6, 3)), kwargs)


@register_model
def resnet50d(**kwargs: Any) -> ResNet:
    """ResNet-50-D: ResNet-50 with the deep 3x3 stem (32-32-64) and average-pool shortcuts (timm's ``resnet50d``,
    PaddlePaddle's ``ResNet50_vd``; 25.6M parameters)."""
    return _resnet(dict(block="bottleneck", depths=(3, 4, 6, 3), stem_type="deep", avg_down=True), kwargs)


@register_model
def resnet101d(**kwargs: Any) -> ResNet:
    """ResNet-101-D: ResNet-101 with the deep 3x3 stem and average-pool shortcuts (timm's ``resnet101d``)."""
    return _resnet(dict(block="bottleneck", depths=(3, 4, 23, 3), stem_type="deep", avg_down=True), kwargs)


@register_model
def resnet101(**kwargs: Any) -> ResNet:
    """ResNet-101: 3-4-23-3 bottlenecks."""
    return _resnet(dict(block="bottleneck", depths=(3, 4, 23, 3)), kwargs)


@register_model
def resnet152(**kwargs: Any) -> ResNet:
    """ResNet-152: 3-8-36-3 bottlenecks."""
    return _resnet(dict(block="bottleneck", depths=(3, 8, 36, 3)), kwargs)


@register_model
def resnet200(**kwargs: Any) -> ResNet:
    """ResNet-200: 3-24-36-3 bottlenecks."""
    return _resnet(dict(block="bottleneck", depths=(3, 24, 36, 3)), kwargs)


@register_model
def seresnet50(**kwargs: Any) -> ResNet:
    """SE-ResNet-50: ResNet-50 with a squeeze-excite gate (ratio 1/16) in every bottleneck."""
    return _resnet(dict(block="bottleneck", depths=(3, 4, 6, 3), se_ratio=1 / 16), kwargs)


@register_model
def seresnet101(**kwargs: Any) -> ResNet:
    """SE-ResNet-101: ResNet-101 with a squeeze-excite gate (ratio 1/16) in every bottleneck."""
    return _resnet(dict(block="bottleneck", depths=(3, 4, 23, 3), se_ratio=1 / 16), kwargs)


@register_model
def resnext50_32x4d(**kwargs: Any) -> ResNet:
    """ResNeXt-50 (32x4d): ResNet-50 with 32 groups of width 4 in the 3x3 convolutions."""
    return _resnet(dict(block="bottleneck", depths=(3, 4, 6, 3), groups=32, width_per_group=4), kwargs)


@register_model
def resnext101_32x4d(**kwargs: Any) -> ResNet:
    """ResNeXt-101 (32x4d): ResNet-101 with 32 groups of width 4 in the 3x3 convolutions."""
    return _resnet(dict(block="bottleneck", depths=(3, 4, 23, 3), groups=32, width_per_group=4), kwargs)
