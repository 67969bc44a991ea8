"""Video data on real files written with PyAV: decoded frame indices, sampling, transforms, the layouts, broken
videos and the synthetic relational_video data (``glore data check``: tests/tools/test_data_check.py)."""

from __future__ import annotations

import csv
import math
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from recipe_layouts import write_video

from glore.data import collate, create_dataset
from glore.data.video import (
    END_SLACK,
    OFFICIAL_MEAN,
    OFFICIAL_STD,
    VideoDataset,
    VideoReadError,
    clip_starts,
    hls_jitter,
    read_frames,
    sample_indices,
    video_info,
)

av = pytest.importorskip("av")

FRAMES, FPS, STEP = 40, 10, 6  # frame i is uniformly grey at level i * STEP (write_video's default video)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("videos") / "grey.mp4")


def levels(frames: np.ndarray) -> list[int]:
    return [int(round(f.mean() / STEP)) for f in frames]


def test_info_and_decoded_indices(video):
    assert video_info(video) == (FRAMES, FPS)
    assert levels(read_frames(video, [0, 3, 9, 3])) == [0, 3, 9, 3]
    # frames past two seconds are reached by seeking to the key frame before them
    assert levels(read_frames(video, [37, 25, 31])) == [37, 25, 31]
    with pytest.raises(VideoReadError, match="frame 45 could not be decoded"):
        read_frames(video, [39, 45])


def test_decoding_threads_give_the_same_frames(video):
    wanted = [33, 2, 17, 39]
    assert levels(read_frames(video, wanted, threads=1)) == levels(read_frames(video, wanted, threads=2)) == wanted
    with pytest.raises(ValueError, match="threads: expected an int >= 0"):
        read_frames(video, wanted, threads=-1)


def test_the_end_of_a_video_within_the_slack_reads_as_its_last_frame(video):
    assert END_SLACK == 3
    assert levels(read_frames(video, [38, 40, 42])) == [38, 39, 39]  # the container may count frames that never come
    with pytest.raises(VideoReadError, match="frame 43 could not be decoded"):
        read_frames(video, [43])


def test_gaps_in_the_timestamps_show_the_previous_frame(tmp_path):
    """Frame i is the one shown at time i / fps: with frames missing from the timestamps, the one before the gap."""
    written = [0, 1, 2, 4, 5, 6, 9, 10, 11, 15]  # timestamps in tenths of a second; frame at t has grey level 10 t
    path = tmp_path / "gaps.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.height, stream.width, stream.pix_fmt = 48, 64, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 10)
        for t in written:
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), t * STEP, dtype=np.uint8), format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 10)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    total, fps = video_info(path)  # FFmpeg's average rate of the irregular stream, whatever it is

    def shown(i: int) -> int:  # reference: the last written frame whose index round(t / 10 * fps) is <= i
        return max(t for t in written if round(t / 10 * fps) <= i)

    wanted = list(range(total))
    assert levels(read_frames(path, wanted)) == [shown(i) for i in wanted]
    assert levels(read_frames(path, [total - 1, 0])) == [shown(total - 1), 0]


def test_a_seek_that_lands_too_late_falls_back_to_decoding_from_the_start(video, monkeypatch):
    """A broken index may make the container seek past the frame asked for; the frames must still be right."""
    real_open, opened = av.open, []

    class LateSeek:
        def __init__(self, container) -> None:
            self.container = container

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.container.close()

        def __getattr__(self, name):
            return getattr(self.container, name)

        def seek(self, offset, *, stream, **kwargs) -> None:  # one second after the requested time
            self.container.seek(offset + int(1 / stream.time_base), stream=stream, **kwargs)

    def late_open(*args, **kwargs):
        opened.append(args[0])
        return LateSeek(real_open(*args, **kwargs))

    monkeypatch.setattr(av, "open", late_open)
    assert levels(read_frames(video, [25, 33])) == [25, 33]  # 2.5 s in: seeking, which lands at key frame 30
    assert len(opened) == 2  # the seek, then the decode from the start
    opened.clear()
    assert levels(read_frames(video, [5, 12])) == [5, 12] and len(opened) == 1  # near the start: no seek


