"""Where a video set's files and labels are: (path, label) pairs and class names from class folders, the official
Kinetics CSV, ``id label path`` lists (and the official GloRe tree), and UCF101's and HMDB51's split files.

Each reader returns ``(videos, classes)``: ``videos`` a list of (path, label index) pairs, ``classes`` the names in
label order. They read text files and folders only; no video is opened.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "OFFICIAL_LISTS",
    "VIDEO_EXTENSIONS",
    "csv_layout",
    "folder_layout",
    "hmdb51_split",
    "list_layout",
    "read_class_file",
    "ucf101_split",
]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov")
_LOG = logging.getLogger("glore.data.video")


def _find_videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())


def _class_index(classes: Sequence[str]) -> dict[str, int]:
    return {name: k for k, name in enumerate(classes)}


def _warn_missing_classes(where: object, split: str, classes: Sequence[str], labels: set[int]) -> None:
    missing = [name for k, name in enumerate(classes) if k not in labels]
    if missing:
        _LOG.warning(
            "%s: %d of the %d classes have no video in the %r split (first: %s)",
            where,
            len(missing),
            len(classes),
            split,
            ", ".join(missing[:3]),
        )


def folder_layout(root: Path, split: str, classes: Sequence[str] | None) -> tuple[list[tuple[str, int]], list[str]]:
    base = root / split
    found = sorted(d.name for d in base.iterdir() if d.is_dir()) if base.is_dir() else []
    if not found:
        raise FileNotFoundError(f"root: no class folders in {base} (expected {split}/<class>/*.mp4)")
    names = found if classes is None else list(classes)
    index = _class_index(names)
    extra = [name for name in found if name not in index]
    if extra:
        raise ValueError(
            f"classes: {base} has the class folder {extra[0]!r}, which is not one of the {len(names)} classes "
            f"of the training split ({len(extra)} such folders)"
        )
    videos = [(str(p), index[name]) for name in found for p in _find_videos(base / name)]
    if classes is not None:
        _warn_missing_classes(base, split, names, {y for _, y in videos})
    return videos, names


def csv_layout(root: Path, split: str, classes: Sequence[str] | None) -> tuple[list[tuple[str, int]], list[str]]:
    path = root / f"{split}.csv"
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    needed = {"label", "youtube_id", "time_start", "time_end"}
    if not rows or not needed <= set(rows[0]):
        raise ValueError(f"{path}: expected the columns label,youtube_id,time_start,time_end,split")
    names = sorted({r["label"] for r in rows}) if classes is None else list(classes)
    index = _class_index(names)
    for line, row in enumerate(rows, start=2):  # every row, downloaded or not: the class sets must agree
        if row["label"] not in index:
            raise ValueError(
                f"{path}, line {line}: label {row['label']!r} is not one of the {len(names)} classes of the "
                "training split"
            )
    files = {p.name: p for p in _find_videos(root / split)} if (root / split).is_dir() else {}
    videos = []
    for row in rows:
        name = f"{row['youtube_id']}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}"
        found = next((files[name + ext] for ext in VIDEO_EXTENSIONS if name + ext in files), None)
        if found is None:
            continue  # Kinetics videos disappear from YouTube: a missing file is left out, counted below
        videos.append((str(found), index[row["label"]]))
    if len(videos) < len(rows):
        _LOG.warning("%s: %d of %d annotated videos are not under %s", path, len(rows) - len(videos), len(rows), root)
    if classes is not None:
        _warn_missing_classes(path, split, names, {index[r["label"]] for r in rows})
    return videos, names


def read_class_file(path: str | os.PathLike[str]) -> list[str]:
    """Class names from a file of lines ``index name`` (tab or spaces; the official ``mapping_table.txt`` counts
    from 0, UCF101's ``classInd.txt`` from 1), in index order.

    Raises:
        ValueError: a line is not ``index name``, or the indices are not consecutive from 0 or 1.
    """
    path = Path(path)
    entries = []
    for line, text in enumerate(path.read_text().splitlines(), start=1):
        if not text.strip():
            continue
        parts = text.split(maxsplit=1)
        if len(parts) != 2 or not parts[0].isdigit():
            raise ValueError(f"{path}, line {line}: expected 'index name', got {text!r}")
        entries.append((int(parts[0]), parts[1].strip()))
    indices = [k for k, _ in entries]
    first = min(indices, default=0)
    if first not in (0, 1) or sorted(indices) != list(range(first, first + len(entries))):
        raise ValueError(f"{path}: expected the indices 0..N-1 (or 1..N), each once")
    return [name for _, name in sorted(entries)]


OFFICIAL_LISTS = "raw/list_cvt"


def _official_list(root: Path, split: str) -> tuple[Path, Path]:
    """The list and video folder of ``split`` in the official GloRe tree (``raw/list_cvt``, ``raw/data``)."""
    lists, data = root / OFFICIAL_LISTS, root / "raw" / "data"
    candidates = [
        (f"kinetics_{split}_avi.txt", f"{split}_avi-288p"),
        (f"kinetics_{split}_avi.txt", split),
        (f"kinetics_{split}.txt", split),
    ]
    for name, folder in candidates:
        if (lists / name).is_file() and (data / folder).is_dir():
            return lists / name, data / folder
    raise FileNotFoundError(
        f"root: {lists} has no kinetics_{split}_avi.txt or kinetics_{split}.txt whose videos are in "
        f"{data}/{split}_avi-288p or {data}/{split}; name them with list_file and video_root"
    )


def list_layout(
    root: Path,
    split: str,
    classes: Sequence[str] | None,
    list_file: str | None,
    video_root: str | None,
    class_file: str | None,
) -> tuple[list[tuple[str, int]], list[str]]:
    if list_file is None and not (root / f"{split}.txt").is_file() and (root / OFFICIAL_LISTS).is_dir():
        path, base = _official_list(root, split)
    else:
        path = root / (list_file.format(split=split) if list_file else f"{split}.txt")
        base = root / video_root.format(split=split) if video_root else root
    if not path.is_file():
        raise FileNotFoundError(f"list_file: no list {path} for the {split!r} split")
    if not base.is_dir():
        raise FileNotFoundError(f"video_root: {base} is not a folder")
    mapping = root / class_file if class_file else path.with_name("mapping_table.txt")
    if class_file and not mapping.is_file():
        raise FileNotFoundError(f"class_file: no file {mapping}")
    table = read_class_file(mapping) if mapping.is_file() else None
    if table is not None and classes is not None and list(classes) != table:
        raise ValueError(f"classes: {mapping} names other classes than the training split's")
    listed = []
    for line, text in enumerate(path.read_text().splitlines(), start=1):
        if not text.strip():
            continue
        parts = text.split(maxsplit=2)
        if len(parts) < 3 or not parts[1].lstrip("-").isdigit():
            raise ValueError(f"{path}, line {line}: expected 'id label path', got {text!r}")
        listed.append((line, int(parts[1]), parts[2].strip()))
    names = table if table is not None else list(classes) if classes is not None else None
    if names is None:
        names = [str(k) for k in range(max((y for _, y, _ in listed), default=-1) + 1)]
    for line, label, _ in listed:
        if not 0 <= label < len(names):
            raise ValueError(
                f"{path}, line {line}: label {label} is not a class index 0..{len(names) - 1}"
                + (" (the official test list has no labels)" if label < 0 else "")
            )
    videos = [(str(base / rel), label) for _, label, rel in listed if (base / rel).is_file()]
    if len(videos) < len(listed):
        _LOG.warning("%s: %d of %d listed videos are not under %s", path, len(listed) - len(videos), len(listed), base)
    if classes is not None or table is not None:
        _warn_missing_classes(path, split, names, {y for _, y, _ in listed})
    return videos, names


def ucf101_split(root: Path, split: str, fold: int) -> tuple[list[tuple[str, int]], list[str]]:
    """UCF101's (path, label) pairs and classes of ``split`` (train or test) of ``fold`` from
    ``root/ucfTrainTestlist/``."""
    lists = root / "ucfTrainTestlist"
    class_file = lists / "classInd.txt"
    if not class_file.is_file():
        raise FileNotFoundError(f"root: no {class_file} (expected the official ucfTrainTestlist folder)")
    classes = []
    for line, text in enumerate(class_file.read_text().splitlines(), start=1):
        if text.strip():
            parts = text.split()
            if len(parts) != 2 or not parts[0].isdigit():
                raise ValueError(f"{class_file}, line {line}: expected 'index name', got {text!r}")
            classes.append(parts[1])
    index = {name: k for k, name in enumerate(classes)}
    video_root = root / "UCF-101" if (root / "UCF-101").is_dir() else root
    list_file = lists / f"{split}list0{fold}.txt"
    videos = []
    for line, text in enumerate(list_file.read_text().splitlines(), start=1):
        if not text.strip():
            continue
        relative = text.split()[0]
        name = relative.split("/")[0]
        if name not in index:
            raise ValueError(f"{list_file}, line {line}: class {name!r} is not in {class_file.name}")
        videos.append((str(video_root / relative), index[name]))
    return videos, classes


def hmdb51_split(root: Path, split: str, fold: int) -> tuple[list[tuple[str, int]], list[str]]:
    """HMDB51's (path, label) pairs and classes of ``split`` (train or test) of ``fold`` from its
    ``*_test_split{fold}.txt`` files."""
    split_dir = next((d for d in (root / "testTrainMulti_7030_splits", root / "splits") if d.is_dir()), None)
    if split_dir is None:
        raise FileNotFoundError(f"root: no testTrainMulti_7030_splits/ (or splits/) folder in {root}")
    files = sorted(split_dir.glob(f"*_test_split{fold}.txt"))
    if not files:
        raise FileNotFoundError(f"{split_dir}: no *_test_split{fold}.txt files")
    classes = [f.name[: -len(f"_test_split{fold}.txt")] for f in files]
    video_root = root / "videos" if (root / "videos").is_dir() else root
    tag = "1" if split == "train" else "2"
    videos = []
    for k, (name, path) in enumerate(zip(classes, files, strict=True)):
        for line, text in enumerate(path.read_text().splitlines(), start=1):
            if not text.strip():
                continue
            parts = text.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise ValueError(f"{path}, line {line}: expected 'video tag' with tag 0, 1 or 2, got {text!r}")
            if parts[1] == tag:
                videos.append((str(video_root / name / parts[0]), k))
    return videos, classes
