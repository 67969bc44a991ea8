import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from glore.layers import GloRe
from glore.tools.visualize import assignment_map, glore_units, render_unit_figure, unit_views, visualize_model


def quadrant_input(channels: int = 8, size: int = 8) -> torch.Tensor:
    """Channel k (k < 4) is 1 in quadrant k and 0 elsewhere; other channels are 0."""
    x = torch.zeros(1, channels, size, size)
    half = size // 2
    for k, (rows, cols) in enumerate(
        [
            (slice(0, half), slice(0, half)),
            (slice(0, half), slice(half, None)),
            (slice(half, None), slice(0, half)),
            (slice(half, None), slice(half, None)),
        ]
    ):
        x[0, k, rows, cols] = 1.0
    return x


def quadrant_layout(size: int = 8) -> torch.Tensor:
    half = size // 2
    layout = torch.zeros(size, size, dtype=torch.long)
    layout[:half, half:] = 1
    layout[half:, :half] = 2
    layout[half:, half:] = 3
    return layout


def test_assignment_map_recovers_hand_set_regions():
    unit = GloRe(8, num_nodes=4, num_state=4)
    with torch.no_grad():
        unit.conv_proj.weight.zero_()
        unit.conv_proj.bias.zero_()
        for k in range(4):
            unit.conv_proj.weight[k, k, 0] = 5.0  # node k reads channel k: it dominates quadrant k
    model = nn.Sequential(nn.Identity(), unit)
    views = unit_views(model, quadrant_input())
    ((name, view),) = views.items()
    assert name == "1"
    assert np.array_equal(view.assignment[0], quadrant_layout().numpy())
    assert torch.equal(assignment_map(unit.projection(quadrant_input()))[0], quadrant_layout())
    # every node holds a quarter of the positions with weight 5
    assert np.allclose(view.node_mass[0], 5.0 * 16)


def test_residual_ratio_is_zero_for_fresh_unit_and_positive_after_training_signal():
    unit = GloRe(32)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), unit)
    images = torch.randn(2, 3, 12, 12)
    view = unit_views(model, images)["1"]
    assert view.residual_ratio.shape == (2, 12, 12)
    assert np.all(view.residual_ratio == 0)
    nn.init.constant_(unit.norm.weight, 1.0)
    nn.init.constant_(unit.gcn[0].node_conv.bias, 1.0)  # keep every node alive after the ReLU
    view = unit_views(model, images)["1"]
    assert np.all(view.residual_ratio > 0)


def test_views_shapes_and_adjacency():
    unit = GloRe(16, num_nodes=6, num_state=8)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), unit)
    view = unit_views(model, torch.randn(3, 3, 16, 16))["1"]
    assert view.projection.shape == (3, 6, 8, 8)
    assert view.assignment.shape == (3, 8, 8)
    assert view.assignment.max() < 6
    assert np.array_equal(view.adjacency, unit.gcn[0].node_conv.weight.detach()[:, :, 0].numpy())
    order = view.node_order(0)
    assert sorted(order.tolist()) == list(range(6))
    assert np.all(np.diff(view.node_mass[0][order]) <= 0)


def test_model_without_units_and_unknown_unit_are_refused():
    with pytest.raises(ValueError, match="no GloRe units"):
        unit_views(nn.Conv2d(3, 4, 1), torch.randn(1, 3, 4, 4))
    model = nn.Sequential(nn.Conv2d(3, 8, 1), GloRe(8))
    assert [name for name, _ in glore_units(model)] == ["1"]
    with pytest.raises(ValueError, match="unit must name one of"):
        unit_views(model, torch.randn(1, 3, 4, 4), unit="layer9.glore1")


def test_figure_png_has_the_requested_pixel_size(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), GloRe(16))
    nn.init.constant_(model[1].norm.weight, 0.5)
    images = torch.randn(2, 3, 32, 32)
    paths = visualize_model(model, images, tmp_path, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), max_nodes=4)
    assert [p.name for p in paths] == ["image0_1.png", "image1_1.png"]
    for path in paths:
        with Image.open(path) as png:
            assert png.format == "PNG"
            assert png.size == (1600, 900)
    view = unit_views(model, images)["1"]
    small = render_unit_figure(np.zeros((32, 32, 3)), view, 0, "1", tmp_path / "small.png", dpi=50, figsize=(8, 4))
    with Image.open(small) as png:
        assert png.size == (400, 200)


def train_tiny(tmp_path, tiny_recipe, glore, report=False):
    from glore.engine import load_config, train

    run_dir = tmp_path / f"run-{glore}"
    train(load_config(tiny_recipe(model={"glore": glore}, output={"dir": str(run_dir), "report": report})))
    return run_dir / "last.pt"


