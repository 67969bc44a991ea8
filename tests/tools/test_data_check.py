"""``glore data check ROOT``: real MPEG-4 files written with PyAV, broken ones among them, checked by the command
run as a subprocess (several processes) and by ``check_video`` directly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from recipe_layouts import write_video as write_mpeg4

from glore.tools.data_check import check_video, decodable_frames

av = pytest.importorskip("av")

GLORE = Path(sys.executable).with_name("glore")


def write_video(path: Path, frames: int = 40, fps: int = 10) -> Path:
    """A 64x48 MPEG-4 video of random frames (a key frame every 10 frames)."""
    rng = np.random.default_rng(0)
    return write_mpeg4(path, frames, fps, (48, 64), frame=lambda i: rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))


def corrupt_middle(path: Path, first: int, last: int) -> None:
    """Zero the packets of frames ``first`` to ``last`` in place (the container's index stays intact)."""
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size]
    data = bytearray(path.read_bytes())
    for pos, size in packets[first : last + 1]:
        data[pos : pos + size] = bytes(size)
    path.write_bytes(bytes(data))


def glore_data_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(GLORE), "data", "check", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """root/{train,val}/{jump,run}/: 8 readable videos of 40 frames."""
    root = tmp_path_factory.mktemp("videos")
    first = write_video(root / "train" / "jump" / "jump0.mp4")
    for split in ("train", "val"):
        for name in ("jump", "run"):
            for k in range(2):
                target = root / split / name / f"{name}{k}.mp4"
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(first.read_bytes())
    return root


def test_lists_the_unreadable_videos_with_several_processes(dataset, tmp_path):
    root = tmp_path / "root"
    subprocess.run(["cp", "-r", str(dataset), str(root)], check=True)
    good = root / "train" / "jump" / "jump0.mp4"
    (root / "train" / "run" / "run1.mp4").write_bytes(b"not a video")
    (root / "val" / "jump" / "jump1.mp4").write_bytes(good.read_bytes()[:400])  # truncated
    (root / "val" / "notes.txt").write_text("not a video file: not checked")
    result = glore_data_check(str(root), "--workers", "2", "--min-frames", "1")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        str(root / "train" / "run" / "run1.mp4"),
        str(root / "val" / "jump" / "jump1.mp4"),
    ]
    assert "cannot be opened" in lines[0] and "cannot be opened" in lines[1]
    assert "6 of 8 videos readable, 2 bad" in result.stderr


def test_all_readable_exits_0_and_min_frames_flags_short_videos(dataset):
    ok = glore_data_check(str(dataset), "--workers", "1", "--num-frames", "4", "--interval", "8")  # 25 frames
    assert ok.returncode == 0 and ok.stdout == "" and "8 of 8 videos readable, 0 bad" in ok.stderr
    short = glore_data_check(str(dataset / "val"), "--min-frames", "41")
    assert short.returncode == 1 and short.stdout.count("40 frames, fewer than --min-frames 41") == 4


def test_bad_arguments_exit_2_naming_them(tmp_path, dataset):
    missing = glore_data_check(str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "is not a folder" in missing.stderr
    empty = glore_data_check(str(tmp_path))
    assert empty.returncode == 2 and "no video files under" in empty.stderr
    workers = glore_data_check(str(dataset), "--workers", "0")
    assert workers.returncode == 2 and "--workers" in workers.stderr


def test_a_corrupt_middle_is_found_only_by_a_full_decode(tmp_path):
    path = write_video(tmp_path / "middle.mp4")
    assert check_video(str(path)) is None and check_video(str(path), full=True) is None
    assert decodable_frames(str(path)) == 40
    corrupt_middle(path, 14, 18)
    assert check_video(str(path)) is None  # the first frame, and the last one by seeking past the damage
    reason = check_video(str(path), full=True)
    assert reason is not None and "cannot be decoded" in reason
    result = glore_data_check(str(tmp_path), "--full", "--min-frames", "1")
    assert result.returncode == 1 and result.stdout.startswith(f"{path}: cannot be decoded")


def test_min_frames_defaults_to_the_clips_span_and_one_frame_videos_are_named(tmp_path, dataset):
    result = glore_data_check(str(dataset / "val"))  # 40-frame videos, an 8 x 8 clip spans 57 frames
    assert result.returncode == 1 and result.stdout.count("40 frames, fewer than --min-frames 57") == 4
    assert "spans 57 frames, longer than every video (the longest has 40)" in result.stderr
    still = write_video(tmp_path / "still" / "a" / "still.mp4", frames=1)
    write_video(tmp_path / "still" / "a" / "long.mp4", frames=12)
    result = glore_data_check(str(tmp_path / "still"), "--min-frames", "1")
    assert result.returncode == 1 and result.stdout.splitlines() == [
        f"{still}: 1 frame: a still image, not a video (every frame of every clip would be this one)"
    ]
    assert "longer than every video" not in glore_data_check(str(tmp_path / "still"), "--num-frames", "2").stderr


def test_lists_and_csvs_are_read_as_glore_reads_them(tmp_path, dataset):
    import csv
    import shutil

    root = tmp_path / "kinetics"
    good = dataset / "train" / "jump" / "jump0.mp4"
    for name in ("a", "b", "stray"):
        (root / "clips").mkdir(parents=True, exist_ok=True)
        shutil.copy(good, root / "clips" / f"{name}.mp4")
    (root / "clips" / "stray.mp4").write_bytes(b"broken, but in no list: glore never reads it")
    (root / "clips" / "b.mp4").write_bytes(good.read_bytes()[:400])
    (root / "train.txt").write_text("0 0 clips/a.mp4\n1 1 clips/b.mp4\n")
    result = glore_data_check(str(root), "--min-frames", "1")
    assert result.returncode == 1 and [line.split(":")[0] for line in result.stdout.splitlines()] == [
        str(root / "clips" / "b.mp4")
    ]
    assert "1 of 2 videos readable, 1 bad" in result.stderr
    assert "val: not checked" in result.stderr  # no val.txt: said, not an error
    both = glore_data_check(str(root), "--dataset", "files", "--min-frames", "1")
    assert "1 of 3 videos readable, 2 bad" in both.stderr
    missing = glore_data_check(str(root), "--split", "val")
    assert missing.returncode == 2 and "--split val:" in missing.stderr

    annotated = tmp_path / "csv"
    (annotated / "train").mkdir(parents=True)
    shutil.copy(good, annotated / "train" / "yid_000001_000011.mp4")
    with open(annotated / "train.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
        writer.writerow(["jump", "yid", 1, 11, "train"])
    result = glore_data_check(str(annotated), "--min-frames", "1")
    assert result.returncode == 0 and "1 of 1 videos readable, 0 bad" in result.stderr
