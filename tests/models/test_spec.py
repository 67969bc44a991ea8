"""The insertion spec: parsing, placement of units, names, and errors."""

from __future__ import annotations

import warnings

import pytest
import torch

from glore.layers import GloRe
from glore.models import create_model, parse_glore_spec, unit_positions

RESNET50 = {"res2": 3, "res3": 4, "res4": 6, "res5": 3}


@pytest.mark.parametrize(
    ("count", "depth", "expected"),
    [
        (1, 1, (1,)),
        (2, 4, (1, 3)),
        (3, 6, (1, 3, 5)),
        (2, 24, (6, 18)),
        (3, 36, (6, 18, 30)),
        (3, 23, (4, 12, 20)),  # ceil(23/6)=4, ceil(69/6)=12, ceil(115/6)=20
        (4, 4, (1, 2, 3, 4)),
        (0, 5, ()),
    ],
)
def test_unit_positions_follow_the_formula(count, depth, expected):
    assert unit_positions(count, depth) == expected


def test_unit_positions_spread_evenly():
    for depth in range(1, 40):
        for count in range(1, depth + 1):
            pos = unit_positions(count, depth)
            assert len(set(pos)) == count and pos == tuple(sorted(pos)) and 1 <= pos[0] and pos[-1] <= depth


@pytest.mark.parametrize(
    "spec",
    [
        "res3:2,res4:3",
        " layer2 : 2 , layer3:3 ",
        {"res3": 2, "res4": 3},
        {"layer2": [1, 3], "res4": [5, 1, 3]},
        "res3:[1,3],res4:[1, 3, 5]",
    ],
)
def test_equivalent_specs(spec):
    assert parse_glore_spec(spec, RESNET50) == {"res3": (1, 3), "res4": (1, 3, 5)}


def test_empty_specs():
    assert parse_glore_spec(None, RESNET50) == {}
    assert parse_glore_spec("", RESNET50) == {}
    assert parse_glore_spec({"res4": 0}, RESNET50) == {}


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("res6:1", ValueError, "unknown stage 'res6'"),
        ({"layr3": 2}, ValueError, "did you mean 'layer3'"),
        ("res4=3", ValueError, "expected items like 'res4:3'"),
        ("res4:7", ValueError, "cannot place 7 units in a stage of 6 blocks"),
        ({"res4": [0, 2]}, ValueError, r"must be in 1\.\.6"),
        ({"res4": [2, 2]}, ValueError, "repeat"),
        ({"res4": 1.5}, TypeError, "count"),
        ({"res4": True}, TypeError, "count"),
        ({"res4": 1, "layer3": 2}, ValueError, "given twice"),
        ("res4:1,res4:2", ValueError, "given twice"),
        (3, TypeError, "glore must be None, a string"),
    ],
)
def test_bad_specs_raise_clearly(spec, error, match):
    with pytest.raises(error, match=match):
        parse_glore_spec(spec, RESNET50)


def test_res5_warns_and_other_stages_do_not():
    with pytest.warns(UserWarning, match="paper never"):
        parse_glore_spec("res5:1", RESNET50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_glore_spec("res2:1,res3:2,res4:3", RESNET50)


def test_units_are_named_and_placed_in_forward_order():
    model = create_model("resnet50", glore="res3:2,res4:3")
    assert [n for n, _ in model.layer3.named_children()] == ["0", "glore1", "1", "2", "glore2", "3", "4", "glore3", "5"]
    assert [n for n, _ in model.layer2.named_children()] == ["0", "glore1", "1", "2", "glore2", "3"]
    assert [n for n, _ in model.layer1.named_children()] == ["0", "1", "2"]
    assert isinstance(model.layer3.glore2, GloRe) and model.layer3.glore2.channels == 1024
    assert model.layer2.glore1.channels == 512
    # Indexing stays torchvision's: blocks only.
    assert len(model.layer3) == 6 and model.layer3[-1] is model.layer3._modules["5"]
    assert model.layer3.unit_positions() == (1, 3, 5)
    assert model.model_config["glore"] == {"res3": [1, 3], "res4": [1, 3, 5]}


def test_units_run_after_their_blocks():
    model = create_model("resnet_small", glore={"res4": [1]}, depths=(1, 1, 2, 1)).eval()
    seen = []
    for name, module in model.layer3.named_children():
        module.register_forward_hook(lambda m, i, o, name=name: seen.append(name))
    model(torch.randn(1, 3, 32, 32))
    assert seen == ["0", "glore1", "1"]


def test_units_start_as_identity_and_glore_args_reach_them():
    model = create_model(
        "resnet_small", glore="res4:1", glore_args={"num_nodes": 8, "num_state": 16, "order": "direct"}
    )
    unit = model.layer3.glore1
    assert (unit.num_nodes, unit.num_state, unit.order) == (8, 16, "direct")
    assert torch.count_nonzero(unit.norm.weight) == 0
    assert model.model_config["glore_args"] == {"num_nodes": 8, "num_state": 16, "order": "direct"}


def test_glore_args_errors():
    with pytest.raises(TypeError, match="did you mean 'num_nodes'"):
        create_model("resnet_small", glore="res4:1", glore_args={"num_node": 8})
    with pytest.warns(UserWarning, match="zero_init=False: the inserted units do not start as the identity"):
        create_model("resnet_small", glore="res4:1", glore_args={"zero_init": False})
    with pytest.raises(ValueError, match="order must be one of"):
        create_model("resnet_small", glore="res4:1", glore_args={"order": "fast"})


def test_nonlocal_block_at_the_same_positions():
    import torch

    from glore.layers import GloRe, NonLocal

    model = create_model("resnet_small", num_classes=3, glore="res4:1", glore_args={"block": "nonlocal"})
    assert isinstance(model.layer3.glore1, NonLocal)
    assert not any(isinstance(m, GloRe) for m in model.modules())
    assert model.layer3.glore1.norm.weight.abs().sum() == 0  # the network's init keeps the block's identity
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    rebuilt = create_model(**model.model_config)
    assert isinstance(rebuilt.layer3.glore1, NonLocal)
    with pytest.raises(TypeError, match="unknown option 'num_nodes' for block='nonlocal'"):
        create_model("resnet_small", glore="res4:1", glore_args={"block": "nonlocal", "num_nodes": 4})
    with pytest.raises(ValueError, match="block must be one of"):
        create_model("resnet_small", glore="res4:1", glore_args={"block": "attention"})
    with pytest.raises(ValueError, match="DPNs take GloRe units only"):
        create_model("dpn68", glore="res4:1", glore_args={"block": "nonlocal"})
