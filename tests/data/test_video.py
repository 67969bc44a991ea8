"""Video data on real files written with PyAV: decoded frame indices, sampling, transforms, the layouts, broken
videos and the synthetic relational_video data (``glore data check``: tests/tools/test_data_check.py)."""

from __future__ import annotations

import csv
import random
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from glore.data import collate, create_dataset
from glore.data.video import END_SLACK, VideoReadError, clip_starts, read_frames, sample_indices, video_info

av = pytest.importorskip("av")

FRAMES, FPS, STEP = 40, 10, 6  # frame i is uniformly grey at level i * STEP


def write_video(path: Path, frames: int = FRAMES, fps: int = FPS, size: tuple[int, int] = (48, 64)) -> Path:
    """An MPEG-4 video whose frame i is grey level i * STEP (a key frame every 10 frames, so seeking matters)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = 10
        for i in range(frames):
            image = np.full((*size, 3), i * STEP, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


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
        got = data._transform(frames, crop).double() * 255
        assert got.shape == (3, 3, 64, 64)
        error = (got - expected)[..., 1:-1, 1:-1].abs()  # a shift by one pixel would be tens of levels off
        assert error.max() < 1.001 and error.mean() < 0.5  # uint8 fixed-point interpolation: under one level
    train = VideoDataset([("unused.mp4", 0)], ["a"], crop_size=32, short_side=(48, 60), hflip=1.0)
    kept = VideoDataset([("unused.mp4", 0)], ["a"], crop_size=32, short_side=(48, 60), hflip=0.0)
    random.seed(3)
    flipped = train._transform(frames, 0)
    random.seed(3)
    assert torch.equal(flipped, kept._transform(frames, 0).flip(-1))


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
