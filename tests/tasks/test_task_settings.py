"""Typed task settings: every bad ``task_args`` value, and every ``data.*`` value a task would drop, is refused when the
config loads (``load_config``, ``glore train``, ``glore eval``) in one line naming the key; the documentation is the
declaration's; ``data.mean``/``data.std`` reach the video clips; the documented Kinetics evaluation gives 10 x 3 views.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import torch

from glore.cli import main
from glore.engine import ConfigError, load_config
from glore.engine.settings import Setting, resolve_settings, settings_markdown, settings_table
from glore.engine.task import build_task

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"

# (task, override, the start of the one-line answer)
BAD = [
    ("video", "task_args.precise_bn=two", "task_args.precise_bn: expected int >= 0, got str 'two'"),
    ("video", "task_args.precise_bn=-1", "task_args.precise_bn: expected int >= 0, got int -1"),
    ("video", "task_args.precise_bn=true", "task_args.precise_bn: expected int >= 0, got bool True"),
    ("video", "task_args.inflate=3", "task_args.inflate: expected a string or null, got int 3"),
    ("segmentation", "task_args.flip=maybe", "task_args.flip: expected bool (true or false), got str 'maybe'"),
    ("segmentation", "task_args.flip='true'", "task_args.flip: expected bool (true or false), got str 'true'"),
    ("segmentation", "task_args.flip=1", "task_args.flip: expected bool (true or false), got int 1"),
    ("segmentation", "task_args.scales=[0]", "task_args.scales: expected a non-empty list of float > 0, got list [0]"),
    ("segmentation", "task_args.scales=[]", "task_args.scales: expected a non-empty list of float > 0, got list []"),
    ("segmentation", "task_args.eval_resize=-3", "task_args.eval_resize: expected int > 0, float > 0, [int > 0"),
    ("segmentation", "task_args.eval_resize=[0,4]", "task_args.eval_resize: expected int > 0, float > 0, [int > 0"),
    ("segmentation", "task_args.mode=tiles", "task_args.mode: expected one of 'whole', 'slide', got str 'tiles'"),
    ("segmentation", "task_args.crop=[0,4]", "task_args.crop: expected int > 0 or [int > 0, int > 0]"),
    ("segmentation", "task_args.stride=[4,4,4]", "task_args.stride: expected int > 0 or [int > 0, int > 0]"),
    ("segmentation", "task_args.hflip=1.5", "task_args.hflip: expected float in [0, 1], got float 1.5"),
    ("segmentation", "task_args.aux_weight=-0.1", "task_args.aux_weight: expected float >= 0, got float -0.1"),
    ("segmentation", "task_args.scale=[2,1]", "task_args.scale: expected [min, max] with min <= max, got [2, 1]"),
    ("segmentation", "task_args.ohem={thresh: 0}", "task_args.ohem.thresh: expected float in (0, 1], got int 0"),
    ("segmentation", "task_args.ohem={keep: 1}", "task_args.ohem.keep: unknown option; valid: thresh, min_kept"),
    ("segmentation", "task_args.window=3", "task_args.window: unknown option; valid: aux_weight, ohem"),
    ("classification", "task_args.flip=true", "task_args.flip: unknown option; valid: none (this task has no options)"),
    # data.* fields the task would not apply
    ("segmentation", "data.color_jitter=0.4", "data.color_jitter: the segmentation task does not use it (its training"),
    ("segmentation", "data.crop_scale=[0.5,1.0]", "data.crop_scale: the segmentation task does not use it"),
    ("segmentation", "data.eval_crop_ratio=1.0", "data.eval_crop_ratio: the segmentation task does not use it"),
    ("video", "data.color_jitter=0.4", "data.color_jitter: the video task does not use it"),
    ("video", "data.eval_crop_ratio=1.0", "data.eval_crop_ratio: the video task does not use it"),
]


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text
    return text


@pytest.mark.parametrize(("task", "override", "answer"), BAD, ids=[f"{t}-{o}" for t, o, _ in BAD])
def test_a_bad_value_is_refused_when_the_config_loads(task, override, answer):
    with pytest.raises(ConfigError) as caught:
        load_config({"task": task}, [override])
    assert one_line(caught.value).startswith(answer)


@pytest.mark.parametrize(
    ("values", "answer"),
    [
        # the data's own normalisation: data.mean/std would be dropped
        (
            {"task": "segmentation", "data": {"name": "relational_seg", "transform": "none", "std": [1, 1, 1]}},
            "data.std",
        ),
        ({"task": "video", "data": {"name": "relational_video", "mean": [0, 0, 0]}}, "data.mean: the video task"),
        ({"task": "video", "data": {"name": "kinetics", "transform": "none"}}, "data.transform: the video task"),
        ({"task": "classification", "data": {"transform": "none", "mean": [0.5, 0.5, 0.5]}}, "data.mean"),
        ({"task": "classification", "data": {"name": "relational", "color_jitter": 0.3}}, "data.color_jitter"),
        # the video normalisation is set once, as data.mean/std
        ({"task": "video", "data": {"name": "kinetics", "val_kwargs": {"mean": [0, 0, 0]}}}, "data.val_kwargs.mean"),
        ({"task": "nope"}, "task: expected one of classification, segmentation, video, got 'nope'"),
    ],
)
def test_data_a_task_would_drop_is_refused(values, answer):
    with pytest.raises(ConfigError) as caught:
        load_config(values)
    assert one_line(caught.value).startswith(answer)


def test_good_values_are_kept_converted_and_completed_by_the_task():
    config = load_config(
        {"task": "segmentation", "task_args": {"aux_weight": 1, "ohem": {"thresh": 1}, "crop": 64, "flip": True}}
    )
    # the config keeps what the recipe set (ints widened where a float is declared): what config.yaml stores
    assert config.task_args == {
        "aux_weight": 1.0,
        "ohem": {"thresh": 1.0, "min_kept": 100_000},
        "crop": 64,
        "flip": True,
    }
    assert isinstance(config.task_args["aux_weight"], float)
    task = build_task(config)
    assert task.args["scales"] == [1.0] and task.args["mode"] == "whole" and task.crop == (64, 64)
    assert build_task(load_config({"task": "video"}, ["task_args.precise_bn=3"])).args["precise_bn"] == 3
    # YAML 1.1 booleans are booleans
    assert load_config({"task": "segmentation"}, ["task_args.flip=yes"]).task_args["flip"] is True


def test_a_config_built_in_code_is_checked_when_the_task_is_built():
    from glore.engine import Config

    with pytest.raises(ConfigError, match="^task_args.precise_bn: expected int >= 0, got str 'two'$"):
        build_task(Config(task="video", task_args={"precise_bn": "two"}))
    with pytest.raises(ConfigError, match="^data.color_jitter: the segmentation task does not use it"):
        build_task(Config(task="segmentation", data=_data(color_jitter=0.2)))


def _data(**changes):
    from glore.engine import Config

    data = Config().data
    for key, value in changes.items():
        setattr(data, key, value)
    return data


def test_a_setting_is_one_line_and_its_default_must_fit():
    settings = {
        "mode": Setting(Literal["a", "b"], "a", "how"),
        "count": Setting(int, 2, "how many", ge=1, le=4),
        "size": Setting(int | tuple[int, int], [2, 3], "a side or (h, w)", gt=0),
    }
    assert resolve_settings({"count": 4, "size": 5}, settings) == {"mode": "a", "count": 4, "size": 5}
    with pytest.raises(ConfigError, match=r"^task_args.count: expected int in \[1, 4\], got int 5$"):
        resolve_settings({"count": 5}, settings)
    with pytest.raises(ConfigError, match=r"^task_args.mode: expected one of 'a', 'b', got str 'c'$"):
        resolve_settings({"mode": "c"}, settings)
    with pytest.raises(ConfigError, match="^default: expected int >= 0"):
        Setting(int, -1, "a default out of its own range", ge=0)


@pytest.mark.parametrize("name", ["segmentation", "video"])
def test_the_documentation_is_written_from_the_declaration(name):
    import importlib

    module = importlib.import_module(f"glore.tasks.{name}")
    task = build_task(load_config({"task": name}))
    assert settings_table(task.settings) in module.__doc__
    docs = (ROOT / "docs" / "training.md").read_text()
    expected = settings_markdown(task.settings)
    assert expected in docs, f"docs/training.md: the {name} settings table differs from the code; expected:\n{expected}"
    for key in task.settings:
        assert f"| `{key}` |" in docs


# -- glore train and glore eval ----------------------------------------------------------------------------------------

CLI_CASES = [
    ("demo_video.yaml", "task_args.precise_bn=two", "task_args.precise_bn: expected int >= 0, got str 'two'"),
    ("demo_segmentation.yaml", "task_args.flip=maybe", "task_args.flip: expected bool (true or false), got str"),
    ("demo_segmentation.yaml", "task_args.scales=[0]", "task_args.scales: expected a non-empty list of float > 0"),
    ("demo_segmentation.yaml", "task_args.eval_resize=-3", "task_args.eval_resize: expected int > 0, float > 0"),
    ("demo_segmentation.yaml", "data.color_jitter=0.4", "data.color_jitter: the segmentation task does not use it"),
    ("demo.yaml", "data.mean=[0.5,0.5,0.5]", "data.mean: the classification task does not use it"),
]


@pytest.mark.parametrize(("recipe", "override", "answer"), CLI_CASES, ids=[c[1] for c in CLI_CASES])
@pytest.mark.parametrize("command", ["train", "eval"])
def test_glore_train_and_eval_answer_in_one_line_before_anything_runs(
    tmp_path, capsys, recipe, override, answer, command
):
    out = tmp_path / "run"
    args = [command, str(CONFIGS / recipe), "--set", override, "--set", f"output.dir={out}"]
    if command == "eval":
        args += ["--checkpoint", str(tmp_path / "missing.pt")]  # the config is answered before the checkpoint
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"glore {command}: {answer}"), err
    assert not out.exists()  # nothing ran


# -- video: data.mean/std, and the documented 10 x 3 evaluation ------------------------------------------------------

av = pytest.importorskip("av")


def write_video(path: Path, frames: int, size: tuple[int, int] = (48, 64), seed: int = 0) -> Path:
    """An MPEG-4 video whose frames have a horizontal ramp plus a level that grows with time and differs per video,
    so that crops at different places and clips at different times differ."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ramp = np.linspace(0, 120, size[1], dtype=np.float32)[None, :, None]  # (1, W, 1)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        for t in range(frames):
            level = (ramp + 1.5 * t + 7 * seed).clip(0, 255)
            image = np.broadcast_to(level, (*size, 3)).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def kinetics_root(tmp_path_factory) -> Path:
    """Kinetics class folders: two classes, one video each in train and val, 80 frames (10 distinct clip starts of
    an 8 x 8 clip)."""
    root = tmp_path_factory.mktemp("kinetics")
    for split in ("train", "val"):
        for k, name in enumerate(("abseiling", "zumba")):
            write_video(root / split / name / f"{name}_{split}.mp4", 80, seed=k)
    return root


