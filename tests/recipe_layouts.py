"""Datasets written in their real layouts, small: real JPEG/PNG files, CIFAR pickles, MPEG-4 videos (PyAV), and the
text files each dataset is distributed with. Shared by the data tests and the recipe matrix
(tests/tasks/test_recipe_matrix.py), which runs every recipe of configs/ on them.

Every ``write_*`` function takes the folder to create and returns it; ``LAYOUTS`` maps each file-backed dataset name
of ``glore.data.list_datasets()`` to the function writing its layout for a recipe.
"""

from __future__ import annotations

import csv
import os
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "LAYOUTS",
    "cub_table",
    "write_cifar10",
    "write_cifar100",
    "write_cityscapes",
    "write_cityscapes_sample",
    "write_cub",
    "write_hmdb51",
    "write_image",
    "write_imagefolder",
    "write_kinetics",
    "write_segfolder",
    "write_ucf101",
    "write_video",
]


# ---------------------------------------------------------------------------------------------------------------------
# Files.


def write_image(path: Path, size: tuple[int, int] = (40, 30), colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    """A plain RGB image of ``size`` (width, height); the format follows the suffix (.jpg, .png, .JPEG)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def _scene(seed: int, size: tuple[int, int], frames: int = 1) -> np.ndarray:
    """``frames`` frames (frames, height, width, 3) uint8 of a smooth scene, different for every seed: a colour ramp
    with a square of another colour moving one pixel a frame, and a little noise (photographs and videos are smooth;
    white noise would make the first convolutions' gradients far larger than real data does)."""
    rng = np.random.default_rng(seed)
    h, w = size
    ramp = np.linspace(0.0, 1.0, w)[None, :, None]  # (1, W, 1)
    left, right, colour = rng.integers(0, 256, (3, 3))
    side = max(min(h, w) // 3, 1)
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    out = np.empty((frames, h, w, 3), dtype=np.uint8)
    for t in range(frames):
        image = left * (1 - ramp) + right * ramp + rng.normal(0.0, 4.0, (h, w, 3))
        left_edge = (x + t) % (w - side + 1)
        image[y : y + side, left_edge : left_edge + side] = colour
        out[t] = image.clip(0, 255).astype(np.uint8)
    return out


def _scene_image(path: Path, size: tuple[int, int], seed: int) -> Path:
    """A smooth RGB image (``_scene``) of ``size`` (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_scene(seed, (size[1], size[0]))[0]).save(path)
    return path


def write_video(
    path: Path,
    frames: int = 40,
    fps: int = 10,
    size: tuple[int, int] = (48, 64),
    *,
    frame: Callable[[int], np.ndarray] | None = None,
    step: int = 6,
    gop: int = 10,
) -> Path:
    """An MPEG-4 video (PyAV) of ``frames`` frames of ``size`` (height, width) at ``fps``, a key frame every ``gop``.

    Args:
        path: the file to write (.mp4, .avi ...).
        frames: number of frames.
        fps: frame rate.
        size: (height, width).
        frame: ``frame(i)`` gives frame i as uint8 (height, width, 3); default a uniform grey of level
            ``i * step`` (mod 256).
        step: grey level step of the default frames.
        gop: frames between key frames (so that seeking matters).
    """
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        for i in range(frames):
            image = frame(i) if frame is not None else np.full((*size, 3), (i * step) % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _dump(obj: object, path: Path) -> None:
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=2)


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------------------------------
# Image classification.


def write_imagefolder(
    root: Path, classes: Sequence[str], counts: dict[str, int], size: tuple[int, int] = (48, 40)
) -> Path:
    """ImageNet's layout: ``root/<split>/<class>/<image>.JPEG`` with ``counts[split]`` random JPEGs per class."""
    for split, count in counts.items():
        for k, name in enumerate(classes):
            for i in range(count):
                _scene_image(root / split / name / f"{name}_{i:08d}.JPEG", size, seed=1000 * k + i)
    return root


def cub_table(classes: int, per_class: tuple[int, int], size: tuple[int, int]) -> dict[int, tuple]:
    """``write_cub``'s images: ``per_class`` (train, test) images of each of ``classes`` classes, boxes inside."""
    images = {}
    for c in range(1, classes + 1):
        for j in range(sum(per_class)):
            box = (1.0, 2.0, size[0] - 3.0, size[1] - 4.0)
            images[len(images) + 1] = (c, int(j < per_class[0]), size, box)
    return images


def write_cub(root: Path, classes: Sequence[str], images: dict[int, tuple], *, scene: bool = False) -> Path:
    """CUB-200-2011 as distributed: ``images.txt``, ``image_class_labels.txt``, ``train_test_split.txt``,
    ``classes.txt``, ``bounding_boxes.txt`` and ``images/<class>/<name>_<id>.jpg``.

    Args:
        root: the ``CUB_200_2011`` folder.
        classes: folder names such as ``001.Black_footed_Albatross``; class id k names ``classes[k - 1]``.
        images: image id -> (class id, is_train, (width, height), box (x, y, w, h)).
        scene: a smooth scene of its own per image instead of one colour per image.
    """
    lines: dict[str, list[str]] = {
        "images.txt": [],
        "image_class_labels.txt": [],
        "train_test_split.txt": [],
        "bounding_boxes.txt": [],
    }
    for image_id, (class_id, is_train, size, box) in images.items():
        folder = classes[class_id - 1]
        rel = f"{folder}/{folder.split('.', 1)[-1]}_{image_id:04d}.jpg"
        if scene:
            _scene_image(root / "images" / rel, size, seed=image_id)
        else:
            write_image(root / "images" / rel, size=size, colour=(10 * image_id % 256, 100, 150))
        lines["images.txt"].append(f"{image_id} {rel}")
        lines["image_class_labels.txt"].append(f"{image_id} {class_id}")
        lines["train_test_split.txt"].append(f"{image_id} {is_train}")
        lines["bounding_boxes.txt"].append(f"{image_id} " + " ".join(str(v) for v in box))
    lines["classes.txt"] = [f"{i + 1} {name}" for i, name in enumerate(classes)]
    for name, content in lines.items():
        _write_lines(root / name, content)
    return root


def _cifar_batch(rng: np.random.Generator, n: int, labels_key: bytes, num_classes: int) -> dict[bytes, object]:
    return {
        b"batch_label": b"testing batch",
        labels_key: [int(v) for v in rng.integers(0, num_classes, n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [b"f%d.png" % i for i in range(n)],
    }


def write_cifar10(root: Path, *, per_batch: int = 4, test: int = 3, seed: int = 0) -> Path:
    """``cifar-10-batches-py``: ``data_batch_1`` .. ``data_batch_5`` of ``per_batch`` images, ``test_batch`` of
    ``test``, and ``batches.meta``."""
    rng = np.random.default_rng(seed)
    os.makedirs(root)
    for i in range(1, 6):
        _dump(_cifar_batch(rng, per_batch, b"labels", 10), root / f"data_batch_{i}")
    _dump(_cifar_batch(rng, test, b"labels", 10), root / "test_batch")
    _dump({b"label_names": [f"class{i}".encode() for i in range(10)], b"num_vis": 3072}, root / "batches.meta")
    return root


def write_cifar100(root: Path, *, train: int = 5, test: int = 2, seed: int = 1) -> Path:
    """``cifar-100-python``: ``train`` and ``test`` pickles (fine and coarse labels) and ``meta``."""
    rng = np.random.default_rng(seed)
    os.makedirs(root)
    for name, n in (("train", train), ("test", test)):
        batch = _cifar_batch(rng, n, b"fine_labels", 100)
        batch[b"coarse_labels"] = [int(v) for v in rng.integers(0, 20, n)]
        _dump(batch, root / name)
    _dump(
        {
            b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)],
        },
        root / "meta",
    )
    return root


# ---------------------------------------------------------------------------------------------------------------------
# Segmentation.


def write_cityscapes_sample(
    root: Path,
    split: str,
    city: str,
    frame: int,
    *,
    size: tuple[int, int] = (24, 32),
    label_ids: np.ndarray | None = None,
) -> str:
    """One Cityscapes sample as distributed: ``leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png`` (random pixels)
    and ``gtFine/<split>/<city>/<stem>_gtFine_{labelIds,instanceIds,color}.png``; returns the stem.

    Args:
        size: (height, width).
        label_ids: uint8 (height, width) labelIds; default all 34 ids in turn. The top-left 4 x 5 pixels become one
            car instance (labelId 26, instance id 26000 + frame).
    """
    from glore.data.cityscapes import LABELS

    h, w = size
    stem = f"{city}_000123_{frame:06d}"
    rng = np.random.default_rng(frame)
    if label_ids is None:
        label_ids = (np.arange(h * w) % 34).reshape(h, w).astype(np.uint8)
    instances = label_ids.astype(np.uint16)
    instances[:4, :5] = 26 * 1000 + frame  # a car instance
    label_ids = label_ids.copy()
    label_ids[:4, :5] = 26
    palette = np.zeros((256, 3), dtype=np.uint8)
    for label in LABELS:
        if label.id >= 0:
            palette[label.id] = label.color
    img_dir, gt_dir = root / "leftImg8bit" / split / city, root / "gtFine" / split / city
    img_dir.mkdir(parents=True, exist_ok=True)
    gt_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(img_dir / f"{stem}_leftImg8bit.png")
    Image.fromarray(label_ids).save(gt_dir / f"{stem}_gtFine_labelIds.png")
    Image.fromarray(instances).save(gt_dir / f"{stem}_gtFine_instanceIds.png")
    Image.fromarray(palette[label_ids]).save(gt_dir / f"{stem}_gtFine_color.png")
    return stem


def write_cityscapes(root: Path, samples: dict[str, Sequence[tuple[str, int]]], size: tuple[int, int]) -> Path:
    """A Cityscapes tree: ``samples[split]`` lists the (city, frame) of each image of that split."""
    for split, items in samples.items():
        for city, frame in items:
            write_cityscapes_sample(root, split, city, frame, size=size)
    return root


def write_segfolder(root: Path, classes: Sequence[str], counts: dict[str, int], size: tuple[int, int]) -> Path:
    """``segfolder``: ``classes.txt``, ``images/<split>/<name>.jpg`` and index masks ``masks/<split>/<name>.png``."""
    _write_lines(root / "classes.txt", list(classes))
    h, w = size
    for split, count in counts.items():
        for i in range(count):
            _scene_image(root / "images" / split / f"{split}{i}.jpg", (w, h), seed=i)
            mask = (np.arange(h * w) % len(classes)).reshape(h, w).astype(np.uint8)
            mask[0, :] = 255  # ignored pixels
            (root / "masks" / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask).save(root / "masks" / split / f"{split}{i}.png")
    return root


# ---------------------------------------------------------------------------------------------------------------------
# Video.


def _clip_writer(size: tuple[int, int], frames: int) -> Callable[[Path, int], Path]:
    """A writer of small videos of smooth scenes (``_scene``), each seeded by a number."""

    def write(path: Path, seed: int) -> Path:
        pixels = _scene(seed, size, frames)
        return write_video(path, frames=frames, fps=8, size=size, frame=lambda i: pixels[i], gop=4)

    return write


def write_kinetics(
    root: Path,
    classes: Sequence[str],
    splits: dict[str, Sequence[int]],
    *,
    layout: str = "folder",
    size: tuple[int, int] = (36, 48),
    frames: int = 12,
) -> Path:
    """Kinetics in one of the layouts glore reads; ``splits[split]`` lists the class index of each downloaded video.

    - ``folder``: ``root/<split>/<class>/<youtube_id>_<start>_<end>.mp4``, a folder for every class (most empty);
    - ``csv``: the official ``root/<split>.csv`` (``label,youtube_id,time_start,time_end,split``) naming one video of
      every class, of which only the listed ones were downloaded into ``root/<split>/``;
    - ``list``: the official GloRe tree: ``root/raw/list_cvt/kinetics_<split>_avi.txt`` (``id<TAB>label<TAB>path``,
      one video of every class listed) and ``mapping_table.txt`` (``label<TAB>class``) with the listed videos that
      were downloaded in ``root/raw/data/<split>_avi-288p/<class>/*.avi``.
    """
    write = _clip_writer(size, frames)
    seed = 0
    for split, labels in splits.items():
        rows, listed = [], []
        if layout == "folder":
            for name in classes:
                (root / split / name).mkdir(parents=True, exist_ok=True)
        for k, name in enumerate(classes):
            count = sum(1 for y in labels if y == k)
            for j in range(max(count, 1)):
                youtube_id = f"{split[:2]}{k:03d}v{j}"
                start, end = 10 * j, 10 * j + 10
                file = f"{youtube_id}_{start:06d}_{end:06d}"
                rows.append([name, youtube_id, start, end, split])
                listed.append(f"{len(listed)}\t{k}\t{name.replace(' ', '_')}/{file}.avi")
                if j < count:
                    seed += 1
                    if layout == "list":
                        write(root / "raw" / "data" / f"{split}_avi-288p" / listed[-1].split("\t")[2], seed)
                    else:
                        write((root / split / name if layout == "folder" else root / split) / f"{file}.mp4", seed)
        if layout == "csv":
            with open(root / f"{split}.csv", "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
                writer.writerows(rows)
        elif layout == "list":
            _write_lines(root / "raw" / "list_cvt" / f"kinetics_{split}_avi.txt", listed)
    if layout == "list":
        table = [f"{k}\t{name.replace(' ', '_')}" for k, name in enumerate(classes)]
        _write_lines(root / "raw" / "list_cvt" / "mapping_table.txt", table)
    elif layout not in ("folder", "csv"):
        raise ValueError(f"layout: expected 'folder', 'csv' or 'list', got {layout!r}")
    return root


def write_ucf101(
    root: Path,
    classes: Sequence[str],
    videos: dict[str, Sequence[int]],
    *,
    size: tuple[int, int] = (36, 48),
    frames: int = 12,
) -> Path:
    """UCF101 as distributed: ``ucfTrainTestlist/`` (``classInd.txt`` of every class, ``trainlist01.txt`` with
    labels, ``testlist01.txt`` without) and ``UCF-101/<class>/v_<class>_gNN_cMM.avi``; ``videos["train"]`` and
    ``videos["test"]`` list the class index of each video."""
    write = _clip_writer(size, frames)
    lists = root / "ucfTrainTestlist"
    _write_lines(lists / "classInd.txt", [f"{k + 1} {name}" for k, name in enumerate(classes)])
    for split, labels in videos.items():
        lines = []
        for j, k in enumerate(labels):
            name = classes[k]
            group = 8 + j if split == "train" else 1 + j  # official split 1: groups 1-7 test, 8-25 train
            rel = f"{name}/v_{name}_g{group:02d}_c01.avi"
            write(root / "UCF-101" / rel, 100 * (split == "test") + j)
            lines.append(f"{rel} {k + 1}" if split == "train" else rel)
        _write_lines(lists / f"{split}list01.txt", lines)
    return root


def write_hmdb51(
    root: Path,
    classes: Sequence[str],
    videos: dict[str, Sequence[int]],
    *,
    size: tuple[int, int] = (36, 48),
    frames: int = 12,
) -> Path:
    """HMDB51 as distributed: ``testTrainMulti_7030_splits/<class>_test_split1.txt`` (``video tag``: 1 train,
    2 test, 0 unused) and ``videos/<class>/<video>.avi``; ``videos[split]`` lists the class index of each video."""
    write = _clip_writer(size, frames)
    tags = {"train": 1, "test": 2}
    lines: dict[int, list[str]] = {k: [] for k in range(len(classes))}
    for split, labels in videos.items():
        for j, k in enumerate(labels):
            file = f"{classes[k]}_{split}_{j}.avi"
            write(root / "videos" / classes[k] / file, 100 * tags[split] + j)
            lines[k].append(f"{file} {tags[split]}")
    for k, name in enumerate(classes):
        lines[k].append(f"{name}_unused.avi 0")  # listed, used by no split
        _write_lines(root / "testTrainMulti_7030_splits" / f"{name}_test_split1.txt", lines[k])
    return root


# ---------------------------------------------------------------------------------------------------------------------
# A recipe's dataset, by ``data.name``.

# Class names as the datasets have them (a few; the rest of the class list is generated).
_KINETICS = ["abseiling", "air drumming", "answering questions", "applauding"]
_UCF = ["ApplyEyeMakeup", "ApplyLipstick", "Archery", "BabyCrawling"]
_HMDB = ["brush_hair", "cartwheel", "catch", "chew"]


def _class_list(known: Sequence[str], count: int) -> list[str]:
    return [*known[:count], *(f"class_{k:03d}" for k in range(len(known), count))]


def _kinetics(root: Path, data: dict[str, Any], *, variant: int = 0, **_: Any) -> Path:
    layout = ("folder", "csv", "list")[variant % 3]
    classes = _class_list(_KINETICS, 400)
    labels = [0, len(classes) - 1]  # the first and the last class: every layout then knows all 400
    splits = {data["train_split"]: labels, data["val_split"]: labels[1:]}
    return write_kinetics(root / "kinetics400", classes, splits, layout=layout)


def _videofolder(root: Path, data: dict[str, Any], **_: Any) -> Path:
    return write_kinetics(root / "videos", _KINETICS[:2], {data["train_split"]: [0, 1], data["val_split"]: [1]})


def _ucf101(root: Path, data: dict[str, Any], **_: Any) -> Path:
    return write_ucf101(root / "UCF101", _class_list(_UCF, 101), {"train": [0, 1], "test": [1]})


def _hmdb51(root: Path, data: dict[str, Any], **_: Any) -> Path:
    return write_hmdb51(root / "HMDB51", _class_list(_HMDB, 51), {"train": [0, 1], "test": [1]})


def _imagefolder(root: Path, data: dict[str, Any], **_: Any) -> Path:
    counts = {data["train_split"]: 1, data["val_split"]: 1}
    return write_imagefolder(root / "imagenet", ["n01440764", "n01443537"], counts, size=(48, 40))


def _cub200(root: Path, data: dict[str, Any], **_: Any) -> Path:
    classes = [f"{k:03d}.{name}" for k, name in enumerate(["Black_footed_Albatross", "Laysan_Albatross"], 1)]
    classes += [f"{k:03d}.Bird_{k}" for k in range(3, 201)]
    images = cub_table(2, (1, 1), (48, 40))  # images of the first two of the 200 classes
    return write_cub(root / "CUB_200_2011", classes, images, scene=True)


def _cifar10(root: Path, data: dict[str, Any], **_: Any) -> Path:
    return write_cifar10(root / "cifar-10-batches-py", per_batch=1, test=2)


def _cifar100(root: Path, data: dict[str, Any], **_: Any) -> Path:
    return write_cifar100(root / "cifar-100-python", train=2, test=2)


def _cityscapes(root: Path, data: dict[str, Any], *, size: tuple[int, int] = (32, 64), **_: Any) -> Path:
    samples = {data["train_split"]: [("zurich", 1), ("zurich", 2)], data["val_split"]: [("aachen", 3)]}
    return write_cityscapes(root / "cityscapes", samples, size)


def _segfolder(root: Path, data: dict[str, Any], *, size: tuple[int, int] = (32, 48), **_: Any) -> Path:
    counts = {data["train_split"]: 2, data["val_split"]: 2}
    return write_segfolder(root / "segfolder", ["background", "object", "edge"], counts, size)


LAYOUTS: dict[str, Callable[..., Path]] = {
    "cub200": _cub200,
    "imagefolder": _imagefolder,
    "cifar10": _cifar10,
    "cifar100": _cifar100,
    "cityscapes": _cityscapes,
    "segfolder": _segfolder,
    "kinetics": _kinetics,
    "ucf101": _ucf101,
    "hmdb51": _hmdb51,
    "videofolder": _videofolder,
}
"""``data.name`` -> ``fn(tmp_dir, data_section, variant=..., size=...)`` writing a small copy of that dataset for a
recipe whose data section is ``data_section`` (its split names); returns the ``data.root`` to use. ``variant``
chooses among a dataset's layouts (Kinetics: folder, csv, list)."""
