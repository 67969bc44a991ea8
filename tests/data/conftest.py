"""Small dataset layouts written to tmp_path: real JPEG/PNG files and real CIFAR pickles (the writers are shared
with the recipe matrix: tests/recipe_layouts.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from recipe_layouts import write_cifar10, write_cifar100, write_cub, write_image


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
    return write_cub(tmp_path / "CUB_200_2011", classes, images)


@pytest.fixture
def cifar10_root(tmp_path: Path) -> Path:
    """tmp_path/cifar-10-batches-py with 5 training batches of 4 images and a test batch of 3."""
    return write_cifar10(tmp_path / "cifar-10-batches-py", per_batch=4, test=3, seed=0)


@pytest.fixture
def cifar100_root(tmp_path: Path) -> Path:
    """tmp_path/cifar-100-python with train (5 images) and test (2 images), fine and coarse labels."""
    return write_cifar100(tmp_path / "cifar-100-python", train=5, test=2, seed=1)
