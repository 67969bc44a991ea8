"""The file-backed layouts: imagefolder, cub200, cifar10, cifar100."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from glore.data import build_transform, create_dataset, list_datasets


def test_list_datasets() -> None:
    assert list_datasets() == [
        "cifar10",
        "cifar100",
        "cityscapes",
        "cub200",
        "hmdb51",
        "imagefolder",
        "kinetics",
        "relational",
        "relational_seg",
        "relational_video",
        "segfolder",
        "ucf101",
        "videofolder",
    ]


# imagefolder ---------------------------------------------------------------------------------------------------


def test_imagefolder_classes_labels_and_splits(image_folder: Path) -> None:
    train = create_dataset("imagefolder", image_folder, "train")
    assert train.classes == ["ant", "bee", "cat"]
    assert train.num_classes == 3
    assert len(train) == 6  # the .txt file is not an image
    assert sorted(train.targets) == [0, 0, 1, 2, 2, 2]
    for (path, label), target in zip(train.samples, train.targets, strict=True):
        assert Path(path).parent.name == train.classes[label]
        assert target == label
    val = create_dataset("imagefolder", image_folder, "val")
    assert len(val) == 3 and val.targets == [0, 1, 2]  # upper-case .JPEG counts


def test_imagefolder_items_are_rgb_tensors(image_folder: Path) -> None:
    dataset = create_dataset("imagefolder", str(image_folder), "val")
    image, target = dataset[0]
    assert isinstance(target, int)
    assert image.dtype == torch.float32 and image.shape == (3, 48, 36)
    assert 0.0 <= image.min() and image.max() <= 1.0
    dataset = create_dataset("imagefolder", image_folder, "train", transform=build_transform(True, 24))
    assert dataset[1][0].shape == (3, 24, 24)


def test_imagefolder_greyscale_is_converted_to_rgb(image_folder: Path) -> None:
    from PIL import Image

    path = image_folder / "val" / "ant" / "ant.JPEG"
    Image.new("L", (20, 20), 128).save(path, format="JPEG")
    image, _ = create_dataset("imagefolder", image_folder, "val")[0]
    assert image.shape == (3, 20, 20)


def test_imagefolder_errors(image_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="'test'"):
        create_dataset("imagefolder", image_folder, "test")
    with pytest.raises(ValueError, match="root is required"):
        create_dataset("imagefolder")
    with pytest.raises(FileNotFoundError, match="root"):
        create_dataset("imagefolder", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="split"):
        create_dataset("imagefolder", image_folder, "training")
    with pytest.raises(ValueError, match="extensions"):
        create_dataset("imagefolder", image_folder, extensions="jpg")


# cub200 --------------------------------------------------------------------------------------------------------


def test_cub_splits_labels_and_classes(cub_root: Path) -> None:
    train = create_dataset("cub200", cub_root, "train")
    test = create_dataset("cub200", cub_root, "test")
    assert train.classes == ["Black_footed_Albatross", "Laysan_Albatross", "Sooty_Albatross"]
    assert train.num_classes == 3
    # ids 1, 3, 4 are training images of classes 1, 2, 3 (1-based in the files, 0-based here)
    assert train.targets == [0, 1, 2]
    assert test.targets == [0, 2, 1]
    assert [Path(p).name for p, _ in train.samples] == [
        "Black_footed_Albatross_0001.jpg",
        "Laysan_Albatross_0003.jpg",
        "Sooty_Albatross_0004.jpg",
    ]
    assert create_dataset("cub200", cub_root, "val").targets == test.targets  # val means test
    # the folder holding CUB_200_2011 works as root too
    assert create_dataset("cub200", cub_root.parent, "train").targets == train.targets
    assert train[0][0].shape == (3, 40, 60)


def test_cub_crop_to_bbox(cub_root: Path) -> None:
    plain = create_dataset("cub200", cub_root, "train")
    cropped = create_dataset("cub200", cub_root, "train", crop_to_bbox=True)
    # id 1: box x=10, y=5, w=20, h=30 in a 60x40 image; id 3: x=4.5 (rounds to 4), w=30, h=16
    assert cropped[0][0].shape == (3, 30, 20)
    assert cropped[1][0].shape[1:] == (16, 30)
    assert torch.allclose(cropped[0][0], plain[0][0][:, 5:35, 10:30])


def test_cub_errors(cub_root: Path) -> None:
    (cub_root / "train_test_split.txt").unlink()
    with pytest.raises(FileNotFoundError, match="train_test_split.txt"):
        create_dataset("cub200", cub_root)
    with pytest.raises(TypeError, match="crop_to_bbox"):
        create_dataset("cub200", cub_root, crop_box=True)


def test_cub_malformed_line_names_file_and_line(cub_root: Path) -> None:
    with open(cub_root / "image_class_labels.txt", "a") as handle:
        handle.write("seven 2\n")
    with pytest.raises(ValueError, match=r"image_class_labels.txt:7"):
        create_dataset("cub200", cub_root)


# cifar ---------------------------------------------------------------------------------------------------------


def _load(path: Path) -> dict:
    with open(path, "rb") as handle:
        return pickle.load(handle, encoding="bytes")


def test_cifar10_batches(cifar10_root: Path) -> None:
    train = create_dataset("cifar10", cifar10_root, "train")
    test = create_dataset("cifar10", cifar10_root.parent, "test")  # the parent folder works too
    assert len(train) == 20 and len(test) == 3
    assert train.classes == [f"class{i}" for i in range(10)] and train.num_classes == 10
    batches = [_load(cifar10_root / f"data_batch_{i}") for i in range(1, 6)]
    assert train.targets == [t for b in batches for t in b[b"labels"]]
    # image 5 is the second batch's first; the raw rows are channel-major: R plane, G plane, B plane
    raw = batches[1][b"data"][0]
    image, target = train[4]
    assert target == batches[1][b"labels"][0]
    assert train.data.shape == (20, 32, 32, 3) and train.data.dtype == np.uint8
    expected = torch.from_numpy(raw.reshape(3, 32, 32).astype(np.float32) / 255.0)
    assert torch.allclose(image, expected)
    assert create_dataset("cifar10", cifar10_root, "val").targets == test.targets


def test_cifar100_fine_labels(cifar100_root: Path) -> None:
    train = create_dataset("cifar100", cifar100_root, "train")
    assert train.num_classes == 100 and train.classes[7] == "fine7"
    assert train.targets == _load(cifar100_root / "train")[b"fine_labels"]
    test = create_dataset("cifar100", cifar100_root, "test", transform=build_transform(False, 28))
    image, _ = test[1]
    assert image.shape == (3, 28, 28)


def test_cifar_errors(cifar10_root: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-py/meta' not found"):
        create_dataset("cifar100", cifar10_root)  # a CIFAR-10 folder has no CIFAR-100 meta file
    (cifar10_root / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="test_batch"):
        create_dataset("cifar10", cifar10_root, "test")
    (cifar10_root / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        create_dataset("cifar10", cifar10_root, "train")


# create_dataset ------------------------------------------------------------------------------------------------


def test_create_dataset_argument_errors(image_folder: Path) -> None:
    with pytest.raises(ValueError, match="name must be one of"):
        create_dataset("imagenet", image_folder)
    with pytest.raises(ValueError, match="on_error"):
        create_dataset("imagefolder", image_folder, on_error="ignore")
    with pytest.raises(TypeError, match="'crop_to_bbox'.*valid: extensions"):
        create_dataset("imagefolder", image_folder, crop_to_bbox=True)
    with pytest.raises(ValueError, match="root must be None"):
        create_dataset("relational", image_folder)