def test_data_mean_and_std_reach_the_video_clips(kinetics_root):
    base = {
        "task": "video",
        "data": {"name": "kinetics", "root": str(kinetics_root), "kwargs": {"crop_size": 32}},
        "model": {"name": "resnet_small_3d"},
    }
    overrides = ["data.val_kwargs={num_clips: 1, num_crops: 1, test_short_side: 32}"]
    imagenet = build_task(load_config(base, overrides)).build_dataset("val", train=False)[0][0]
    mean, std = [0.25, 0.5, 0.75], [0.5, 0.25, 0.125]
    task = build_task(load_config(base, [*overrides, f"data.mean={mean}", f"data.std={std}"]))
    custom = task.build_dataset("val", train=False)[0][0]  # (3, T, H, W)
    # the same decoded pixels, normalised with each statistics
    m0, s0 = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1, 1)
    m1, s1 = torch.tensor(mean).view(3, 1, 1, 1), torch.tensor(std).view(3, 1, 1, 1)
    pixels = imagenet * s0 + m0
    assert torch.allclose(custom, (pixels - m1) / s1, atol=1e-5)
    assert not torch.allclose(custom, imagenet, atol=1e-2)
    # left at their defaults, the dataset's preprocessing preset decides (the official networks' MXNet statistics)
    from glore.data.video import OFFICIAL_MEAN, OFFICIAL_STD

    official = build_task(load_config(base, [*overrides, "data.kwargs.preprocess=official"]))
    official_set = official.build_dataset("val", train=False)
    assert torch.allclose(official_set.mean.flatten(), torch.tensor(OFFICIAL_MEAN))
    assert torch.allclose(official_set.std.flatten(), torch.tensor(OFFICIAL_STD))
    # and the training clips too
    train_set = task.build_dataset("train", train=True)
    assert torch.allclose(train_set.mean.flatten(), torch.tensor(mean)) and torch.allclose(
        train_set.std.flatten(), torch.tensor(std)
    )


