"""glore's video pipeline against the official GloRe code (facebookresearch/GloRe): the official test preprocessing
and sampler, ported below as an oracle, on a generated video; the official optimiser's parameter groups and precise
BN against hand computations."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from glore.data import create_dataset
from glore.data.video import OFFICIAL_MEAN, OFFICIAL_STD, read_frames, video_info

av = pytest.importorskip("av")


def write_textured_video(path: Path, frames: int, size: tuple[int, int]) -> Path:
    """An MPEG-4 video of smooth colour gradients that move from frame to frame (textured, so a crop or resize that
    is one pixel off shows)."""
    h, w = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.height, stream.width, stream.pix_fmt = h, w, "yuv420p"
        stream.codec_context.gop_size = 12
        stream.codec_context.bit_rate = 4_000_000
        for i in range(frames):
            r = 127 + 120 * np.sin((x + 3 * i) / 9.0)
            g = 127 + 120 * np.cos((y - 2 * i) / 7.0)
            b = 127 + 120 * np.sin((x + y + i) / 13.0)
            image = np.stack([r, g, b], axis=-1).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# ---------------------------------------------------------------------------------------------------------------
# A port of the official test pipeline, used as an oracle (facebookresearch/GloRe: data/video_sampler.py
# EvenlySampling, data/image_transforms.py Resize / CenterCrop / Normalize, data/video_transforms.py ToTensor,
# network/config.py mean/std, test/test-single-clip.py). OpenCV's INTER_LINEAR resize is written out in numpy
# (half-pixel centres, borders clamped, no antialiasing; rounded to uint8 as OpenCV returns uint8 frames).


def official_evenly_sampling(range_max: int, num: int, interval: int, num_times: int, copy_id: int) -> list[int]:
    frame_range = (num - 1) * interval + 1
    if frame_range > range_max:
        return (list(range(0, range_max)) * num)[0:num]
    if range_max - frame_range * num_times == 0:
        clips = [x * frame_range for x in range(0, num_times)]
    elif range_max - frame_range * num_times > 0:
        step_size = (range_max - frame_range * num_times) / float(num_times + 1) + frame_range
        clips = [math.ceil(x * step_size - frame_range) for x in range(1, num_times + 1)]
    else:
        step_size = (range_max - frame_range * num_times) / float(num_times - 1) + frame_range
        clips = [int(x * step_size) for x in range(0, num_times)]
    cursor = copy_id % len(clips)
    return list(range(clips[cursor], clips[cursor] + frame_range, interval))


def opencv_linear_resize(image: np.ndarray, new_w: int, new_h: int) -> np.ndarray:
    """cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR) for an (H, W, C) uint8 image."""
    h, w = image.shape[:2]

    def taps(out: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = (np.arange(out) + 0.5) * (size / out) - 0.5
        left = np.floor(pos).astype(int)
        frac = pos - left
        frac[left < 0], left[left < 0] = 0.0, 0
        frac[left >= size - 1], left[left >= size - 1] = 0.0, size - 1
        return left, np.minimum(left + 1, size - 1), frac

    x0, x1, fx = taps(new_w, w)
    y0, y1, fy = taps(new_h, h)
    src = image.astype(np.float64)
    rows = src[y0] * (1 - fy)[:, None, None] + src[y1] * fy[:, None, None]
    out = rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def official_resize(data: np.ndarray, size: int) -> np.ndarray:
    h, w, _ = data.shape
    if min(w, h) == size:
        return data
    if w < h:
        new_w, new_h = size, int(size * h / w)
    else:
        new_w, new_h = int(size * w / h), size
    if (h != new_h) or (w != new_w):
        # OpenCV resizes all T x 3 channels of the (H, W, T * 3) array at once: channel by channel, the same
        return np.concatenate(
            [opencv_linear_resize(data[:, :, c : c + 3], new_w, new_h) for c in range(0, data.shape[2], 3)], axis=2
        )
    return data


def official_center_crop(data: np.ndarray, size: int) -> np.ndarray:
    h, w, _ = data.shape
    x1 = int(round((w - size) / 2.0))
    y1 = int(round((h - size) / 2.0))
    return data[y1 : y1 + size, x1 : x1 + size, :]


def official_to_tensor(clip: np.ndarray) -> torch.Tensor:
    h, w, _ = clip.shape
    return torch.from_numpy(clip.reshape((h, w, -1, 3)).transpose((3, 2, 0, 1))).float() / 255.0


def official_normalize(tensor: torch.Tensor) -> torch.Tensor:
    mean = [124 / 255, 117 / 255, 104 / 255]  # network/config.py: MXNet's default
    std = [1 / (0.0167 * 255)] * 3
    for t, m, s in zip(tensor, mean, std, strict=True):
        t.sub_(m).div_(s)
    return tensor


def official_single_clip(path: Path, total: int) -> tuple[list[int], torch.Tensor]:
    """The frames and the tensor of test/test-single-clip.py: 8 frames every 8, Resize(256), CenterCrop(224)."""
    indices = official_evenly_sampling(total, num=8, interval=8, num_times=1, copy_id=0)
    frames = read_frames(path, indices)  # the same decoder for both: the test compares preprocessing
    clip = np.concatenate(list(frames), axis=2)  # [(H, W, 3)] * T -> (H, W, T * 3)
    clip = official_center_crop(official_resize(clip, 256), 224)
    return indices, official_normalize(official_to_tensor(clip))


# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("frames", "size"), [(58, (288, 352)), (70, (300, 260)), (20, (256, 340))])
def test_the_official_single_clip_test_is_reproduced_to_one_grey_level(tmp_path, frames, size):
    """58 frames: the clip starts at frame ceil(1 / 2) = 1; a portrait video; a video shorter than the span (frames
    0..7). Each against the official pipeline on the same decoded frames: the same indices, the same tensor to 1/255
    of a pixel (OpenCV rounds its resize to uint8 in fixed point)."""
    path = write_textured_video(tmp_path / "v.mp4", frames, size)
    (tmp_path / "val" / "a").mkdir(parents=True)
    path.rename(tmp_path / "val" / "a" / "v.mp4")
    path = tmp_path / "val" / "a" / "v.mp4"
    total, _ = video_info(path)
    data = create_dataset(
        "kinetics",
        tmp_path,
        "val",
        num_frames=8,
        interval=8,
        crop_size=224,
        test_short_side=256,
        protocol="single_clip",
        preprocess="official",
        short_video="official",
    )
    assert data.frame_indices(total, 0) == official_single_clip(path, total)[0]
    clip = data[0][0]
    expected = official_single_clip(path, total)[1]
    assert clip.shape == expected.shape == (3, 8, 224, 224)
    error = (clip - expected).abs() * data.std  # back to [0, 1] pixels
    assert error.max() <= 1 / 255 + 1e-6
    assert error.mean() < 0.4 / 255  # most pixels exact (torch rounds its uint8 interpolation in fixed point)


def test_glores_own_preprocessing_is_not_the_official_one(tmp_path):
    """The oracle tells the presets apart: crop-then-resize with antialiasing is several grey levels off."""
    (tmp_path / "val" / "a").mkdir(parents=True)
    path = write_textured_video(tmp_path / "val" / "a" / "v.mp4", 60, (288, 352))
    options = dict(num_frames=8, interval=8, crop_size=224, test_short_side=256, protocol="single_clip")
    glore = create_dataset("kinetics", tmp_path, "val", mean=OFFICIAL_MEAN, std=OFFICIAL_STD, **options)
    _, expected = official_single_clip(path, video_info(path)[0])
    error = (glore[0][0] - expected).abs() * glore.std
    assert error.max() > 4 / 255


# ---------------------------------------------------------------------------------------------------------------
# Class sets across splits, in every layout.


def video_task(root: Path, **data: object):
    from glore.engine import load_config
    from glore.engine.task import build_task

    options = {"num_frames": 2, "interval": 1, "crop_size": 16, "short_side": [16, 16], "test_short_side": 16}
    config = load_config(
        {
            "task": "video",
            "model": {"name": "resnet_small_3d"},
            "data": {"name": "kinetics", "root": str(root), "kwargs": options, **data},
            "train": {"device": "cpu"},
        }
    )
    return build_task(config)


def small_video(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_textured_video(path, 4, (16, 16))


def test_a_val_csv_label_absent_from_train_stops_the_run_in_one_line(tmp_path):
    import csv

    for split, labels in (("train", ["abseiling", "zumba"]), ("val", ["abseiling", "yodelling"])):
        with open(tmp_path / f"{split}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
            for k, label in enumerate(labels):
                writer.writerow([label, f"{split}{k}", 1, 11, split])
                small_video(tmp_path / split / f"{split}{k}_000001_000011.mp4")
    with pytest.raises(ValueError, match=r"val.csv, line 3: label 'yodelling' is not one of the 2 classes") as error:
        video_task(tmp_path).build_datasets()
    assert "\n" not in str(error.value)


def test_a_val_folder_missing_a_class_keeps_the_training_labels(tmp_path):
    for split, names in (("train", ["jump", "run", "swim"]), ("val", ["jump", "swim"])):
        for name in names:
            small_video(tmp_path / split / name / "a.mp4")
    train, val = video_task(tmp_path).build_datasets()
    assert train.classes == val.classes == ["jump", "run", "swim"]
    assert [y for _, y in val.videos] == [0, 2]  # not [0, 1]: "swim" keeps its training index
    small_video(tmp_path / "val" / "yodel" / "a.mp4")
    with pytest.raises(ValueError, match=r"class folder 'yodel', which is not one of the 3 classes"):
        video_task(tmp_path).build_datasets()


def test_split_files_and_lists_are_compared_too(tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "train.txt").write_text("0 0 train/a.mp4\n1 1 train/b.mp4\n")
    (lists / "val.txt").write_text("0 1 val/a.mp4\n")
    for split, name in (("train", "a"), ("train", "b"), ("val", "a")):
        small_video(tmp_path / split / f"{name}.mp4")
    (lists / "classes_train.txt").write_text("0 jump\n1 run\n")
    (lists / "classes_val.txt").write_text("0 run\n1 jump\n")  # another order: every label would be wrong
    data = {"kwargs": {"layout": "list", "list_file": "lists/{split}.txt", "num_frames": 2, "interval": 1,
                       "crop_size": 16, "short_side": [16, 16], "test_short_side": 16},
            "train_kwargs": {"class_file": "lists/classes_train.txt"},
            "val_kwargs": {"class_file": "lists/classes_val.txt"}}  # fmt: skip
    with pytest.raises(ValueError, match="classes_val.txt names other classes than the training split's"):
        video_task(tmp_path, **data).build_datasets()
    data["val_kwargs"] = {"class_file": "lists/classes_train.txt"}
    train, val = video_task(tmp_path, **data).build_datasets()
    assert val.classes == ["jump", "run"] and [y for _, y in val.videos] == [1]


def test_precise_bn_passes_over_batches_whose_samples_were_all_skipped():
    from glore.data import Batch, collate
    from glore.tasks.video import precise_batchnorm

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 1), torch.nn.BatchNorm3d(4))
    clips = [torch.randn(2, 3, 2, 4, 4) + k for k in range(2)]
    empty = collate([None, None])  # a batch of two unreadable videos
    batches = [Batch(clips[0], torch.zeros(2), {}, 0), empty, Batch(clips[1], torch.zeros(2), {}, 0)]
    assert precise_batchnorm(net, iter(batches), count=3) == 2
    expected = torch.stack([net[0](c).mean(dim=(0, 2, 3, 4)) for c in clips]).mean(0)
    assert torch.allclose(net[1].running_mean, expected, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# The official optimiser (train_model.py): lr x 0.5 on "conv_m2" (each block's (1,3,3) convolution and the BatchNorm
# before it), weight decay on every parameter but the biases.

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "kinetics_resnet50_3d_glore.yaml"


def test_the_official_param_rules_select_what_the_official_optimiser_does():
    import re

    from glore.models.resnet3d import _official_block_key

    official = []  # every block parameter of the official R50, named as the official code names it
    for stage, blocks in zip("2345", (3, 4, 6, 3), strict=True):
        for b in range(1, blocks + 1):
            for layer in ("conv_m1", "conv_m2", "conv_m3", *(("conv_w1",) if b == 1 else ())):
                for kind, tails in (("bn", ("weight", "bias")), ("conv", ("weight",))):
                    official += [(f"conv{stage}.B{b:02d}.{layer}.{kind}.{t}", (stage, f"{b:02d}", layer, kind, t))
                                 for t in tails]  # fmt: skip
    from glore.engine import load_config

    rules = load_config(RECIPE).optim.param_rules
    half = re.compile(rules[1].match)
    no_decay = re.compile(rules[0].match)
    for name, parts in official:
        glore = _official_block_key(*parts)
        assert bool(half.search(glore)) == ("conv_m2" in name), (name, glore)
        assert bool(no_decay.search(glore)) == name.endswith(".bias"), (name, glore)


def test_one_official_sgd_step_against_a_hand_computation():
    import re

    from glore.engine import build_optimizer, load_config
    from glore.models import create_model

    config = load_config(RECIPE)
    torch.manual_seed(0)
    model = create_model("resnet_small_3d", num_classes=3, glore="res3:1", glore_args={"normalize": False})
    optimizer = build_optimizer(model, config)
    assert optimizer.param_groups[0]["lr"] == 0.05 and optimizer.param_groups[0]["weight_decay"] == 1e-4
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for k, p in enumerate(model.parameters()):
        p.grad = torch.full_like(p, 0.01 * (k % 7 + 1))
    optimizer.step()
    lr, wd, momentum = 0.05, 1e-4, 0.9
    for name, p in model.named_parameters():
        mult = 0.5 if re.search(r"^layer[1-4]\.\d+\.(bn2|conv2)\.", name) else 1.0
        decay = 0.0 if name.endswith(".bias") else wd  # BatchNorm scales decay, as officially
        d = p.grad + decay * before[name]  # first step: the momentum buffer is d itself
        expected = before[name] - lr * mult * (d + momentum * d)  # Nesterov: d + momentum * buffer
        torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-7, msg=name)
    names = {n for n, _ in model.named_parameters()}
    assert {"layer1.0.bn2.weight", "layer1.0.conv2.weight", "layer2.glore1.norm.weight"} <= names


def test_a_param_rule_that_matches_nothing_is_named():
    from glore.engine import build_optimizer, load_config
    from glore.models import create_model

    config = load_config(RECIPE, ["optim.param_rules=[{match: 'conv_m2', lr_mult: 0.5}]"])
    with pytest.raises(ValueError, match=r"optim.param_rules\[0\].match: 'conv_m2' matches no parameter"):
        build_optimizer(create_model("resnet_small_3d", num_classes=3), config)
    with pytest.raises(ValueError, match=r"optim.param_rules\[0\].lr_mult"):
        load_config(RECIPE, ["optim.param_rules=[{match: 'x', lr_mult: half}]"])


# ---------------------------------------------------------------------------------------------------------------
# glore predict given a folder or an image for a video network: one line each.


def test_predict_on_a_folder_or_an_image_says_so_in_one_line(tmp_path, capsys):
    from PIL import Image

    from glore.cli import main

    (tmp_path / "clips").mkdir()
    assert main(["predict", str(tmp_path / "unused.pt"), str(tmp_path / "clips")]) == 2
    err = capsys.readouterr().err.strip()
    assert "INPUT: " in err and "is a folder; give the files in it" in err and "\n" not in err

    image = tmp_path / "frame.jpg"
    Image.fromarray(np.zeros((20, 30, 3), dtype=np.uint8)).save(image)
    for split in ("train", "val"):
        small_video(tmp_path / split / "a" / "v.mp4")
    with pytest.raises(ValueError, match=r"frame.jpg: an image \(jpeg\), not a video") as error:
        video_task(tmp_path).load_input(str(image))
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------------------------------------------------------
# The official precise BN (train/model.py fit): training steps with biases and BatchNorm scales fixed, then forward
# passes whose running averages become the statistics.


def test_the_official_precise_bn_fixes_biases_and_backbone_batchnorm_scales():
    from glore.models import create_model
    from glore.tasks.video import precise_bn_frozen

    model = create_model("resnet_small_3d", num_classes=3, glore="res3:1", glore_args={"normalize": False})
    frozen = {id(p) for p in precise_bn_frozen(model)}
    names = {n for n, p in model.named_parameters() if id(p) in frozen}
    official_rule = {n for n, _ in model.named_parameters() if n.endswith(".bias")}
    norms = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm3d)}
    assert names == official_rule | (norms - {"layer2.glore1.norm.weight"})  # the unit's BN (official "blocker")
    assert "layer2.glore1.norm.weight" in {n for n, _ in model.named_parameters()}


def test_the_official_precise_bn_two_phases_against_a_hand_computation():
    from glore.data import Batch, collate
    from glore.tasks.video import official_precise_batchnorm

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv3d(3, 4, 1, bias=False),
        torch.nn.BatchNorm3d(4),
        torch.nn.AdaptiveAvgPool3d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 2),
    )
    m = 0.97  # a momentum that forgets the start within the 2 statistics batches: the official running averages
    net[1].momentum = m
    clips = [torch.randn(2, 3, 2, 4, 4) * (1 + k % 3) + k for k in range(6)]
    batches = [Batch(c, torch.tensor([0, 1]), {}, 0) for c in clips]
    batches.insert(3, collate([None]))  # an all-skipped batch: passed over
    steps = []

    def step(batch, params):  # a plain SGD step, lr 0.1, on the parameters given
        steps.append({id(p) for p in params})
        loss = torch.nn.functional.cross_entropy(net(batch.inputs), batch.targets)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p -= 0.1 * g
        return float(loss.detach())

    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    stats0 = (net[1].running_mean.clone(), net[1].running_var.clone())
    assert official_precise_batchnorm(net, iter(batches), train_steps=3, stat_steps=2, step=step) == (3, 2)
    trained = {id(net[0].weight), id(net[4].weight)}
    assert steps == [trained] * 3  # biases and the BatchNorm's scale stay fixed
    for name in ("1.weight", "1.bias", "4.bias"):
        assert torch.equal(net.get_parameter(name), before[name])
    assert not torch.equal(net[0].weight, before["0.weight"])

    # Phase 2 by hand: replay phase 1's running averages with the weights each step saw, then the two forward passes
    # (clips 3 and 4; clip 5 is left) at the final weights: x <- (1 - m) x + m batch statistic.
    mean, var = stats0
    conv_w = before["0.weight"].clone()
    lin_w = before["4.weight"].clone()
    for clip in clips[:3]:
        out = torch.nn.functional.conv3d(clip, conv_w)  # (2, 4, 2, 4, 4)
        mean = (1 - m) * mean + m * out.mean(dim=(0, 2, 3, 4))
        var = (1 - m) * var + m * out.var(dim=(0, 2, 3, 4), unbiased=True)
        # the step's update of the two trained weights, as step() does it
        w = conv_w.clone().requires_grad_(True)
        v = lin_w.clone().requires_grad_(True)
        normed = torch.nn.functional.batch_norm(
            torch.nn.functional.conv3d(clip, w), None, None, before["1.weight"], before["1.bias"], training=True
        )
        logits = torch.nn.functional.linear(normed.mean(dim=(2, 3, 4)), v, before["4.bias"])
        gw, gv = torch.autograd.grad(torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])), (w, v))
        conv_w, lin_w = (conv_w - 0.1 * gw).detach(), (lin_w - 0.1 * gv).detach()
    torch.testing.assert_close(net[0].weight.detach(), conv_w)
    for clip in clips[3:5]:
        out = torch.nn.functional.conv3d(clip, conv_w)
        mean = (1 - m) * mean + m * out.mean(dim=(0, 2, 3, 4))
        var = (1 - m) * var + m * out.var(dim=(0, 2, 3, 4), unbiased=True)
    torch.testing.assert_close(net[1].running_mean, mean)
    torch.testing.assert_close(net[1].running_var, var)
    assert net.training  # the mode it had

    # At momentum 0.1 two batches leave 81% of the old statistics: a phase that short averages its batches instead.
    net[1].momentum = 0.1
    assert official_precise_batchnorm(net, iter(batches[4:7]), train_steps=0, stat_steps=2, step=step) == (0, 2)
    outs = [torch.nn.functional.conv3d(clip, conv_w) for clip in clips[3:5]]  # (2, 4, 2, 4, 4) each
    torch.testing.assert_close(net[1].running_mean, torch.stack([o.mean(dim=(0, 2, 3, 4)) for o in outs]).mean(0))
    torch.testing.assert_close(
        net[1].running_var, torch.stack([o.var(dim=(0, 2, 3, 4), unbiased=True) for o in outs]).mean(0)
    )
    assert net[1].momentum == 0.1


def test_the_official_precise_bn_runs_in_glore_train(tmp_path, monkeypatch):
    from glore.engine import load_config, train
    from glore.engine.trainer import Trainer
    from glore.tools.demo import TASK_QUICK_OVERRIDES

    calls = []
    real = Trainer._extra_step

    def counted(self, batch, params=None):
        calls.append(len(params))
        return real(self, batch, params)

    monkeypatch.setattr(Trainer, "_extra_step", counted)

    recipe = Path(__file__).resolve().parents[2] / "configs" / "demo_video.yaml"
    overrides = [
        *TASK_QUICK_OVERRIDES,
        "task_args.precise_bn=3",
        "task_args.precise_bn_mode=official",
        f"output.dir={tmp_path}",
        "train.progress=off",
    ]
    config = load_config(recipe, overrides)
    metrics = train(config)
    assert "val_video_top1" in metrics
    # 2 training steps (and 1 forward pass: the last fifth of 3) of precise BN at each epoch's checkpoint
    assert len(calls) == 2 * config.train.epochs and len(set(calls)) == 1
    with pytest.raises(ValueError, match="task_args.precise_bn_mode: expected"):
        load_config(recipe, ["task_args.precise_bn_mode=ema"])


def test_the_official_recipe_evaluates_with_the_official_pipeline(tmp_path):
    """kinetics_resnet50_3d_glore.yaml as shipped (only the data root changed): its validation split is the official
    single-clip test with the official preprocessing and normalisation."""
    from glore.data.video import OFFICIAL_AUGMENT
    from glore.engine import load_config
    from glore.engine.task import build_task

    for split in ("train", "val"):
        small_video(tmp_path / split / "a" / "v.mp4")
    task = build_task(load_config(RECIPE, [f"data.root={tmp_path}"]))
    train, val = task.build_datasets()
    assert (val.preprocess, val.protocol, val.num_views, val.short_video) == ("official", "single_clip", 1, "official")
    assert torch.allclose(val.mean.flatten(), torch.tensor(OFFICIAL_MEAN))
    assert torch.allclose(val.std.flatten(), torch.tensor(OFFICIAL_STD))
    assert (train.augment, train.short_side) == ("official", tuple(OFFICIAL_AUGMENT["short_side"]))
    assert (val.crop_size, val.test_short_side, val.num_frames, val.interval) == (224, 256, 8, 8)
