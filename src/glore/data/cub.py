"""``cub200``: Caltech-UCSD Birds-200-2011 in the layout it is distributed in.

::

    CUB_200_2011/
      images.txt               <image_id> <relative path under images/>
      image_class_labels.txt   <image_id> <class_id>          (1-based)
      train_test_split.txt     <image_id> <is_training_image> (1 = train, 0 = test)
      classes.txt              <class_id> <class_name>        e.g. "1 001.Black_footed_Albatross"
      bounding_boxes.txt       <image_id> <x> <y> <width> <height>   (floats, pixels; optional)
      images/<class_name>/<file>.jpg

``root`` may be that folder or the folder holding it. Labels are 0-based (class_id - 1); class names drop the
numeric prefix ("Black_footed_Albatross").
"""

from __future__ import annotations

import os
import re

from ._base import ImageListDataset, Transform, check_on_error, check_root, check_split

__all__ = ["CUB200", "read_table"]

_SPLITS = {"train": "train", "val": "test", "test": "test"}
_REQUIRED = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt")


def read_table(path: str, num_fields: int, *, values: tuple[str, ...] | None = None) -> dict[int, list[str]]:
    """Read a CUB metadata file: ``<id> <field> ...`` per line, into {id: [fields]}.

    The last field takes the rest of the line, so names with spaces survive.

    Args:
        path: the file.
        num_fields: fields after the id.
        values: when given, the only values the (single) field may take, e.g. ("0", "1"); "int" checks that it is
            a positive integer.

    Raises:
        FileNotFoundError: the file does not exist (the message names it).
        ValueError: a line is malformed, repeats an id, or has a value outside ``values`` (the message names the file
            and the line number).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CUB-200-2011 metadata file {path!r} not found")
    table: dict[int, list[str]] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(maxsplit=num_fields)
            if len(parts) != num_fields + 1 or not parts[0].isdigit():
                raise ValueError(f"{path}:{number}: expected '<id>' and {num_fields} field(s), got {line!r}")
            if values == ("int",) and not parts[1].isdigit():
                raise ValueError(f"{path}:{number}: expected two integers '<id> <value>', got {line!r}")
            if values is not None and values != ("int",) and parts[1] not in values:
                raise ValueError(f"{path}:{number}: expected a value in {{{', '.join(values)}}}, got {line!r}")
            if int(parts[0]) in table:
                raise ValueError(f"{path}:{number}: image id {parts[0]} appears twice")
            table[int(parts[0])] = parts[1:]
    return table


class CUB200(ImageListDataset):
    """CUB-200-2011 (200 bird species, 5,994 training and 5,794 test images).

    Args:
        root: the ``CUB_200_2011`` folder, or the folder holding it.
        split: "train" or "test" ("val" is an alias of "test", the only held-out split CUB defines).
        transform: callable applied to the RGB PIL image (see ``glore.data.transforms.build_transform``).
        on_error: "raise" or "skip" for a missing or corrupt image (see ``ImageListDataset``).
        crop_to_bbox: crop every image to its box in ``bounding_boxes.txt`` before the transform.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None,
        split: str = "train",
        *,
        transform: Transform | None = None,
        on_error: str = "raise",
        crop_to_bbox: bool = False,
    ) -> None:
        root = check_root(root, "cub200")
        split = check_split(split, _SPLITS, "cub200")
        check_on_error(on_error)
        if not isinstance(crop_to_bbox, bool):
            raise TypeError(f"crop_to_bbox must be a bool, got {crop_to_bbox!r}")
        if not os.path.isfile(os.path.join(root, "images.txt")) and os.path.isfile(
            os.path.join(root, "CUB_200_2011", "images.txt")
        ):
            root = os.path.join(root, "CUB_200_2011")
        missing = [name for name in _REQUIRED if not os.path.isfile(os.path.join(root, name))]
        if missing:
            raise FileNotFoundError(f"root {root!r} is not a CUB-200-2011 folder: missing {', '.join(missing)}")
        self.root = root
        self.split = split

        paths = read_table(os.path.join(root, "images.txt"), 1)
        labels = read_table(os.path.join(root, "image_class_labels.txt"), 1, values=("int",))
        is_train = read_table(os.path.join(root, "train_test_split.txt"), 1, values=("0", "1"))
        class_table = read_table(os.path.join(root, "classes.txt"), 1)
        class_ids = sorted(class_table)
        if class_ids != list(range(1, len(class_ids) + 1)):
            raise ValueError(f"{os.path.join(root, 'classes.txt')}: class ids must be 1..{len(class_ids)}")
        classes = [re.sub(r"^\d+\.", "", class_table[i][0]) for i in class_ids]

        boxes_table = read_table(os.path.join(root, "bounding_boxes.txt"), 4) if crop_to_bbox else None
        want = "1" if split == "train" else "0"
        samples: list[tuple[str, int]] = []
        boxes: list[tuple[float, float, float, float]] = []
        for image_id in sorted(paths):
            for table, name in ((labels, "image_class_labels.txt"), (is_train, "train_test_split.txt")):
                if image_id not in table:
                    raise ValueError(f"{os.path.join(root, name)}: no entry for image id {image_id}")
            if is_train[image_id][0] != want:
                continue
            label = int(labels[image_id][0]) - 1
            if not 0 <= label < len(classes):
                raise ValueError(
                    f"{os.path.join(root, 'image_class_labels.txt')}: image {image_id} has class {label + 1}, "
                    f"expected 1..{len(classes)}"
                )
            samples.append((os.path.join(root, "images", paths[image_id][0]), label))
            if boxes_table is not None:
                if image_id not in boxes_table:
                    raise ValueError(f"{os.path.join(root, 'bounding_boxes.txt')}: no box for image id {image_id}")
                try:
                    x, y, w, h = (float(v) for v in boxes_table[image_id])
                except ValueError as error:
                    raise ValueError(
                        f"{os.path.join(root, 'bounding_boxes.txt')}: bad box for image id {image_id}: {error}"
                    ) from error
                boxes.append((x, y, x + w, y + h))
        if not samples:
            raise ValueError(
                f"{os.path.join(root, 'train_test_split.txt')}: no image of {os.path.join(root, 'images.txt')} is "
                f"marked {want} ({split} split); expected 1 for training images and 0 for test images"
            )
        super().__init__(
            samples, classes, transform=transform, on_error=on_error, boxes=boxes if crop_to_bbox else None
        )