def test_sampling_picks_the_documented_indices():
    assert sample_indices(100, 8, 8, 10) == [10, 18, 26, 34, 42, 50, 58, 66]
    assert sample_indices(20, 4, 8, 5) == [5, 13, 1, 9]  # a short video loops
    # 3 clips of 57 frames (8 x 8) over 100 frames: the centres of 3 equal segments of the room left
    assert clip_starts(100, 57, 3) == [7, 22, 36]
    assert clip_starts(30, 57, 2) == [0, 0]


def dataset_kwargs(**extra):
    return {
        "num_frames": 4,
        "interval": 2,
        "crop_size": 32,
        "short_side": (40, 48),
        "test_short_side": 40,
        "num_clips": 2,
        "num_crops": 3,
        **extra,
    }


def make_tree(root: Path, video: Path) -> None:
    for split in ("train", "val"):
        for name in ("jump", "run"):
            for k in range(2):
                target = root / split / name / f"{name}{k}.mp4"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(video, target)


def test_folder_layout_training_clips_and_test_views(tmp_path, video):
    make_tree(tmp_path, video)
    train = create_dataset("kinetics", tmp_path, "train", **dataset_kwargs())
    assert train.classes == ["jump", "run"] and len(train) == 4 and train.num_views == 1
    clip, label, meta = train[3]
    assert clip.shape == (3, 4, 32, 32) and label == 1 and meta == {"video": 3, "view": 0, "path": meta["path"]}
    test = create_dataset("kinetics", tmp_path, "val", **dataset_kwargs())
    assert test.num_views == 6 and len(test) == 4 * 6
    views = [test[i] for i in range(6)]
    assert [m["view"] for _, _, m in views] == list(range(6)) and {m["video"] for _, _, m in views} == {0}
    # the two temporal clips start at clip_starts(40, 7, 2) = [8, 25]: grey levels of frames 8,10,12,14 and 25..31
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    first = (views[1][0] * std.view(3, 1, 1, 1) + mean.view(3, 1, 1, 1)).mean(dim=(0, 2, 3)) * 255 / STEP
    second = (views[4][0] * std.view(3, 1, 1, 1) + mean.view(3, 1, 1, 1)).mean(dim=(0, 2, 3)) * 255 / STEP
    assert first.round().tolist() == [8, 10, 12, 14] and second.round().tolist() == [25, 27, 29, 31]
    batch = collate([test[i] for i in range(3)])
    assert batch.inputs.shape == (3, 3, 4, 32, 32) and batch.meta["video"] == [0, 0, 0]


def test_official_csv_and_list_layouts(tmp_path, video):
    (tmp_path / "train").mkdir()
    rows = [("abseiling", "aaa", 1, 11), ("zumba", "bbb", 5, 15), ("zumba", "gone", 0, 10)]
    with open(tmp_path / "train.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
        for label, yid, start, end in rows:
            writer.writerow([label, yid, start, end, "train"])
    shutil.copy(video, tmp_path / "train" / "aaa_000001_000011.mp4")
    shutil.copy(video, tmp_path / "train" / "bbb_000005_000015.mp4")  # "gone" was never downloaded
    data = create_dataset("kinetics", tmp_path, "train", **dataset_kwargs())
    assert data.classes == ["abseiling", "zumba"] and [y for _, y in data.videos] == [0, 1]
    (tmp_path / "val.txt").write_text("0 1 train/aaa_000001_000011.mp4\n1 0 train/bbb_000005_000015.mp4\n")
    listed = create_dataset("kinetics", tmp_path, "val", layout="list", **dataset_kwargs())
    assert [y for _, y in listed.videos] == [1, 0] and listed[0][0].shape == (3, 4, 32, 32)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "val.txt").write_text("0 x.mp4\n")
    with pytest.raises(ValueError, match=r"val.txt, line 1: expected 'id label path'"):
        create_dataset("kinetics", tmp_path / "bad", "val", layout="list")


