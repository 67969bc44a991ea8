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
