"""Dual Path Networks (Chen, Li, Xiao, Jin, Yan, Feng, NeurIPS 2017), with GloRe units on the residual path.

Written from the DPN paper's description. Each block keeps two paths: a residual path of fixed width ``bw``
(features re-used, as in ResNet) and a densely connected path that grows by ``inc`` channels per block (new
features explored, as in DenseNet). A block sees both paths concatenated and runs a pre-activation bottleneck,
BN-ReLU-1x1 (R), BN-ReLU-3x3 grouped (R, G groups), BN-ReLU-1x1 (bw + inc); the first ``bw`` output channels are
added to the residual path, the last ``inc`` appended to the dense path::

    (resid, dense) -> cat -> 1x1 -> 3x3/G -> 1x1 -+-> [:bw]  + resid  -> resid'
                                                  +-> [bw:]  ++ dense -> dense'

The first block of each stage projects the concatenated input (1x1, stride 2 from res3 on) to start a new
residual path of width ``bw`` and a dense path of ``2 inc`` channels. Widths follow the paper's table:
``bw = 256, 512, 1024, 2048`` (``64 .. 512`` for the small DPN-68) and ``R = k_r * bw / 256`` (``/ 64``).

A GloRe unit in a DPN acts on the residual path (``bw`` channels, the ResNet-like features; the dense path
passes through): this is what reproduces the paper's parameter and FLOP counts (docs/models.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..layers import GloRe
from ._builder import GloreNet
from ._registry import register_model
from ._spec import STAGE_MODULES, STAGES, GloreSpec, check_glore_args, parse_glore_spec
from ._stage import Stage

__all__ = ["DPN", "DualPathBlock", "DualPathGloRe"]

DualPath = tuple[torch.Tensor, torch.Tensor]


class BnActConv(nn.Module):
    """Pre-activation convolution: BN, ReLU, then a bias-free convolution."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int, *, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_chs, eps=1e-3)
        self.act = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(
            in_chs, out_chs, kernel_size, stride=stride, padding=kernel_size // 2, groups=groups, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.act(self.bn(x)))


class DualPathBlock(nn.Module):
    """One DPN block: a grouped pre-activation bottleneck feeding a residual and a dense path.

    Args:
        in_chs: channels of the concatenated input (resid + dense).
        bottleneck: R, the width of the 1x1 and grouped 3x3 convolutions.
        width: bw, the residual path's width.
        inc: how many channels the block appends to the dense path.
        groups: G, groups of the 3x3 convolution.
        project: start new paths from the input with a 1x1 projection (the first block of a stage).
        stride: stride of the projection and the 3x3 convolution.
    """

    def __init__(
        self, in_chs: int, bottleneck: int, width: int, inc: int, *, groups: int, project: bool, stride: int = 1
    ) -> None:
        super().__init__()
        self.width = width
        self.proj = BnActConv(in_chs, width + 2 * inc, 1, stride=stride) if project else None
        self.conv1 = BnActConv(in_chs, bottleneck, 1)
        self.conv2 = BnActConv(bottleneck, bottleneck, 3, stride=stride, groups=groups)
        self.conv3 = BnActConv(bottleneck, width + inc, 1)

    def forward(self, x: torch.Tensor | DualPath) -> DualPath:
        """Args: x: a tensor (the stem's output) or the (resid, dense) pair. Returns: the new pair."""
        x_in = torch.cat(x, dim=1) if isinstance(x, tuple) else x  # (n, bw + dense, H, W)
        if self.proj is not None:
            shortcut = self.proj(x_in)
            resid, dense = shortcut[:, : self.width], shortcut[:, self.width :]
        else:
            assert isinstance(x, tuple), "a DualPathBlock without projection needs the (resid, dense) pair"
            resid, dense = x
        out = self.conv3(self.conv2(self.conv1(x_in)))  # (n, bw + inc, h, w)
        return resid + out[:, : self.width], torch.cat([dense, out[:, self.width :]], dim=1)


class DualPathGloRe(GloRe):
    """A GloRe unit on the residual path of a (resid, dense) pair; the dense path passes through unchanged."""

    def forward(self, x: DualPath) -> DualPath:  # type: ignore[override]
        """Args: x: (resid (n, C, H, W), dense). Returns: (resid + unit's residual, dense)."""
        resid, dense = x
        return super().forward(resid), dense


class DPN(GloreNet, nn.Module):
    """Dual Path Network with optional GloRe units on the residual path.

    Args:
        depths: blocks per stage, res2..res5 (the paper's ``k_sec``; DPN-92: (3, 4, 20, 3)).
        increments: dense-path growth per block in each stage (``inc_sec``; DPN-92: (16, 32, 24, 128)).
        k_r: bottleneck width factor: R = k_r * bw / 256 (``/ 64`` for ``small``).
        groups: G, groups of every 3x3 convolution.
        stem_width: channels of the stem convolution (``num_init_features``).
        small: the DPN-68 layout: 3x3 stem and residual widths 64..512 instead of 256..2048.
        num_classes: classifier outputs; 0 leaves the classifier out.
        in_chans: input channels.
        drop_rate: dropout before the classifier.
        glore: the insertion spec of GloRe units.
        glore_args: the units' options.
    """

    def __init__(
        self,
        *,
        depths: Sequence[int] = (3, 4, 20, 3),
        increments: Sequence[int] = (16, 32, 24, 128),
        k_r: int = 96,
        groups: int = 32,
        stem_width: int = 64,
        small: bool = False,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        glore: GloreSpec = None,
        glore_args: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("depths", depths), ("increments", increments)):
            if len(value) != 4 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
                raise ValueError(f"DPN: {name} must be 4 positive ints, one per stage (res2..res5), got {value!r}")
        unit_args = check_glore_args(glore_args)
        self.drop_rate = float(drop_rate)
        width_factor = 1 if small else 4

        # Stem.
        kernel = 3 if small else 7
        self.conv1 = nn.Conv2d(in_chans, stem_width, kernel, stride=2, padding=kernel // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width, eps=1e-3)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        # Stages.
        self.feature_info = []
        self._unit_channels: dict[str, int] = {}
        widths = [64 * width_factor * 2**i for i in range(4)]
        spec = parse_glore_spec(glore, dict(zip(STAGES, depths, strict=True)), warn=True)
        in_chs, reduction = stem_width, 4
        for i, (stage, depth, inc, width) in enumerate(zip(STAGES, depths, increments, widths, strict=True)):
            stride = 1 if i == 0 else 2
            reduction *= stride
            bottleneck = k_r * width // (64 * width_factor)
            blocks = [DualPathBlock(in_chs, bottleneck, width, inc, groups=groups, project=True, stride=stride)]
            in_chs = width + 3 * inc
            for _ in range(1, depth):
                blocks.append(DualPathBlock(in_chs, bottleneck, width, inc, groups=groups, project=False))
                in_chs += inc
            self._unit_channels[stage] = width
            units = {p: self.glore_unit(stage, **unit_args) for p in spec.get(stage, ())}
            self.add_module(STAGE_MODULES[stage], Stage(blocks, units))
            self.feature_info.append(
                {"module": STAGE_MODULES[stage], "stage": stage, "num_chs": in_chs, "reduction": reduction}
            )
        self.num_features = in_chs
        self.final_norm = nn.BatchNorm2d(in_chs, eps=1e-3)

        # Head.
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_classes = num_classes
        self.fc: nn.Module = nn.Linear(in_chs, num_classes) if num_classes > 0 else nn.Identity()
        for name, m in self.named_modules():
            if isinstance(m, nn.Conv2d) and ".glore" not in name:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def glore_unit(self, stage: str, **unit_args: Any) -> nn.Module:
        """A new identity GloRe unit on the residual path of ``stage`` (``bw`` channels)."""
        args = check_glore_args(unit_args)
        if args.pop("block", "glore") != "glore":
            raise ValueError("glore_args: DPNs take GloRe units only (block='glore'); block='nonlocal' needs a ResNet")
        return DualPathGloRe(self._unit_channels[stage], **args)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(n, in_chans, H, W) -> (n, num_features, H/32, W/32): both paths concatenated, normalised."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        resid, dense = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.relu(self.final_norm(torch.cat([resid, dense], dim=1)))


def _dpn(defaults: dict[str, Any], kwargs: dict[str, Any]) -> DPN:
    return DPN(**{**defaults, **kwargs})


@register_model
def dpn68(**kwargs: Any) -> DPN:
    """DPN-68: the small layout (3x3 stem of 10 channels, bw 64..512), k_r 128, G 32."""
    return _dpn(
        dict(depths=(3, 4, 12, 3), increments=(16, 32, 32, 64), k_r=128, groups=32, stem_width=10, small=True), kwargs
    )


@register_model
def dpn92(**kwargs: Any) -> DPN:
    """DPN-92: k_r 96, G 32, 64-channel stem."""
    return _dpn(dict(depths=(3, 4, 20, 3), increments=(16, 32, 24, 128), k_r=96, groups=32, stem_width=64), kwargs)


@register_model
def dpn98(**kwargs: Any) -> DPN:
    """DPN-98: k_r 160, G 40, 96-channel stem."""
    return _dpn(dict(depths=(3, 6, 20, 3), increments=(16, 32, 32, 128), k_r=160, groups=40, stem_width=96), kwargs)


@register_model
def dpn131(**kwargs: Any) -> DPN:
    """DPN-131: k_r 160, G 40, 128-channel stem."""
    return _dpn(dict(depths=(4, 8, 28, 3), increments=(16, 32, 32, 128), k_r=160, groups=40, stem_width=128), kwargs)
