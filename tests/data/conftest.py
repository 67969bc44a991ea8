"""Small dataset layouts written to tmp_path: real JPEG/PNG files and real CIFAR pickles."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_image(path: Path, size: tuple[int, int] = (40, 30), colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """root/{train,val}/{cat,ant,bee}/: train 3, 2, 1 images; val 1 each; plus a stray text file."""
    root = tmp_path / "folder"
    counts = {"cat": 3, "ant": 2, "bee": 1}
    for name, count in counts.items():
        for i in range(count):
            ext = ".png" if i == 1 else ".jpg"
            write_image(root / "train" / name / f"{name}{i}{ext}", size=(48 + i, 36))
        write_image(root / "val" / name / f"{name}.JPEG", size=(36, 48))
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture
def cub_root(tmp_path: Path) -> Path:
    """A CUB-200-2011 layout with 3 classes and 6 images, inside tmp_path/CUB_200_2011."""
    root = tmp_path / "CUB_200_2011"
    classes = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]
    # image id -> (class id, is_train, size, box x y w h)
    images = {
        1: (1, 1, (60, 40), (10.0, 5.0, 20.0, 30.0)),
        2: (1, 0, (50, 50), (0.0, 0.0, 50.0, 50.0)),
        3: (2, 1, (64, 48), (4.5, 8.0, 30.0, 16.0)),
        4: (3, 1, (40, 40), (1.0, 2.0, 3.0, 4.0)),
        5: (3, 0, (40, 60), (5.0, 5.0, 30.0, 50.0)),
        6: (2, 0, (30, 30), (0.0, 0.0, 30.0, 30.0)),
    }
    lines = {"images.txt": [], "image_class_labels.txt": [], "train_test_split.txt": [], "bounding_boxes.txt": []}
    for image_id, (class_id, is_train, size, box) in images.items():
        rel = f"{classes[class_id - 1]}/{classes[class_id - 1][4:]}_{image_id:04d}.jpg"
        write_image(root / "images" / rel, size=size, colour=(10 * image_id, 100, 150))
        lines["images.txt"].append(f"{image_id} {rel}")
        lines["image_class_labels.txt"].append(f"{image_id} {class_id}")
        lines["train_test_split.txt"].append(f"{image_id} {is_train}")
        lines["bounding_boxes.txt"].append(f"{image_id} " + " ".join(str(v) for v in box))
    lines["classes.txt"] = [f"{i + 1} {name}" for i, name in enumerate(classes)]
    for name, content in lines.items():
        (root / name).write_text("\n".join(content) + "\n")
    return root


def _cifar_batch(rng: np.random.Generator, n: int, labels_key: bytes, num_classes: int) -> dict[bytes, object]:
    return {
        b"batch_label": b"testing batch",
        labels_key: [int(v) for v in rng.integers(0, num_classes, n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [b"f%d.png" % i for i in range(n)],
    }


def _dump(obj: object, path: Path) -> None:
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=2)


@pytest.fixture
def cifar10_root(tmp_path: Path) -> Path:
    """tmp_path/cifar-10-batches-py with 5 training batches of 4 images and a test batch of 3."""
    rng = np.random.default_rng(0)
    root = tmp_path / "cifar-10-batches-py"
    os.makedirs(root)
    for i in range(1, 6):
        _dump(_cifar_batch(rng, 4, b"labels", 10), root / f"data_batch_{i}")
    _dump(_cifar_batch(rng, 3, b"labels", 10), root / "test_batch")
    _dump({b"label_names": [f"class{i}".encode() for i in range(10)], b"num_vis": 3072}, root / "batches.meta")
    return root


@pytest.fixture
def cifar100_root(tmp_path: Path) -> Path:
    """tmp_path/cifar-100-python with train (5 images) and test (2 images), fine and coarse labels."""
    rng = np.random.default_rng(1)
    root = tmp_path / "cifar-100-python"
    os.makedirs(root)
    for name, n in (("train", 5), ("test", 2)):
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
