"""``cityscapes``: the Cityscapes dataset as distributed (fine annotations), and its label table.

Layout (the zips ``leftImg8bit_trainvaltest.zip`` and ``gtFine_trainvaltest.zip`` unpacked into one folder)::

    root/
      leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
      gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png
      gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_instanceIds.png

The 34 label ids of ``*_labelIds.png`` map to the 19 train ids used for training and evaluation; the other 15
labels (void, parking, rail track, guard rail, bridge, tunnel, polegroup, caravan, trailer) become the ignore label
255. ``LABELS`` is the table of cityscapesScripts' ``helpers/labels.py`` (name, id, trainId, category, catId,
hasInstances, ignoreInEval, colour); a test compares it with the installed package.

Instance ids (``*_instanceIds.png``, 16-bit) are ``labelId * 1000 + k`` for the k-th instance of a class with
instances, and the bare labelId for everything else (crowds included); the iIoU metrics
(``glore.metrics.SegmentationMeter``) weight every instance by ``AVG_CLASS_SIZE[class] / instance size``.
"""

from __future__ import annotations

import glob
import os
import warnings
from typing import NamedTuple

import numpy as np

from ._base import check_on_error, check_root, check_split
from .segmentation import SegmentationDataset, SegSample, SegTransform, label_lut

__all__ = [
    "CityscapesDataset",
    "Label",
    "LABELS",
    "CITYSCAPES_CLASSES",
    "CITYSCAPES_CATEGORIES",
    "CITYSCAPES_PALETTE",
    "AVG_CLASS_SIZE",
    "LABEL_TO_TRAIN",
    "TRAIN_TO_LABEL",
    "train_to_label_ids",
    "colorize",
]


class Label(NamedTuple):
    """One row of the Cityscapes label table (cityscapesScripts' ``Label``)."""

    name: str
    id: int
    train_id: int
    category: str
    category_id: int
    has_instances: bool
    ignore_in_eval: bool
    color: tuple[int, int, int]


# fmt: off
LABELS: tuple[Label, ...] = (
    #     name                    id  trainId  category       catId  instances  ignore  colour
    Label("unlabeled",             0, 255, "void",          0, False, True,  (0, 0, 0)),
    Label("ego vehicle",           1, 255, "void",          0, False, True,  (0, 0, 0)),
    Label("rectification border",  2, 255, "void",          0, False, True,  (0, 0, 0)),
    Label("out of roi",            3, 255, "void",          0, False, True,  (0, 0, 0)),
    Label("static",                4, 255, "void",          0, False, True,  (0, 0, 0)),
    Label("dynamic",               5, 255, "void",          0, False, True,  (111, 74, 0)),
    Label("ground",                6, 255, "void",          0, False, True,  (81, 0, 81)),
    Label("road",                  7,   0, "flat",          1, False, False, (128, 64, 128)),
    Label("sidewalk",              8,   1, "flat",          1, False, False, (244, 35, 232)),
    Label("parking",               9, 255, "flat",          1, False, True,  (250, 170, 160)),
    Label("rail track",           10, 255, "flat",          1, False, True,  (230, 150, 140)),
    Label("building",             11,   2, "construction",  2, False, False, (70, 70, 70)),
    Label("wall",                 12,   3, "construction",  2, False, False, (102, 102, 156)),
    Label("fence",                13,   4, "construction",  2, False, False, (190, 153, 153)),
    Label("guard rail",           14, 255, "construction",  2, False, True,  (180, 165, 180)),
    Label("bridge",               15, 255, "construction",  2, False, True,  (150, 100, 100)),
    Label("tunnel",               16, 255, "construction",  2, False, True,  (150, 120, 90)),
    Label("pole",                 17,   5, "object",        3, False, False, (153, 153, 153)),
    Label("polegroup",            18, 255, "object",        3, False, True,  (153, 153, 153)),
    Label("traffic light",        19,   6, "object",        3, False, False, (250, 170, 30)),
    Label("traffic sign",         20,   7, "object",        3, False, False, (220, 220, 0)),
    Label("vegetation",           21,   8, "nature",        4, False, False, (107, 142, 35)),
    Label("terrain",              22,   9, "nature",        4, False, False, (152, 251, 152)),
    Label("sky",                  23,  10, "sky",           5, False, False, (70, 130, 180)),
    Label("person",               24,  11, "human",         6, True,  False, (220, 20, 60)),
    Label("rider",                25,  12, "human",         6, True,  False, (255, 0, 0)),
    Label("car",                  26,  13, "vehicle",       7, True,  False, (0, 0, 142)),
    Label("truck",                27,  14, "vehicle",       7, True,  False, (0, 0, 70)),
    Label("bus",                  28,  15, "vehicle",       7, True,  False, (0, 60, 100)),
    Label("caravan",              29, 255, "vehicle",       7, True,  True,  (0, 0, 90)),
    Label("trailer",              30, 255, "vehicle",       7, True,  True,  (0, 0, 110)),
    Label("train",                31,  16, "vehicle",       7, True,  False, (0, 80, 100)),
    Label("motorcycle",           32,  17, "vehicle",       7, True,  False, (0, 0, 230)),
    Label("bicycle",              33,  18, "vehicle",       7, True,  False, (119, 11, 32)),
    Label("license plate",        -1,  -1, "vehicle",       7, False, True,  (0, 0, 142)),
)
# fmt: on

