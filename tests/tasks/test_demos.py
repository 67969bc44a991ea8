"""``glore demo``: the verdict on made-up numbers, the sampling noise, determinism, and every task's quick demo."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glore.cli import main
from glore.engine import load_checkpoint
from glore.tools.demo import (
    DEMOS,
    DemoSummary,
    _verdict,
    binomial_noise,
    compare,
    summary_table,
)
from glore.tools.demo_segmentation import bootstrap_miou
from glore.tools.demo_video import VIDEO_DEMO


def test_a_winner_needs_the_mean_difference_beyond_the_spread_plus_the_noise():
    c = compare([0.50, 0.52, 0.48], [0.90, 0.95, 1.00], noise=0.03)
    assert c.difference == pytest.approx(0.45)
    assert c.spread == pytest.approx(0.05)  # the larger sample std: GloRe's 0.05 against the baseline's 0.02
    assert c.margin == pytest.approx(0.08) and c.winner == "glore"
    # the same difference of means, but the seeds disagree as much: no winner
    assert compare([0.50, 0.60, 0.70], [0.60, 0.70, 0.80], noise=0.01).winner is None
    # only the noise separates them: a difference of 0.05 against 0.06 of noise is no win
    assert compare([0.70, 0.70, 0.70], [0.75, 0.75, 0.75], noise=0.06).winner is None
    assert compare([0.9, 0.9], [0.5, 0.5], noise=0.05).winner == "baseline"
    single = compare([0.5], [0.9], noise=0.1)
    assert single.spread == 0.0 and single.winner == "glore"


@pytest.mark.parametrize(
    ("baseline", "glore", "noise", "match"),
    [([], [0.5], 0.1, "a value per seed"), ([0.5], [0.5], -0.1, "noise"), ([0.5], [0.5], math.nan, "noise")],
)
def test_compare_refuses_bad_input(baseline, glore, noise, match):
    with pytest.raises(ValueError, match=match):
        compare(baseline, glore, noise)


def test_the_verdict_speaks_of_the_mean_over_seeds():
    won = _verdict(compare([0.5, 0.5, 0.5], [0.94, 0.95, 0.96], 0.02), "top1", 500, "images")
    assert won.startswith("GloRe wins by more than the spread plus the noise (0.0300)")
    assert "mean test top1 over 3 seeds 0.9500 with GloRe vs 0.5000 without (difference +0.4500" in won
    assert "sampling noise 0.0200 of 500 test images" in won
    tied = _verdict(compare([0.5, 0.6], [0.55, 0.65], 0.01), "video_top1", 400, "videos")
    assert tied.startswith("No clear winner: mean test video top1 over 2 seeds")
    one = _verdict(compare([0.5], [0.9], 0.01), "miou", 300, "images")
    assert "one seed has no spread, so this is one draw" in one


def test_binomial_noise_is_the_standard_deviation_of_a_rate():
    assert binomial_noise(0.5, 100) == pytest.approx(0.05)
    assert binomial_noise(0.9, 400) == pytest.approx(math.sqrt(0.9 * 0.1 / 400))
    assert binomial_noise(1.0, 50) == 0.0 and binomial_noise(1.2, 50) == 0.0


def _confusion(tp_background: int, tp_object: int, object_as_background: int) -> np.ndarray:
    """A 2-class per-image confusion matrix (rows: true class, columns: predicted)."""
    return np.array([[tp_background, 0], [object_as_background, tp_object]])


def test_bootstrap_miou_resamples_images():
    perfect = np.stack([_confusion(90, 10, 0)] * 20)
    assert np.allclose(bootstrap_miou(perfect, rounds=50), 1.0)
    # half the images miss their object entirely: each resample's mIoU follows the share of such images
    mixed = np.stack([_confusion(90, 10, 0)] * 10 + [_confusion(90, 0, 10)] * 10)
    values = bootstrap_miou(mixed, rounds=400, seed=1)
    whole = (90 * 20 / (90 * 20 + 100) + 100 / 200) / 2  # the mIoU of the whole set
    assert abs(values.mean() - whole) < 0.01 and 0.01 < values.std() < 0.1
    assert np.array_equal(values, bootstrap_miou(mixed, rounds=400, seed=1))  # same seed, same resamples
    with pytest.raises(ValueError, match="confusions"):
        bootstrap_miou(np.zeros((3, 2, 3)))


def test_summary_table_has_one_row_per_demo():
    c = compare([0.62, 0.60, 0.64], [0.99, 1.0, 0.98], 0.03)
    summary = DemoSummary(DEMOS["classification"], "top1", 500, [], c, wall_s=125.0, cpu_s=200.0)
    table = summary_table([summary]).splitlines()
    assert table[0].startswith("| task | test metric | seeds | baseline | GloRe | difference | spread + noise |")
    assert table[2] == (
        "| classification | top1 (500 images) | 3 | 0.6200 ± 0.0200 | 0.9900 ± 0.0100 | +0.3700 | "
        "0.0200 + 0.0300 | GloRe | 2m05s, 3m20s |"
    )


def test_one_seed_gives_the_same_numbers_twice(tmp_path, capsys):
    """Two runs of a demo with the same seed on one machine print the same test values (the video demo: the
    cheapest)."""
    for name in ("a", "b"):
        assert main(["demo", "video", "--quick", "--seeds", "3", "--output", str(tmp_path / name)]) == 0
    reports = [(tmp_path / n / "video" / "report.md").read_text() for n in ("a", "b")]
    rows = [[line for line in r.splitlines() if line.startswith(("| baseline", "| glore"))] for r in reports]
    strip = [[line.rsplit("|", 2)[0] for line in r] for r in rows]  # all but the training time
    assert len(strip[0]) == 2 and strip[0] == strip[1]
    assert load_checkpoint(tmp_path / "a" / "video" / "glore" / "seed3" / "best.pt")["config"]["train"]["seed"] == 3


def test_demo_seeds_argument_is_checked(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "video", "--seeds", "0,x"])
    assert "--seeds" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("task", "header", "glore_label"),
    [
        ("segmentation", "| model | head | seeds | test miou | test pixel acc |", "| glore | glore | 1 |"),
        (
            "video",
            "| model | GloRe units | seeds | test video top1 | test clip top1 |",
            "| glore | res3:1,res4:1 | 1 |",
        ),
    ],
)
def test_task_demo_quick(tmp_path, capsys, task, header, glore_label):
    assert main(["demo", task, "--quick", "--output", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert header in printed and glore_label in printed and "sampling noise" in printed
    assert f"{task} demo: 2 runs in " in printed and "| task | test metric |" in printed
    out = tmp_path / task
    for name in ("report.md", "curves.png", "baseline/seed0/best.pt", "glore/seed0/best.pt"):
        assert (out / name).is_file(), name
    assert (tmp_path / "summary.md").is_file()
    baseline = load_checkpoint(out / "baseline" / "seed0" / "best.pt")
    assert baseline["task"] == task
    if task == "segmentation":
        assert baseline["model_config"]["head"] == "fcn"
    else:
        assert baseline["model_config"]["glore"] is None
    # glore visualize draws the unit's projection maps over the image, or over the clip's frames side by side
    checkpoint = out / "glore" / "seed0" / "best.pt"
    assert main(["visualize", str(checkpoint), "--samples", "2", "--out", str(tmp_path / "vis")]) == 0
    figures = sorted((tmp_path / "vis").glob("val*.png"))
    units = 1 if task == "segmentation" else 2  # the head's unit; the units after res3 and res4
    assert len(figures) == 2 * units
    with Image.open(figures[0]) as png:
        assert png.size[0] > 0 and png.size[1] > 0


def test_every_demo_recipe_loads_and_names_its_config():
    from glore.engine import load_config
    from glore.tools.demo import find_demo_config

    for demo in DEMOS.values():
        config = load_config(find_demo_config(demo.config))
        assert config.task == ("classification" if demo.name == "classification" else demo.name)
        assert len(demo.seeds) >= 3 and Path(find_demo_config(demo.config)).name == demo.config
    assert DEMOS["video"] is VIDEO_DEMO


def test_imports_run_one_way_between_the_demos():
    import subprocess
    import sys

    code = (
        "import sys, glore.tools.demo; a = sorted(m for m in sys.modules if m.startswith('glore.tools.demo_')); "
        "import glore.tools.demo_cli; print(a, sorted(glore.tools.demo.DEMOS))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    # the classification demo's module imports no task demo; the command imports them all, and they register
    assert out == "[] ['classification', 'segmentation', 'video']"