def test_ucf101_and_hmdb51_split_files(tmp_path, video):
    ucf = tmp_path / "ucf"
    (ucf / "ucfTrainTestlist").mkdir(parents=True)
    (ucf / "ucfTrainTestlist" / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    (ucf / "ucfTrainTestlist" / "trainlist01.txt").write_text(
        "Archery/v_Archery_g01_c01.avi 2\nApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 1\n"
    )
    (ucf / "ucfTrainTestlist" / "testlist01.txt").write_text("Archery/v_Archery_g02_c01.avi\n")
    for name in ("Archery/v_Archery_g01_c01.avi", "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"):
        (ucf / "UCF-101" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(video, ucf / "UCF-101" / name)
    train = create_dataset("ucf101", ucf, "train", fold=1, **dataset_kwargs())
    assert train.classes == ["ApplyEyeMakeup", "Archery"] and [y for _, y in train.videos] == [1, 0]
    assert len(create_dataset("ucf101", ucf, "test", **dataset_kwargs()).videos) == 1

    hmdb = tmp_path / "hmdb"
    (hmdb / "testTrainMulti_7030_splits").mkdir(parents=True)
    (hmdb / "testTrainMulti_7030_splits" / "brush_hair_test_split1.txt").write_text("a.avi 1\nb.avi 2\nc.avi 0\n")
    (hmdb / "testTrainMulti_7030_splits" / "cartwheel_test_split1.txt").write_text("d.avi 2\n")
    train = create_dataset("hmdb51", hmdb, "train", **dataset_kwargs())
    test = create_dataset("hmdb51", hmdb, "test", **dataset_kwargs())
    assert [Path(p).name for p, _ in train.videos] == ["a.avi"]
    assert [(Path(p).name, y) for p, y in test.videos] == [("b.avi", 0), ("d.avi", 1)]
    (hmdb / "testTrainMulti_7030_splits" / "cartwheel_test_split1.txt").write_text("d.avi 7\n")
    with pytest.raises(ValueError, match=r"cartwheel_test_split1.txt, line 1: expected 'video tag'"):
        create_dataset("hmdb51", hmdb, "train")


def test_a_broken_video_is_named_or_skipped_and_counted(tmp_path, video):
    make_tree(tmp_path, video)
    broken = tmp_path / "train" / "run" / "run1.mp4"
    broken.write_bytes(video.read_bytes()[:300])  # truncated
    (tmp_path / "train" / "jump" / "jump1.mp4").write_bytes(np.random.default_rng(0).bytes(2000))  # garbage
    strict = create_dataset("kinetics", tmp_path, "train", **dataset_kwargs())
    with pytest.raises(VideoReadError, match="run1.mp4"):
        strict[3]
    lenient = create_dataset("kinetics", tmp_path, "train", on_error="skip", **dataset_kwargs())
    batch = collate([lenient[i] for i in range(4)])
    assert batch.skipped == 2 and batch.inputs.shape[0] == 2
    short = create_dataset("kinetics", tmp_path, "val", min_frames=50, on_error="skip", **dataset_kwargs())
    assert short[0] is None


def test_test_crops_are_the_left_centre_and_right_of_the_resized_frames():
    """The crop-then-resize of the dataset against resize-then-crop in float, away from the crops' borders."""
    from glore.data.video import VideoDataset

    frames = np.random.default_rng(0).integers(0, 256, (3, 48, 64, 3), dtype=np.uint8)  # (T, H, W, 3)
    data = VideoDataset(
        [("unused.mp4", 0)],
        ["a"],
        train=False,
        crop_size=64,
        short_side=(96, 96),
        test_short_side=96,
        num_crops=3,
        mean=(0, 0, 0),
        std=(1, 1, 1),
    )
    whole = torch.from_numpy(frames).permute(0, 3, 1, 2).double()  # (T, H, W, 3) -> (T, 3, H, W)
    resized = torch.nn.functional.interpolate(whole, size=(96, 128), mode="bilinear", align_corners=False)
    for crop, left in enumerate([0, 32, 64]):
        expected = resized[:, :, 16:80, left : left + 64].permute(1, 0, 2, 3)  # (T, 3, h, w) -> (3, T, h, w)
        got = data.transform(torch.from_numpy(frames), crop=crop).double() * 255
        assert got.shape == (3, 3, 64, 64)
        error = (got - expected)[..., 1:-1, 1:-1].abs()  # a shift by one pixel would be tens of levels off
        assert error.max() < 1.001 and error.mean() < 0.5  # uint8 fixed-point interpolation: under one level
    train = VideoDataset([("unused.mp4", 0)], ["a"], crop_size=32, short_side=(48, 60), hflip=1.0)
    kept = VideoDataset([("unused.mp4", 0)], ["a"], crop_size=32, short_side=(48, 60), hflip=0.0)
    torch.manual_seed(3)
    flipped = train.transform(torch.from_numpy(frames))
    torch.manual_seed(3)
    assert torch.equal(flipped, kept.transform(torch.from_numpy(frames)).flip(-1))


def test_videofolder_reads_class_folders_only(tmp_path, video):
    make_tree(tmp_path, video)
    (tmp_path / "train.txt").write_text("0 1 train/run/run0.mp4\n")  # ignored: videofolder never reads lists
    data = create_dataset("videofolder", tmp_path, "train", **dataset_kwargs())
    assert data.classes == ["jump", "run"] and [y for _, y in data.videos] == [0, 0, 1, 1] and data.train
    assert len(create_dataset("kinetics", tmp_path, "train", **dataset_kwargs()).videos) == 1  # auto: the list
    val = create_dataset("videofolder", tmp_path, "val", **dataset_kwargs())
    assert not val.train and len(val) == 4 * 6
    with pytest.raises(TypeError, match="layout: videofolder reads class folders only"):
        create_dataset("videofolder", tmp_path, "train", layout="list")


def test_bad_arguments_are_named(tmp_path, video):
    make_tree(tmp_path, video)
    with pytest.raises(ValueError, match="num_crops"):
        create_dataset("kinetics", tmp_path, "train", num_crops=2)
    with pytest.raises(ValueError, match="short_side"):
        create_dataset("kinetics", tmp_path, "train", crop_size=64, short_side=(40, 48))
    with pytest.raises(FileNotFoundError, match="no class folders"):
        create_dataset("kinetics", tmp_path, "test")
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        create_dataset("kinetics", tmp_path, "train", frames=3)


def test_relational_video_needs_the_start_and_the_end():
    data = create_dataset("relational_video", split="train", num_samples=64, num_frames=8, image_size=32)
    labels = [data[i][1] for i in range(64)]
    assert 16 < sum(labels) < 48  # both classes
    clip, label, meta = data[5]
    assert clip.shape == (3, 8, 32, 32) and meta == {"video": 5, "view": 0} and label == data.label(5)
    assert torch.equal(clip, data[5][0])  # deterministic
    # every frame shows at most one coloured square: no single frame carries both colours
    raw = clip * 0.25 + 0.5
    saturated = (raw.max(dim=0).values - raw.min(dim=0).values) > 0.4  # (T, H, W) coloured pixels
    assert saturated[:2].any() and saturated[-2:].any() and not saturated[2:6].any()
    other = create_dataset("relational_video", split="val", num_samples=4, num_frames=8, image_size=32)
    assert not torch.equal(other[0][0], data[0][0])


# -- short videos, official sampling, augmentation and layouts ------------------------------------------------------


def test_short_videos_are_sampled_as_short_video_says():
    """A 20-frame video and an 8 x 8 clip (57 frames): the official consecutive frames, the loop, or padding."""
    assert sample_indices(20, 8, 8, 0, short_video="official") == [0, 1, 2, 3, 4, 5, 6, 7]
    assert sample_indices(5, 8, 8, 0, short_video="official") == [0, 1, 2, 3, 4, 0, 1, 2]
    assert sample_indices(20, 8, 8, 0, short_video="loop") == [0, 8, 16, 4, 12, 0, 8, 16]
    assert sample_indices(20, 8, 8, 0, short_video="pad") == [0, 8, 16, 19, 19, 19, 19, 19]
    for mode in ("official", "loop", "pad"):  # a clip that fits is the same in every mode
        assert sample_indices(100, 8, 8, 10, short_video=mode) == [10, 18, 26, 34, 42, 50, 58, 66]
    with pytest.raises(ValueError, match="short_video: expected one of official, loop, pad"):
        sample_indices(20, 8, 8, 0, short_video="repeat")


@pytest.mark.parametrize(("mode", "expected"), [("official", [0, 1, 2, 3]), ("pad", [0, 8, 16, 19])])
def test_the_dataset_samples_a_short_video_per_short_video(tmp_path, mode, expected):
    path = write_video(tmp_path / "short.mp4", frames=20)
    for train in (True, False):
        data = VideoDataset(
            [(str(path), 0)], ["a"], train=train, num_frames=4, interval=8, crop_size=32, short_side=(40, 40),
            test_short_side=40, protocol="single_clip", short_video=mode, mean=(0, 0, 0), std=(1, 1, 1),
        )  # fmt: skip
        clip = data[0][0]  # (3, T, H, W) in [0, 1]
        assert (clip.mean(dim=(0, 2, 3)) * 255 / STEP).round().tolist() == expected


def test_one_test_clip_starts_where_the_official_test_clip_does():
    """The official EvenlySampling with one clip starts at ceil((frames - span) / 2); rounding half to even did not."""
    assert clip_starts(58, 57, 1) == [1] and clip_starts(62, 57, 1) == [3] and clip_starts(57, 57, 1) == [0]
    assert [clip_starts(n, 57, 1)[0] for n in range(57, 80)] == [math.ceil((n - 57) / 2) for n in range(57, 80)]


def test_protocols_name_the_test_views():
    kwargs = {"crop_size": 32, "short_side": (40, 40), "test_short_side": 40}
    single = VideoDataset([("a.mp4", 0)], ["a"], train=False, protocol="single_clip", **kwargs)
    multi = VideoDataset([("a.mp4", 0)], ["a"], train=False, protocol="multi_view", **kwargs)
    assert (single.num_clips, single.num_crops, single.num_views) == (1, 1, 1)
    assert (multi.num_clips, multi.num_crops, multi.num_views) == (10, 3, 30)
    with pytest.raises(ValueError, match="num_crops: protocol 'single_clip' takes 1, got 3"):
        VideoDataset([("a.mp4", 0)], ["a"], protocol="single_clip", num_crops=3, **kwargs)
    with pytest.raises(ValueError, match="protocol: expected one of single_clip, multi_view"):
        VideoDataset([("a.mp4", 0)], ["a"], protocol="ten_crop", **kwargs)


def test_presets_pick_the_normalisation_and_the_official_one_is_mxnets():
    from glore.models import get_default_cfg

    assert OFFICIAL_MEAN == (124 / 255, 117 / 255, 104 / 255) and OFFICIAL_STD == (1 / (0.0167 * 255),) * 3
    official = VideoDataset([("a.mp4", 0)], ["a"], preprocess="official")
    assert torch.allclose(official.mean.flatten(), torch.tensor(OFFICIAL_MEAN))
    assert torch.allclose(official.std.flatten(), torch.tensor(OFFICIAL_STD))
    assert torch.allclose(VideoDataset([("a.mp4", 0)], ["a"]).mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))
    for name in ("resnet50_3d", "resnet101_3d"):  # the official networks carry it in their default config
        cfg = get_default_cfg(name)
        assert cfg["mean"] == pytest.approx(OFFICIAL_MEAN) and cfg["std"] == pytest.approx(OFFICIAL_STD)
    with pytest.raises(ValueError, match="preprocess: expected one of glore, official"):
        VideoDataset([("a.mp4", 0)], ["a"], preprocess="mxnet")
    with pytest.raises(ValueError, match="augment: expected one of glore, official"):
        VideoDataset([("a.mp4", 0)], ["a"], augment="strong")


def test_hls_jitter_matches_colorsys_in_opencvs_8_bit_units():
    """The reference: Python's colorsys per pixel, quantised as OpenCV's 8-bit HLS (hue / 2, lightness and
    saturation x 255), offsets added and clipped (hue to [0, 180]), converted back."""
    import colorsys

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (2, 3, 5, 6), dtype=np.uint8)  # (T, 3, H, W)
    image[0, :, 0, 0] = 128  # a grey pixel: no hue, no saturation
    for offsets in [(0, 0, 0), (12, -30, 20), (-15, 35, -25), (170, 0, 0)]:
        got = hls_jitter(torch.from_numpy(image), offsets).numpy().astype(int)
        for t, y, x in np.ndindex(2, 5, 6):
            h, light, s = colorsys.rgb_to_hls(*(image[t, :, y, x] / 255.0))
            errors = []
            for nudge in (-1e-9, 1e-9):  # a value on a rounding boundary (115.49999 or 115.5) may go either way
                units = [round(v + nudge) for v in (h * 180, light * 255, s * 255)]
                units = [min(max(u + o, 0), lim) for u, o, lim in zip(units, offsets, (180, 255, 255), strict=True)]
                rgb = colorsys.hls_to_rgb(units[0] / 180, units[1] / 255, units[2] / 255)
                errors.append(np.abs(got[t, :, y, x] - [round(c * 255) for c in rgb]).max())
            assert min(errors) <= 1, (offsets, image[t, :, y, x])