def test_visualize_command_writes_pngs_and_refuses_checkpoint_without_units(tmp_path, capsys, tiny_recipe):
    from glore.cli import main

    checkpoint = train_tiny(tmp_path, tiny_recipe, "res4:1")
    image = tmp_path / "bird.jpg"
    Image.fromarray((np.random.default_rng(0).random((48, 40, 3)) * 255).astype(np.uint8)).save(image)
    assert main(["visualize", str(checkpoint), "--images", str(image), "--out", str(tmp_path / "vis")]) == 0
    written = sorted((tmp_path / "vis").glob("*.png"))
    assert [p.name for p in written] == ["bird_layer3-glore1.png"]
    with Image.open(written[0]) as png:
        assert png.size == (1600, 900)
    assert main(["visualize", str(checkpoint), "--samples", "2", "--out", str(tmp_path / "val")]) == 0
    assert len(list((tmp_path / "val").glob("val*_layer3-glore1.png"))) == 2

    plain = train_tiny(tmp_path, tiny_recipe, None)
    capsys.readouterr()
    assert main(["visualize", str(plain), "--images", str(image)]) == 2  # a one-line refusal, exit status 2
    assert "has no GloRe units" in capsys.readouterr().err


def test_run_report_has_profile_metrics_curves_and_projection_maps(tmp_path, tiny_recipe):
    from glore.tools.report import write_run_report

    checkpoint = train_tiny(tmp_path, tiny_recipe, "res4:1", report=True)
    # The engine never writes reports (it does not import tools/); `glore train` does, after the run.
    assert not (checkpoint.parent / "report.md").exists()
    report = write_run_report(checkpoint.parent, samples=2)
    assert report == checkpoint.parent / "report.md"
    text = report.read_text()
    assert "with 1 GloRe unit(s) (layer3.glore1)" in text
    assert "## Model profile" in text and "| res4 |" in text
    assert "## Metrics" in text and "| val_top1 |" in text
    assert "## Config" in text and "name: resnet_small" in text
    maps = sorted((checkpoint.parent / "report").glob("*.png"))[:2]
    assert [p.name for p in maps] == ["val0_layer3-glore1.png", "val1_layer3-glore1.png"]
    assert all(f"report/{p.name}" in text for p in maps)

    plain = write_run_report(train_tiny(tmp_path, tiny_recipe, None).parent).read_text()
    assert "without GloRe units" in plain and "projection maps" not in plain


def test_unit_views_of_a_dpn_unit_read_the_residual_path():
    # A DPN unit takes the (resid, dense) pair and acts on the residual path: its views are of that path.
    from glore.models import create_model

    torch.manual_seed(0)
    kwargs = dict(depths=(1, 1, 1, 1), increments=(4, 4, 4, 4), k_r=8, groups=2)
    model = create_model("dpn68", num_classes=3, glore="res4:1", glore_args={"num_nodes": 5}, **kwargs)
    unit = model.layer3.glore1
    nn.init.constant_(unit.norm.weight, 0.5)
    images = torch.randn(2, 3, 64, 64)
    seen = {}
    hook = model.layer3[0].register_forward_hook(lambda _m, _i, out: seen.__setitem__("pair", out))
    views = unit_views(model, images)
    hook.remove()
    resid = seen["pair"][0]
    assert list(views) == ["layer3.glore1"] and resid.shape[1] == unit.channels == 256
    view = views["layer3.glore1"]
    assert view.projection.shape == (2, 5, 4, 4)
    with torch.no_grad():
        assert np.allclose(view.projection, unit.projection(resid).numpy(), atol=1e-6)
    assert np.all(view.residual_ratio > 0)


def test_visualize_reads_files_as_the_segmentation_task_does(tmp_path):
    """Images of different sizes, each through the task's evaluation preprocessing: one figure each."""
    from glore.cli import main
    from glore.engine import load_config, train

    recipe = {
        "task": "segmentation",
        "task_args": {"aux_weight": 0.0},
        "model": {"name": "fcn_resnet_small", "kwargs": {"head_channels": 16, "num_nodes": 4, "num_state": 8}},
        "data": {
            "name": "relational_seg",
            "transform": "none",
            "batch_size": 4,
            "num_workers": 0,
            "kwargs": {"image_size": 32},
            "train_kwargs": {"num_samples": 4},
            "val_kwargs": {"num_samples": 4},
        },
        "train": {"epochs": 1, "device": "cpu", "progress": "off"},
        "output": {"dir": str(tmp_path / "run"), "tensorboard": False, "plots": False, "report": False},
    }
    train(load_config(recipe))
    files = []
    for name, (h, w) in (("wide", (32, 48)), ("tall", (40, 24))):
        files.append(tmp_path / f"{name}.png")
        Image.fromarray((np.random.default_rng(h).random((h, w, 3)) * 255).astype(np.uint8)).save(files[-1])
    out = tmp_path / "vis"
    args = ["visualize", str(tmp_path / "run" / "best.pt"), "--images", *map(str, files), "--out", str(out)]
    assert main(args) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["tall_head-unit.png", "wide_head-unit.png"]