IGNORE_INDEX = 255

_TRAIN_LABELS = sorted((lab for lab in LABELS if 0 <= lab.train_id < IGNORE_INDEX), key=lambda lab: lab.train_id)

# The 19 evaluated classes, by train id.
CITYSCAPES_CLASSES: tuple[str, ...] = tuple(lab.name for lab in _TRAIN_LABELS)

# Category name -> train ids, in category-id order, for the categories that have evaluated classes (not "void").
CITYSCAPES_CATEGORIES: dict[str, list[int]] = {}
for _lab in sorted(_TRAIN_LABELS, key=lambda lab: (lab.category_id, lab.train_id)):
    CITYSCAPES_CATEGORIES.setdefault(_lab.category, []).append(_lab.train_id)

# Colour (RGB) of each train id, for colourised predictions.
CITYSCAPES_PALETTE: np.ndarray = np.array([lab.color for lab in _TRAIN_LABELS], dtype=np.uint8)  # (19, 3)

# labelId (0..33) -> train id or 255.
LABEL_TO_TRAIN: np.ndarray = np.array([lab.train_id for lab in sorted(LABELS[:-1], key=lambda lab: lab.id)])

# train id (0..18) -> labelId; what a prediction PNG for the official evaluation holds.
TRAIN_TO_LABEL: np.ndarray = np.array([lab.id for lab in _TRAIN_LABELS], dtype=np.uint8)

# Mean instance size in pixels of each class with instances over the training set, by which cityscapesScripts
# (evaluation/evalPixelLevelSemanticLabeling.py, ``args.avgClassSize``) weights the instances in iIoU.
AVG_CLASS_SIZE: dict[str, float] = {
    "bicycle": 4672.3249222261,
    "caravan": 36771.8241758242,
    "motorcycle": 6298.7200839748,
    "rider": 3930.4788056518,
    "bus": 35732.1511111111,
    "train": 67583.7075812274,
    "car": 12794.0202738185,
    "person": 3462.4756337644,
    "truck": 27855.1264367816,
    "trailer": 16926.9763313609,
}

_SPLITS = {"train": "train", "val": "val", "test": "test"}


def train_to_label_ids(train_ids: np.ndarray) -> np.ndarray:
    """Map an array of train ids (0..18) to Cityscapes labelIds (uint8); any other value (255) becomes 0,
    "unlabeled"."""
    train_ids = np.asarray(train_ids)
    lut = np.zeros(256, dtype=np.uint8)
    lut[: len(TRAIN_TO_LABEL)] = TRAIN_TO_LABEL
    return lut[np.clip(train_ids, 0, 255).astype(np.intp)]


def colorize(train_ids: np.ndarray) -> np.ndarray:
    """Colour an array (H, W) of train ids with the Cityscapes palette: uint8 (H, W, 3); 255 and other values
    black."""
    train_ids = np.asarray(train_ids)
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[: len(CITYSCAPES_PALETTE)] = CITYSCAPES_PALETTE
    return palette[np.clip(train_ids, 0, 255).astype(np.intp)]


_IMAGE_SUFFIX = "_leftImg8bit.png"
_LABEL_SUFFIX = "_gtFine_labelIds.png"


