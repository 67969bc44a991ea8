"""Missing and corrupt files under on_error="raise" and "skip"; collate and DataLoader workers."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from glore.data import Batch, build_transform, collate, create_dataset


def truncate(path: Path, keep: int = 200) -> None:
    """Cut a file to its first ``keep`` bytes: a JPEG whose header parses but whose data ends early."""
    path.write_bytes(path.read_bytes()[:keep])


def _corrupt_and_missing(root: Path) -> tuple[Path, Path]:
    corrupt = root / "train" / "cat" / "cat0.jpg"
    truncate(corrupt)
    missing = root / "train" / "cat" / "cat2.jpg"
    return corrupt, missing


def test_corrupt_jpeg_raises_naming_the_file(image_folder: Path) -> None:
    corrupt, _ = _corrupt_and_missing(image_folder)
    dataset = create_dataset("imagefolder", image_folder, "train")
    index = [p for p, _ in dataset.samples].index(str(corrupt))
    with pytest.raises(OSError, match="cat0.jpg"):
        dataset[index]


def test_missing_file_raises_naming_the_file(image_folder: Path) -> None:
    dataset = create_dataset("imagefolder", image_folder, "train")
    _, missing = _corrupt_and_missing(image_folder)
    missing.unlink()  # removed after the dataset listed it
    index = [p for p, _ in dataset.samples].index(str(missing))
    with pytest.raises(OSError, match="cat2.jpg"):
        dataset[index]


def test_skip_returns_none_logs_the_file_and_collate_counts(
    image_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dataset = create_dataset(
        "imagefolder", image_folder, "train", on_error="skip", transform=build_transform(False, 16)
    )
    corrupt, missing = _corrupt_and_missing(image_folder)
    missing.unlink()
    paths = [p for p, _ in dataset.samples]
    with caplog.at_level(logging.WARNING, logger="glore.data"):
        samples = [dataset[i] for i in range(len(dataset))]
    assert samples[paths.index(str(corrupt))] is None
    assert samples[paths.index(str(missing))] is None
    assert "cat0.jpg" in caplog.text and "cat2.jpg" in caplog.text
    batch = collate(samples)
    assert isinstance(batch, Batch)
    assert batch.skipped == 2
    assert batch.inputs.shape == (4, 3, 16, 16)
    kept = [label for (p, label) in dataset.samples if p not in (str(corrupt), str(missing))]
    assert batch.targets.tolist() == kept and batch.targets.dtype == torch.long


def test_cub_skip_counts_a_corrupt_image(cub_root: Path) -> None:
    truncate(next((cub_root / "images" / "002.Laysan_Albatross").glob("*0003.jpg")))
    dataset = create_dataset("cub200", cub_root, "train", on_error="skip", crop_to_bbox=True)
    assert dataset[1] is None
    with pytest.raises(OSError, match="Laysan_Albatross_0003.jpg"):
        create_dataset("cub200", cub_root, "train")[1]


def test_collate_all_skipped() -> None:
    batch = collate([None, None])
    assert batch.skipped == 2 and batch.inputs.numel() == 0 and batch.targets.shape == (0,)


def test_dataloader_with_two_workers_counts_skipped(image_folder: Path) -> None:
    corrupt, _ = _corrupt_and_missing(image_folder)
    dataset = create_dataset("imagefolder", image_folder, "train", on_error="skip", transform=build_transform(True, 16))
    loader = DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=collate)
    batches = list(loader)
    assert sum(b.skipped for b in batches) == 1
    assert sum(len(b.targets) for b in batches) == len(dataset) - 1
    assert all(b.inputs.shape[1:] == (3, 16, 16) for b in batches)


@pytest.mark.parametrize(
    ("table", "line", "needle"),
    [
        ("image_class_labels.txt", "1 albatross", "image_class_labels.txt:1: expected two integers"),
        ("train_test_split.txt", "1 2", "train_test_split.txt:1: expected a value in {0, 1}"),
        ("image_class_labels.txt", "1 1\n1 2", "image_class_labels.txt:2: image id 1 appears twice"),
    ],
)
def test_cub_tables(cub_root, table, line, needle):
    from glore.data import create_dataset

    path = cub_root / table
    rows = path.read_text().splitlines()
    path.write_text("\n".join([line, *rows[1:]]) + "\n")
    with pytest.raises(ValueError, match=needle.replace("{", r"\{").replace("}", r"\}")):
        create_dataset("cub200", cub_root, "train")