def documented_eval_commands() -> list[tuple[str, list[str]]]:
    """Every ``glore eval`` command of a Kinetics recipe that the recipes, docs/video.md and the README document with
    10 x 3 views: (where, arguments after ``glore``)."""
    found = []
    sources = [*sorted(CONFIGS.glob("kinetics*.yaml")), ROOT / "docs" / "video.md", ROOT / "README.md"]
    for source in sources:
        lines = source.read_text().splitlines()
        if source.suffix == ".yaml":
            lines = [line.lstrip("#") for line in lines if line.startswith("#")]
        for i, line in enumerate(lines):
            if "glore eval" not in line or "kinetics" not in line:
                continue
            text = line
            while text.rstrip().endswith("\\"):
                i += 1
                text = text.rstrip()[:-1] + " " + lines[i]
            if "10 x 3" not in text and "10 clips x 3 crops" not in text:
                continue
            words = shlex.split(text.split("glore eval", 1)[1], comments=True)
            found.append((f"{source.name}: {text.strip()[:60]}", ["eval", *words]))
    return found


COMMANDS = documented_eval_commands()


def test_every_kinetics_recipe_documents_its_ten_by_three_command():
    documented = {args[1] for _, args in COMMANDS}
    recipes = {f"configs/{p.name}" for p in CONFIGS.glob("kinetics*.yaml")}
    assert recipes <= documented
    assert any(where.startswith("video.md") for where, _ in COMMANDS)
    assert any(where.startswith("README.md") for where, _ in COMMANDS)


