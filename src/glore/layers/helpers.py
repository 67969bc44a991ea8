"""Small helpers shared by the layers: argument checks and width arithmetic."""

from __future__ import annotations

import numbers

import torch
from torch import nn

__all__ = [
    "make_divisible",
    "check_positive_int",
    "check_feature_input",
    "reset_residual_block",
    "channels_last_format",
    "to_channels_last",
]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never dropping more than 10%.

    Args:
        value: the width to round.
        divisor: the multiple to round to.
        min_value: the smallest width returned (defaults to ``divisor``).
        round_limit: if rounding down loses more than ``1 - round_limit`` of ``value``, round up instead.

    Returns:
        The rounded width.
    """
    min_value = min_value or divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < round_limit * value:
        new_value += divisor
    return new_value


def check_positive_int(name: str, value: object, *, allow_none: bool = False) -> int | None:
    """Return ``value`` as an int if it is a positive integer, else raise naming ``name``.

    Args:
        name: the argument's name, used in the error message.
        value: what the caller passed.
        allow_none: accept ``None`` (returned unchanged).

    Raises:
        TypeError: ``value`` is not an integer (bools and floats are refused).
        ValueError: ``value`` is an integer below 1.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        expected = "a positive integer or None" if allow_none else "a positive integer"
        raise TypeError(f"{name} must be {expected}, got {value!r} of type {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def check_feature_input(module_name: str, x: object, channels: int, dtype: torch.dtype | None = None) -> None:
    """Check that ``x`` is a floating tensor of shape (n, channels, *spatial) with at least one spatial dim.

    Any floating dtype (float16, bfloat16, float32, float64) is accepted when the module's parameters have the
    same one; another dtype only under ``torch.autocast`` (which casts float16/bfloat16/float32 inputs, never
    float64).

    Args:
        module_name: the module's class name, used in the error message.
        x: the forward input.
        channels: the channel count the module was built for.
        dtype: the module's parameter dtype; None skips the dtype check.

    Raises:
        TypeError: ``x`` is not a tensor, not floating point, or of another dtype than the parameters (outside
            autocast, or float64 under it).
        ValueError: ``x`` has fewer than 3 dims or the wrong channel count.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{module_name} input x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{module_name} input x must be a floating-point tensor (float16, bfloat16, float32 or float64), "
            f"got {x.dtype}"
        )
    if dtype is not None and x.dtype != dtype:
        autocast = torch.is_autocast_enabled(x.device.type)
        if not autocast or x.dtype == torch.float64:
            raise TypeError(
                f"{module_name} input x is {x.dtype} but the module's parameters are {dtype}: convert the module "
                f"(module.to({x.dtype})) or the input (x.to({dtype})); mixed dtypes work only under torch.autocast, "
                f"which never casts float64"
            )
    if x.dim() < 3:
        raise ValueError(
            f"{module_name} input x must have shape (n, {channels}, *spatial) with at least one spatial dim, "
            f"got shape {tuple(x.shape)}"
        )
    if x.shape[1] != channels:
        raise ValueError(
            f"{module_name} input x must have {channels} channels (shape (n, {channels}, *spatial)), "
            f"got {x.shape[1]} channels in shape {tuple(x.shape)}"
        )


def reset_residual_block(block: nn.Module, norm: nn.Module, last_weight: torch.Tensor, zero_init: bool) -> None:
    """Re-initialise every submodule of a residual block ``x + norm(... last ...)``.

    With ``zero_init`` the output norm's weight (or, for a norm without one, the last product's weight) becomes
    zero, so the block's branch adds exactly zero and the block starts as the identity.

    Args:
        block: the residual block.
        norm: its output normalisation.
        last_weight: the weight of the product just before ``norm``.
        zero_init: zero the branch.
    """
    for module in block.modules():
        if module is not block and hasattr(module, "reset_parameters"):
            module.reset_parameters()
    if zero_init:
        weight = getattr(norm, "weight", None)
        nn.init.zeros_(weight if isinstance(weight, torch.Tensor) else last_weight)


def channels_last_format(tensor: torch.Tensor) -> torch.memory_format | None:
    """The channels-last memory format of a tensor's rank: ``channels_last`` for 4-D (images, 2D kernels),
    ``channels_last_3d`` for 5-D (video, 3D kernels), None for every other rank, which has no such format."""
    return {4: torch.channels_last, 5: torch.channels_last_3d}.get(tensor.dim())


@torch.no_grad()
def to_channels_last(module: nn.Module) -> nn.Module:
    """Put every 4-D and 5-D parameter and buffer of ``module`` in its channels-last format, in place.

    ``module.to(memory_format=torch.channels_last)`` fails on the 5-D kernels of 3D networks and
    ``channels_last_3d`` fails on 4-D ones; this picks the format per tensor, so 2D, 3D and mixed networks take
    one call. Parameters keep their identity (optimisers built before or after see the same objects).

    Returns:
        ``module`` itself.
    """
    for tensor in (*module.parameters(), *module.buffers()):
        fmt = channels_last_format(tensor)
        if fmt is not None and tensor.is_floating_point():
            tensor.data = tensor.data.contiguous(memory_format=fmt)
    return module