def test_the_official_training_augmentation_jitters_aspect_scale_colour_and_pixels():
    frames = np.full((2, 96, 128, 3), 128, dtype=np.uint8)  # (T, H, W, 3) grey
    data = VideoDataset(
        [("a.mp4", 0)], ["a"], augment="official", crop_size=64, short_side=(64, 96), mean=(0, 0, 0), std=(1, 1, 1)
    )
    squares, shorts = [], []
    torch.manual_seed(0)
    for _ in range(300):
        region = data.transform.official_region(torch.from_numpy(frames))  # (T, bh, bw, 3) source pixels
        _, bh, bw, _ = region.shape
        squares.append((bh / 96) / (bw / 128) * 96 / 128)  # r^2: the resized frame is (h / r, w * r) x factor
        shorts.append(min(64 * 96 / bh, 64 * 128 / bw))  # the resized frame's short side
    assert 0.55 < min(squares) < 0.8 and 1.3 < max(squares) < 1.7  # r^2 within [0.8^2, 1.25^2], boxes rounded
    assert 62 < min(shorts) < 70 and 90 < max(shorts) < 100  # short side drawn from 64-96
    torch.manual_seed(0)
    clips = [
        data.transform(torch.from_numpy(frames)) * 255 for _ in range(20)
    ]  # grey -> one colour per clip, plus noise
    for clip in clips:
        assert clip.shape == (3, 2, 64, 64)
        spread = clip.amax(dim=(1, 2, 3)) - clip.amin(dim=(1, 2, 3))
        assert (spread <= 40 + 1e-3).all() and (spread > 0).all()  # pixel noise within [low, high] in [-20, 20]
    colours = torch.stack([c.median(dim=-1).values.median(dim=-1).values[:, 0] for c in clips])  # (20, 3)
    assert colours.std(dim=0).min() > 2  # HLS jitter changes the colour from clip to clip
    glore = VideoDataset([("a.mp4", 0)], ["a"], crop_size=64, short_side=(64, 96), mean=(0, 0, 0), std=(1, 1, 1))
    assert torch.allclose(
        glore.transform(torch.from_numpy(frames)) * 255, torch.full((3, 2, 64, 64), 128.0)
    )  # no colour


