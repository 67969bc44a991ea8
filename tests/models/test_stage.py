"""The Stage container: iteration runs what forward runs; indexing and surgery count blocks, units stay attached."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from glore.layers import GloRe
from glore.models import Stage, create_model


def _open(units: list[nn.Module]) -> None:
    # Fresh units are the identity with a zero norm weight; open them so they change the output and get gradients.
    for unit in units:
        nn.init.constant_(unit.norm.weight, 0.5)


def _checkpoint_seq(stages: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """What timm's ``checkpoint_seq(stages, x, flatten=True)`` does: flatten by iterating, checkpoint each step."""
    functions = [f for stage in stages for f in stage]
    for function in functions:
        x = checkpoint(function, x, use_reentrant=False)
    return x


def test_gradient_checkpointing_over_list_of_stage_runs_the_units():
    torch.manual_seed(0)
    model = create_model("resnet_small", num_classes=3, glore="res3:1,res4:1", depths=(1, 2, 2, 1))
    units = [m for m in model.modules() if isinstance(m, GloRe)]
    _open(units)
    model.train()
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    x = torch.randn(2, 3, 32, 32)
    expected = model.layer4(model.layer3(model.layer2(model.layer1(stem(x)))))  # training mode: batch statistics
    out = _checkpoint_seq(stages, stem(x))
    assert torch.allclose(out, expected, atol=1e-6, rtol=1e-5)
    out.square().mean().backward()
    for unit in units:
        assert unit.conv_state.weight.grad is not None and unit.conv_state.weight.grad.abs().sum() > 0
        assert unit.conv_proj.weight.grad.abs().sum() > 0
    # The flattened sequence is exactly forward's: the stage's children in order.
    assert list(model.layer3) == [m for _, m in model.layer3.named_children()]
    assert list(model.layer3) == [model.layer3[0], model.layer3.glore1, model.layer3[1]]


def test_iteration_is_forward_and_indexing_counts_blocks():
    model = create_model("resnet50", glore="res4:3", num_classes=0).layer3
    assert len(model) == 6 and len(list(model)) == 9
    assert [type(m).__name__ for m in model].count("GloRe") == 3
    assert model[-1] is model._modules["5"] and model[1] is model._modules["1"]
    assert model.blocks == [model[i] for i in range(len(model))]
    assert isinstance(nn.Sequential(*model)[1], GloRe)  # a Sequential made by iterating keeps the units
    with pytest.raises(IndexError, match="block index 6 out of range for a stage of 6 blocks"):
        model[6]


def _tiny_stage() -> Stage:
    torch.manual_seed(0)
    blocks = [nn.Conv2d(4, 4, 1) for _ in range(4)]
    units = {1: GloRe(4, 2, 2), 3: GloRe(4, 2, 2)}
    _open(list(units.values()))
    return Stage(blocks, units).eval()


def test_setitem_replaces_the_block_and_keeps_the_unit():
    stage = _tiny_stage()
    unit = stage.glore1
    new = nn.Conv2d(4, 4, 1)
    stage[1] = new  # the old Sequential semantics replaced glore1 here
    assert stage[1] is new and stage.glore1 is unit
    assert [n for n, _ in stage.named_children()] == ["0", "glore1", "1", "2", "glore2", "3"]
    stage[-1] = new2 = nn.Conv2d(4, 4, 1)
    assert stage._modules["3"] is new2
    with pytest.raises(TypeError, match="must be an nn.Module"):
        stage[0] = "conv"


def test_insert_and_pop_count_blocks_and_keep_units_attached():
    stage = _tiny_stage()
    blocks, (u1, u2) = stage.blocks, list(stage.units.values())
    new = nn.Conv2d(4, 4, 1)
    stage.insert(1, new)  # after block 0's unit, before the old block 1
    assert list(stage) == [blocks[0], u1, new, blocks[1], blocks[2], u2, blocks[3]]
    assert [n for n, _ in stage.named_children()] == ["0", "glore1", "1", "2", "3", "glore2", "4"]
    assert stage.unit_positions() == (1, 4) and len(stage) == 5
    assert stage.pop(1) is new
    assert list(stage) == [blocks[0], u1, blocks[1], blocks[2], u2, blocks[3]]
    stage.append(new)
    assert stage[-1] is new and len(stage) == 5
    assert stage.pop() is new
    x = torch.randn(2, 4, 3, 3)
    with torch.no_grad():
        expected = blocks[3](u2(blocks[2](blocks[1](u1(blocks[0](x))))))
        assert torch.equal(stage(x), expected)
    # A block that carries a unit is not removed silently with it.
    with pytest.raises(ValueError, match=r"block\(s\) \[0\] are followed by unit\(s\) \['glore1'\]"):
        stage.pop(0)
    with pytest.raises(ValueError, match="glore2"):
        del stage[1:3]
    del stage.glore1  # units are removed by name; the others are renumbered in forward order
    assert [n for n, _ in stage.named_children()] == ["0", "1", "2", "glore1", "3"]
    assert stage.glore1 is u2 and stage.pop(0) is blocks[0]
    assert [n for n, _ in stage.named_children()] == ["0", "1", "glore1", "2"]


def test_slices_keep_their_units_and_repeat_is_refused():
    stage = _tiny_stage()
    part = stage[1:3]
    assert isinstance(part, Stage) and len(part) == 2
    assert [n for n, _ in part.named_children()] == ["0", "1", "glore1"] and part.glore1 is stage.glore2
    with pytest.raises(TypeError, match="repeating a stage"):
        stage * 2
    with pytest.raises(TypeError, match="extend"):
        stage += [nn.Identity()]


def test_changed_stage_still_saves_and_loads_as_built():
    model = create_model("resnet_small", num_classes=3, glore="res4:1", depths=(1, 1, 2, 1))
    model.layer3.append(create_model("resnet_small", depths=(1, 1, 2, 1)).layer3[1])
    assert model.glore_spec() == {"res4": (1,)}
    rebuilt = create_model("resnet_small", num_classes=3, glore="res4:1", depths=(1, 1, 3, 1))
    rebuilt.load_state_dict(model.state_dict())  # strict: the same keys after the change
