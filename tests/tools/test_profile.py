"""glore profile: counts checked against independent sums, the paper's table within its tolerances, the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from glore.cli import main
from glore.layers import GloRe
from glore.models import create_model
from glore.tools.profile import PAPER_TABLE, paper_rows, profile, profile_model


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _hooked_macs(model: nn.Module, size: int) -> int:
    """Multiply-adds of every Conv2d and Linear, summed from their real output shapes (an independent count)."""
    total = 0

    def hook(module: nn.Module, args, out) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            # (Cout, Cin/g, kh, kw) weights applied at each of the n * H' * W' output positions
            total += out.numel() * (module.in_channels // module.groups) * kh * kw
        else:
            total += out.numel() * module.in_features

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model.eval()(torch.empty(1, 3, size, size, device=next(model.parameters()).device))
    return total


@pytest.mark.parametrize(("name", "size"), [("resnet_small", 64), ("resnet50", 224), ("dpn68", 96)])
def test_baseline_counts_equal_an_independent_sum(name, size):
    with torch.device("meta"):
        model = create_model(name)
    prof = profile_model(model, size, name=name)
    assert prof.total_macs == _hooked_macs(model, size)
    assert prof.total_params == sum(p.numel() for p in model.parameters())
    assert prof.glore_macs == 0 and prof.glore_params == 0
    assert list(prof.params) == ["stem", "res2", "res3", "res4", "res5", "head"]
    head = [model.fc] + ([model.final_norm] if hasattr(model, "final_norm") else [])  # the norm after res5, if any
    assert prof.params["head"] == sum(p.numel() for m in head for p in m.parameters())
    assert prof.params["res4"] == sum(p.numel() for p in model.layer3.parameters())


@pytest.mark.parametrize("order", ["direct", "reassociated"])
def test_unit_counts_include_their_matrix_products(order):
    """The units' count equals GloRe.macs: every product (convs and batched matmuls) is seen, in either order."""
    model = create_model("resnet50", glore="res3:2,res4:3", glore_args={"order": order}).to("meta")
    plain = profile("resnet50")
    prof = profile_model(model, 224)
    expected = 2 * GloRe(512).macs((1, 512, 28, 28))[order] + 3 * GloRe(1024).macs((1, 1024, 14, 14))[order]
    assert prof.glore_macs == expected
    assert prof.total_macs == plain.total_macs + expected
    assert prof.macs["res4"] - plain.macs["res4"] == 3 * GloRe(1024).macs((1, 1024, 14, 14))[order]
    assert prof.glore_params == sum(p.numel() for m in model.modules() if isinstance(m, GloRe) for p in m.parameters())


@pytest.mark.slow
def test_paper_table_within_tolerance():
    """Done-when of issue 3: parameters within 2%, GFLOPs within 5% of the paper, direct product order."""
    rows = paper_rows(order="direct")
    assert len(rows) == len(PAPER_TABLE) == 14
    bad = [(r["network"], r["method"], r["params_diff"], r["gflops_diff"]) for r in rows]
    bad = [b for b in bad if abs(b[2]) > 0.02 or abs(b[3]) > 0.05]
    assert bad == []