def write_official_tree(root: Path, video: Path, *, val_labels: list[int]) -> None:
    """The official GloRe Kinetics tree: raw/list_cvt lists and mapping_table.txt, raw/data/{split}_avi-288p."""
    lists = root / "raw" / "list_cvt"
    lists.mkdir(parents=True)
    (lists / "mapping_table.txt").write_text("0\tabseiling\n1\tair_drumming\n2\tzumba")
    for split, labels in (("train", [0, 1, 2, 1]), ("val", val_labels)):
        lines = []
        for k, label in enumerate(labels):
            name = ["abseiling", "air_drumming", "zumba", "unknown"][label]
            rel = f"{name}/{split}{k}_000001_000011.avi"
            target = root / "raw" / "data" / f"{split}_avi-288p" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(video, target)
            lines.append(f"{k}\t{label}\t{rel}")
        lines.append(f"{len(labels)}\t0\tabseiling/never_downloaded.avi")  # listed, not on disk: left out
        (lists / f"kinetics_{split}_avi.txt").write_text("\n".join(lines) + "\n")


def test_the_official_list_tree_reads_as_it_is(tmp_path, video, caplog):
    write_official_tree(tmp_path, video, val_labels=[2, 0])
    train = create_dataset("kinetics", tmp_path, "train", **dataset_kwargs())
    assert train.layout == "list" and train.classes == ["abseiling", "air_drumming", "zumba"]
    assert [(Path(p).parent.name, y) for p, y in train.videos] == [
        ("abseiling", 0), ("air_drumming", 1), ("zumba", 2), ("air_drumming", 1)
    ]  # fmt: skip
    assert all("train_avi-288p" in p for p, _ in train.videos) and train[0][0].shape == (3, 4, 32, 32)
    with caplog.at_level("WARNING"):
        val = create_dataset("kinetics", tmp_path, "val", classes=train.classes, **dataset_kwargs())
    assert [y for _, y in val.videos] == [2, 0] and all("val_avi-288p" in p for p in val.video_names)
    assert "1 of the 3 classes have no video in the 'val' split (first: air_drumming)" in caplog.text
    assert "1 of 3 listed videos are not under" in caplog.text
    # the same files named explicitly, {split} standing for the split
    named = create_dataset(
        "kinetics", tmp_path, "val", layout="list", list_file="raw/list_cvt/kinetics_{split}_avi.txt",
        video_root="raw/data/{split}_avi-288p", class_file="raw/list_cvt/mapping_table.txt", **dataset_kwargs(),
    )  # fmt: skip
    assert named.videos == val.videos and named.classes == val.classes


