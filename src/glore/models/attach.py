"""Insert GloRe units into an existing network: glore's own, torchvision-structured or timm ResNets.

A network qualifies when its stages are attributes ``layer1..layer4`` holding sequences of blocks (an
``nn.Sequential`` or glore's :class:`Stage`). Each chosen stage is replaced by a :class:`Stage` holding the same
block modules under the same names plus the new units, so the state-dict keys of the existing weights do not
change and a checkpoint saved before attaching still loads (``strict=False``, the units being new).

Every unit starts as the identity (its output norm's weight is zero), so the network computes exactly what it
computed before, in eval and in train mode, and fine-tuning starts from the pretrained function.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._builder import GloreNet
from ._spec import STAGE_MODULES, STAGES, GloreSpec, build_unit, check_glore_args, parse_glore_spec, spec_to_config
from ._stage import Stage

__all__ = ["attach", "infer_stage_channels"]

_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


def _norm_channels(module: nn.Module) -> int | None:
    if isinstance(module, nn.GroupNorm):
        return module.num_channels
    if isinstance(module, nn.LayerNorm):
        return int(module.normalized_shape[0])
    return int(module.num_features)  # type: ignore[arg-type]


def infer_stage_channels(stage: nn.Module) -> int:
    """The output channels of a stage of residual blocks, read from its last block.

    The residual branch of a block ends in a norm (post-activation: ``bn2``/``bn3``) or a convolution
    (pre-activation) whose width is the block's output width. The last such layer outside the block's shortcut
    (``downsample``) and outside an attention gate (``se``, whose convolutions keep the width anyway) gives it.

    Raises:
        ValueError: the last block has no norm or convolution to read the width from.
    """
    blocks = stage.blocks if isinstance(stage, Stage) else list(stage)
    if not blocks:
        raise ValueError("attach: a stage has no blocks")
    last = blocks[-1]
    norm, conv = None, None
    for name, module in last.named_modules():
        if name.split(".")[0] in ("downsample", "shortcut", "se", "attn"):
            continue
        if isinstance(module, _NORMS):
            norm = module
        elif isinstance(module, nn.Conv2d):
            conv = module
    if norm is not None:
        channels = _norm_channels(norm)
        if channels is not None:
            return channels
    if conv is not None:
        return conv.out_channels
    raise ValueError(
        f"attach: cannot infer the output channels of a stage whose last block is {type(last).__name__}; "
        f"pass example_input=... so they can be measured"
    )


def _measure_channels(model: nn.Module, names: list[str], example_input: torch.Tensor) -> dict[str, int]:
    found: dict[str, int] = {}
    handles = []
    for name in names:

        def hook(module: nn.Module, args: Any, output: Any, name: str = name) -> None:
            out = output[0] if isinstance(output, tuple) else output
            found[name] = int(out.shape[1])

        handles.append(getattr(model, name).register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example_input)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return found


def attach(
    model: nn.Module, spec: GloreSpec, *, example_input: torch.Tensor | None = None, **unit_args: Any
) -> nn.Module:
    """Insert zero-initialised GloRe units into ``model`` where ``spec`` says; outputs stay exactly the same.

    Args:
        model: a network whose stages are ``layer1..layer4`` sequences of blocks (glore's networks, torchvision
            ResNets/ResNeXts, timm ResNets, or your own with that structure).
        spec: the insertion spec: ``"res4:3"``, ``{"layer3": [1, 3, 5]}``, ``{"res3": 2, "res4": 3}``.
        example_input: an input batch; when given, each stage's channels are measured by running it instead of
            being read from the last block's layers.
        **unit_args: the units' options (``num_nodes``, ``num_state``, ``normalize``, ``gcn_layers``, ``order``).

    Returns:
        ``model``, changed in place; units sit at ``model.layer3.glore1`` and so on, on the stage's device and
        dtype and in the model's train/eval mode.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``, or a bad unit option.
        ValueError: ``model`` lacks the stages the spec names, a stage already has units, or a bad spec.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"attach: model must be an nn.Module, got {type(model).__name__}")
    unit_args = check_glore_args(unit_args)
    stages = {}
    for stage in STAGES:
        module = getattr(model, STAGE_MODULES[stage], None)
        if isinstance(module, nn.Sequential):
            stages[stage] = module
    if not stages:
        raise ValueError(
            f"attach: {type(model).__name__} has no stages layer1..layer4 that are sequences of blocks "
            f"(nn.Sequential); attach works on ResNet-structured networks"
        )
    resolved = parse_glore_spec(spec, {stage: len(module) for stage, module in stages.items()}, warn=True)
    for stage in resolved:
        existing = stages[stage]
        if isinstance(existing, Stage) and existing.units:
            raise ValueError(
                f"attach: {stage} ({STAGE_MODULES[stage]}) already has GloRe units at blocks "
                f"{list(existing.unit_positions())}; build the network with all its units instead"
            )
    if isinstance(model, GloreNet):
        make = model.glore_unit
        old_config = getattr(model, "model_config", None)
        if old_config and old_config.get("glore") and (old_config.get("glore_args") or {}) != unit_args:
            raise ValueError(
                f"attach: the network's units have glore_args {old_config.get('glore_args')}, the new ones "
                f"{unit_args}; model_config can describe one set of options only"
            )
    else:
        if example_input is not None:
            channels = _measure_channels(model, [STAGE_MODULES[s] for s in resolved], example_input)
            widths = {stage: channels[STAGE_MODULES[stage]] for stage in resolved}
        else:
            widths = {stage: infer_stage_channels(stages[stage]) for stage in resolved}

        def make(stage: str, **args: Any) -> nn.Module:
            return build_unit(widths[stage], args)

    for stage, positions in resolved.items():
        old = stages[stage]
        reference = next(old.parameters(), None)
        units = {}
        for p in positions:
            unit = make(stage, **unit_args)
            if reference is not None:
                unit = unit.to(device=reference.device, dtype=reference.dtype)
            units[p] = unit.train(model.training)
        setattr(model, STAGE_MODULES[stage], Stage(old.blocks if isinstance(old, Stage) else list(old), units))
    if isinstance(model, GloreNet) and getattr(model, "model_config", None):
        model.model_config["glore"] = spec_to_config(model.glore_spec())
        model.model_config["glore_args"] = dict(unit_args) or model.model_config.get("glore_args")
    return model