def test_cli_profile_prints_stages_and_units(capsys):
    assert main(["profile", "resnet_small", "--glore", "res3:1,res4:1", "--input", "64", "--order", "direct"]) == 0
    out = capsys.readouterr().out
    for part in ("stem", "res2", "res3", "res4", "res5", "head", "total", "(GloRe units)"):
        assert part in out
    assert main(["profile", "resnet_small", "--input", "64", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total_macs"] == profile("resnet_small", input_size=64).total_macs
    assert main(["profile"]) == 2
    assert "give a model name" in capsys.readouterr().out


def test_cli_paper_table(monkeypatch, capsys):
    # The full table is checked above; here only its printing, on cheap stand-in rows.
    import glore.tools.profile as prof_mod

    row = prof_mod.PaperRow("ResNet-small", "resnet_small", 1, 1, 0.1, 1.3, 50.0)
    monkeypatch.setattr(prof_mod, "PAPER_TABLE", (row,))
    assert main(["profile", "--paper", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| network | method | GFLOPs paper |") and "GloRe +1 +1" in out


def test_demo_counts_every_product_of_the_units():
    """The demo's MAC count is the profiler's, and FlopCounterMode alone counts the same: the eval-mode GloRe unit
    runs no product that it leaves out (tests/layers/test_glore_autocast.py checks the unit's count itself)."""
    from torch.utils.flop_counter import FlopCounterMode

    from glore.models import create_model
    from glore.tools.demo import count_macs

    model = create_model("resnet_small", num_classes=3, glore="res4:1").eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 32, 32))
    plain = counter.get_total_flops() // 2
    assert count_macs(model, (3, 32, 32)) == plain


# -- input sizes from the default config and the task -----------------------------------------------------------------


def test_profile_reads_the_networks_default_config(capsys):
    # no size given: the network's default input (an ImageNet image, a Cityscapes image, a Kinetics clip)
    assert profile("resnet50").input_size == (224, 224)
    assert profile("fcn_resnet_small").input_size == (96, 96)
    assert profile("resnet_small_3d").input_size == (8, 32, 32)
    assert profile("resnet_small_3d", input_size=24).input_size == (8, 24, 24)  # a side keeps the clip's frames
    # a network whose config says otherwise is profiled at its own input
    with torch.device("meta"):
        model = create_model("resnet_small", default_cfg={"input_size": [3, 48, 40]})
    prof = profile_model(model)
    assert prof.input_size == (48, 40) and prof.total_macs == profile_model(model, (48, 40)).total_macs
    assert prof.total_macs != profile_model(model, 64).total_macs
    with pytest.raises(ValueError, match=r"input_size must be a side or \(T, H, W\)"):
        profile("resnet_small_3d", input_size=(32, 32))
    assert main(["profile", "fcn_resnet50", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["input_size"] == [1024, 2048]
    assert main(["profile", "resnet18", "--head", "fcn"]) == 2  # a segmentation option, told from the config
    assert "options of segmentation networks, not resnet18" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("recipe", "size"),
    [
        ("imagenet_resnet50_glore.yaml", (224, 224)),
        ("cityscapes_fcn_resnet50_glore.yaml", (1024, 2048)),  # whole images
        ("kinetics_resnet50_3d_glore.yaml", (8, 224, 224)),
        ("demo_segmentation.yaml", (64, 64)),
        ("demo_video.yaml", (8, 32, 32)),
    ],
)
def test_each_task_says_the_input_size_its_evaluation_runs_at(recipe, size):
    from pathlib import Path

    from glore.engine import build_task, load_config

    path = Path(__file__).parents[2] / "configs" / recipe
    config = load_config(path)
    task = build_task(config)
    with torch.device("meta"):
        model = create_model(config.model.name, glore=config.model.glore, **config.model.kwargs)
    assert task.input_size(model) == size
    if config.task == "segmentation":  # sliding windows: the network sees the window
        slide = build_task(load_config(path, ["task_args.mode=slide", "task_args.crop=[256,512]"]))
        assert slide.input_size(model) == (256, 512)


def test_report_profiles_a_video_run_at_its_clips(tmp_path):
    from glore.engine import load_config, train
    from glore.tools.report import write_run_report

    recipe = {
        "task": "video",
        "model": {"name": "resnet_small_3d", "glore": "res4:1"},
        "data": {
            "name": "relational_video",
            "transform": "none",
            "batch_size": 4,
            "num_workers": 0,
            "kwargs": {"num_frames": 4, "image_size": 24, "square_size": 0.3, "min_distance": 0.3},
            "train_kwargs": {"num_samples": 4},
            "val_kwargs": {"num_samples": 4},
        },
        "train": {"epochs": 1, "device": "cpu", "progress": "off"},
        "output": {"dir": str(tmp_path), "tensorboard": False, "plots": False, "report": False},
    }
    train(load_config(recipe))
    text = write_run_report(tmp_path, samples=1).read_text()
    assert "resnet_small_3d, input 4x24x24" in text  # data.image_size (64) is not what the network saw
    assert "val0_layer3-glore1.png" in text