def test_an_official_list_label_outside_the_classes_is_named(tmp_path, video):
    write_official_tree(tmp_path, video, val_labels=[2, 3])
    with pytest.raises(ValueError, match=r"kinetics_val_avi.txt, line 2: label 3 is not a class index 0..2"):
        create_dataset("kinetics", tmp_path, "val")


def test_a_val_csv_label_absent_from_train_is_named(tmp_path, video):
    for split, labels in (("train", ["abseiling", "zumba"]), ("val", ["abseiling", "yodelling"])):
        (tmp_path / split).mkdir()
        with open(tmp_path / f"{split}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
            for k, label in enumerate(labels):
                writer.writerow([label, f"{split}{k}", 1, 11, split])
                shutil.copy(video, tmp_path / split / f"{split}{k}_000001_000011.mp4")
    train = create_dataset("kinetics", tmp_path, "train")
    with pytest.raises(ValueError, match=r"val.csv, line 3: label 'yodelling' is not one of the 2 classes"):
        create_dataset("kinetics", tmp_path, "val", classes=train.classes)


def test_a_val_folder_missing_a_class_keeps_the_training_indices(tmp_path, video, caplog):
    make_tree(tmp_path, video)
    shutil.rmtree(tmp_path / "val" / "jump")
    train = create_dataset("kinetics", tmp_path, "train", **dataset_kwargs())
    with caplog.at_level("WARNING"):
        val = create_dataset("kinetics", tmp_path, "val", classes=train.classes, **dataset_kwargs())
    assert val.classes == ["jump", "run"] and [y for _, y in val.videos] == [1, 1]
    assert "1 of the 2 classes have no video in the 'val' split (first: jump)" in caplog.text
    (tmp_path / "val" / "yodel").mkdir()
    shutil.copy(video, tmp_path / "val" / "yodel" / "y.mp4")
    with pytest.raises(ValueError, match=r"has the class folder 'yodel', which is not one of the 2 classes"):
        create_dataset("kinetics", tmp_path, "val", classes=train.classes)


def test_official_test_crops_are_cut_from_the_whole_resized_frame():
    """preprocess="official": the whole frame resized (plain bilinear, long side truncated), then the centre crop at
    round((W - crop) / 2), or three crops along the long side."""
    frames = np.random.default_rng(2).integers(0, 256, (2, 45, 70, 3), dtype=np.uint8)  # (T, H, W, 3)
    whole = torch.from_numpy(frames).permute(0, 3, 1, 2).double()  # (T, H, W, 3) -> (T, 3, H, W)
    resized = torch.nn.functional.interpolate(whole, size=(40, 62), mode="bilinear", align_corners=False)  # 40*70/45
    kwargs = dict(train=False, crop_size=32, short_side=(40, 40), test_short_side=40, mean=(0, 0, 0), std=(1, 1, 1))
    for crops, lefts in ((1, [15]), (3, [0, 15, 30])):  # round((62 - 32) / 2) = 15
        data = VideoDataset([("unused.mp4", 0)], ["a"], preprocess="official", num_crops=crops, **kwargs)
        for crop, left in enumerate(lefts):
            expected = resized[:, :, 4:36, left : left + 32].permute(1, 0, 2, 3)  # (T, 3, h, w) -> (3, T, h, w)
            got = data.transform(torch.from_numpy(frames), crop=crop).double() * 255
            assert (got - expected).abs().max() <= 1.001  # uint8 interpolation rounds to a grey level


def test_a_one_frame_video_is_said_once(tmp_path, caplog):
    path = write_video(tmp_path / "still.mp4", frames=1)
    data = VideoDataset([(str(path), 0)], ["a"], num_frames=4, interval=2, crop_size=32, short_side=(40, 40))
    with caplog.at_level("WARNING"):
        clips = [data[0][0] for _ in range(3)]
    assert caplog.text.count("1 frame, a still image") == 1
    assert all(torch.equal(c[:, 0], c[:, 3]) for c in clips)  # every frame of the clip is the one frame
    assert VideoDataset([(str(path), 0)], ["a"], min_frames=2, on_error="skip")[0] is None