def _gtfine_samples(root: str, split: str, image_dir: str, instances: bool) -> list[SegSample]:
    """The samples of a split in the order and number the official evaluation uses: one per
    ``gtFine/<split>/<city>/*_gtFine_labelIds.png`` (``csEvalPixelLevelSemanticLabeling`` lists these), each with
    its ``leftImg8bit`` image. A file under ``leftImg8bit/<split>`` that pairs with no labelIds file (an extra
    image, a ``.jpg``) is named in a warning rather than dropped without a word.

    Raises:
        FileNotFoundError: the split has no labelIds files, or one of them has no image (or no instanceIds file
            with ``instances``); the message names the file.
    """
    label_dir = os.path.join(root, "gtFine", split)
    labels = sorted(glob.glob(os.path.join(glob.escape(label_dir), "*", "*" + _LABEL_SUFFIX)))
    if not labels:
        raise FileNotFoundError(
            f"{label_dir!r} holds no <city>/*{_LABEL_SUFFIX} files (the images evaluated are those with fine labels)"
        )
    samples, paired = [], set()
    for mask in labels:
        city = os.path.basename(os.path.dirname(mask))
        stem = os.path.basename(mask)[: -len(_LABEL_SUFFIX)]
        image = os.path.join(image_dir, city, stem + _IMAGE_SUFFIX)
        if not os.path.isfile(image):
            raise FileNotFoundError(f"image {image!r} for gtFine file {mask!r} not found")
        inst = os.path.join(os.path.dirname(mask), stem + "_gtFine_instanceIds.png")
        if instances and not os.path.isfile(inst):
            raise FileNotFoundError(f"gtFine file {inst!r} for image {image!r} not found")
        samples.append(SegSample(stem, image, mask, inst if instances else None))
        paired.add(os.path.normpath(image))
    unpaired = sorted(
        path
        for path in glob.glob(os.path.join(glob.escape(image_dir), "*", "*"))
        if os.path.isfile(path) and os.path.normpath(path) not in paired
    )
    if unpaired:
        more = f" and {len(unpaired) - 1} more" if len(unpaired) > 1 else ""
        warnings.warn(
            f"cityscapes: {unpaired[0]!r}{more} under {image_dir!r} pair with no gtFine labelIds file and are left "
            f"out (images are <city>/<city>_<seq>_<frame>{_IMAGE_SUFFIX})",
            stacklevel=3,
        )
    return samples


class CityscapesDataset(SegmentationDataset):
    """Cityscapes fine annotations: 19 classes (train ids), 255 ignored.

    Samples are ``(image, target, meta)``: the image a normalised float tensor (3, H, W) after ``transform``; the
    target an int64 tensor (H, W) of train ids and 255, or with ``instances=True`` a dict
    ``{"mask": int64 (H, W), "instances": int32 (H, W) of the raw instance ids}`` (for iIoU); meta
    ``{"id": "<city>_<seq>_<frame>", "file": <image path>, "size": (H, W)}``.

    Args:
        root: the folder holding ``leftImg8bit/`` and ``gtFine/``.
        split: "train", "val" or "test".
        transform: joint transform (``glore.data.transforms.build_seg_transform``); None normalises with the
            ImageNet mean and std at full resolution.
        on_error: "raise" or "skip" for an unreadable or inconsistent sample (``glore.data.segmentation``).
        instances: also read ``*_gtFine_instanceIds.png``.

    Raises:
        FileNotFoundError: ``root`` lacks the split's images or labels, or a labelIds file has no image (named).

    Attributes:
        classes, num_classes (19), ignore_index (255), categories (category -> train ids), instance_sizes
        (train id -> average instance size, the 8 classes with instances that are evaluated), label_to_class
        (labelId -> train id or 255): what ``glore.metrics.SegmentationMeter.for_dataset`` reads.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None,
        split: str = "train",
        *,
        transform: SegTransform | None = None,
        on_error: str = "raise",
        instances: bool = False,
    ) -> None:
        root = check_root(root, "cityscapes")
        split = check_split(split, _SPLITS, "cityscapes")
        check_on_error(on_error)
        image_dir = os.path.join(root, "leftImg8bit", split)
        if not os.path.isdir(image_dir):
            raise FileNotFoundError(f"root {root!r} has no 'leftImg8bit/{split}' folder ({image_dir!r})")
        samples = _gtfine_samples(root, split, image_dir, instances)
        self.root = root
        self.split = split
        self.categories = {name: list(ids) for name, ids in CITYSCAPES_CATEGORIES.items()}
        self.instance_sizes = {lab.train_id: AVG_CLASS_SIZE[lab.name] for lab in _TRAIN_LABELS if lab.has_instances}
        self.label_to_class = LABEL_TO_TRAIN.tolist()
        super().__init__(
            samples,
            CITYSCAPES_CLASSES,
            lut=label_lut(256, {i: int(t) for i, t in enumerate(LABEL_TO_TRAIN)}),
            ignore_index=IGNORE_INDEX,
            transform=transform,
            on_error=on_error,
            instances=instances,
        )