@pytest.mark.parametrize(("where", "args"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_the_documented_kinetics_evaluation_gives_ten_clips_by_three_crops(kinetics_root, where, args):
    recipe = ROOT / args[1]
    overrides = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    # only the data's place and sizes change: the views are the documented command's
    overrides += [f"data.root={kinetics_root}", "data.kwargs.crop_size=32", "data.val_kwargs.test_short_side=32"]
    task = build_task(load_config(recipe, overrides))
    dataset = task.build_dataset(task.config.data.val_split, train=False)
    meter = task.create_meter(dataset)
    assert dataset.num_views == 30 and meter.num_views == 30
    if where != COMMANDS[0][0]:
        return  # the views themselves, decoded once
    views: dict[int, list[torch.Tensor]] = {}
    for index in range(len(dataset)):
        clip, _, meta = dataset[index]
        views.setdefault(meta["video"], []).append(clip)
    assert sorted(views) == [0, 1]
    for clips in views.values():
        assert len(clips) == 30
        # 30 different views: 10 clip starts x 3 crop positions (time moves the level, the crop the ramp)
        means = {
            (round(float(c.mean()), 3), round(float(c[:, :, :, 0].mean() - c[:, :, :, -1].mean()), 3)) for c in clips
        }
        assert len(means) == 30
        starts = {round(float(c.mean()), 2) for c in clips[::3]}  # crop 0 of each clip
        crops = {round(float(c[0, 0, 0, 0]), 2) for c in clips[:3]}  # the first clip's three crops
        assert len(starts) == 10 and len(crops) == 3
