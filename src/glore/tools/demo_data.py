"""The demos' generated datasets (registered in ``glore.data``: configs name them as any other dataset).

``relational``: a built-in image dataset whose label is a relation between two objects placed far apart.

Each image shows a red object and a blue object, at least ``min_distance * image_size`` apart (centre to centre),
among ``num_distractors`` objects of other colours, on a noisy background. The label is 1 ("same") when the red and
the blue object have the same shape, else 0 ("different"); both labels are equally likely. Shapes, sizes, colour
shades and positions vary; distractors draw from the same shapes, so only the red-blue pair decides the label.

Why this measures global reasoning: a network that ends in global average pooling and a linear classifier sums
local features over the image, and a sum of features each of which sees only one object is additive in the two
objects, so it cannot tell "same" from "different" (an XOR of the two shapes). The network must either build
features whose receptive field spans both objects, or carry information between distant positions in another way.
A GloRe unit pools the whole feature map into graph nodes, mixes the nodes non-linearly and projects the result
back to every position: one unit can bring the red object's shape to where the blue one is. docs/data.md has the
measurements.

With ``min_gap`` set, the pair is placed on opposite sides of the image with at least ``min_gap`` pixels between
their boxes along x or along y, and the argument becomes exact: no window of ``min_gap + 1`` pixels covers both boxes,
so a network whose receptive field is that small computes, before its global average pool, a sum of a red-object term
and a blue-object term, and its logit is ``u(red shape) + v(blue shape)`` for every placement. With two shapes
``logit(a, a) + logit(b, b) = logit(a, b) + logit(b, a)``: the four shape pairs of one placement cannot all be on the
right side of the threshold, and such a network is right on at most 3 of 4 test images, however long it trains.

Images are generated on the fly in ``__getitem__`` with numpy, deterministically from (seed, split, index), so every
DataLoader worker produces the same image for the same index and ``train``, ``val`` and ``test`` never overlap. The
label and the pair's two shapes come from one random stream and everything else from another, so
``scene(index, pair=...)`` draws the same placement, sizes, shades and noise with other shapes (what the tests use to
check the argument). ``relation="colour"`` asks the same of the pair's colours (red or blue each, any shapes): the
question of ``glore demo classification``.
"""

from __future__ import annotations

import math
import numbers
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from glore.data._base import Transform, check_on_error, check_split

__all__ = [
    "RelationalDataset",
    "RelationalSegDataset",
    "RelationalVideoDataset",
    "Scene",
    "SHAPES",
    "RELATIONAL_MEAN",
    "RELATIONAL_STD",
]

SHAPES = ("square", "cross", "triangle", "disc", "ring", "bar")

# The generated images, in [0, 1], are normalised with these.
RELATIONAL_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
RELATIONAL_STD: tuple[float, float, float] = (0.25, 0.25, 0.25)

_SPLITS = {"train": "train", "val": "val", "test": "test"}
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
_DEFAULT_NUM_SAMPLES = {"train": 8000, "val": 2000, "test": 2000}

# Colour (RGB in [0, 1]) ranges: (low, high) per channel.
_PAIR_COLOURS = {
    "red": ((0.75, 0.0, 0.0), (1.0, 0.25, 0.25)),
    "blue": ((0.0, 0.1, 0.75), (0.25, 0.35, 1.0)),
}
_DISTRACTOR_COLOURS = {
    "green": ((0.0, 0.6, 0.0), (0.25, 0.9, 0.25)),
    "yellow": ((0.8, 0.8, 0.0), (1.0, 1.0, 0.25)),
    "white": ((0.8, 0.8, 0.8), (1.0, 1.0, 1.0)),
}


class SceneObject(NamedTuple):
    """One object of a scene: its colour and shape names and its box (left, top, right, bottom), exclusive."""

    colour: str
    shape: str
    box: tuple[int, int, int, int]


class Scene(NamedTuple):
    """A generated image with what it shows.

    Attributes:
        image: uint8 array (H, W, 3).
        label: 1 if the pair's two objects have the same shape (``relation="shape"``) or colour
            (``relation="colour"``), else 0.
        objects: the pair (the red then the blue object for ``"shape"``), then the distractors.
    """

    image: np.ndarray
    label: int
    objects: list[SceneObject]


@lru_cache(maxsize=256)
def _shape_mask(shape: str, size: int) -> np.ndarray:
    """A boolean (size, size) mask of ``shape``; computed once per (shape, size)."""
    # Pixel centres in [-1, 1].
    c = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
    y, x = np.meshgrid(c, c, indexing="ij")
    if shape == "square":
        mask = (np.abs(x) <= 0.8) & (np.abs(y) <= 0.8)
    elif shape == "disc":
        mask = x**2 + y**2 <= 0.92**2
    elif shape == "triangle":  # pointing up: apex at the top, base at the bottom
        mask = (y <= 0.85) & (np.abs(x) <= (y + 0.95) * 0.5)
    elif shape == "cross":
        mask = ((np.abs(x) <= 0.3) & (np.abs(y) <= 0.95)) | ((np.abs(y) <= 0.3) & (np.abs(x) <= 0.95))
    elif shape == "ring":
        r2 = x**2 + y**2
        mask = (r2 <= 0.95**2) & (r2 >= 0.5**2)
    elif shape == "bar":  # a horizontal bar
        mask = (np.abs(x) <= 0.95) & (np.abs(y) <= 0.35)
    else:  # pragma: no cover - guarded by RelationalDataset's checks
        raise ValueError(f"unknown shape {shape!r}")
    mask.setflags(write=False)
    return mask


def _check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return int(value)


def _init_generated(
    dataset: Any,
    name: str,
    split: str,
    transform: Any,
    on_error: str,
    num_samples: int | None,
    defaults: dict[str, int],
    image_size: int,
    min_image_size: int,
    seed: int,
) -> None:
    """Check and set what every generated dataset has: split, transform, on_error, num_samples (default by split),
    image_size and seed."""
    dataset.split = check_split(split, _SPLITS, name)
    dataset.transform = transform
    dataset.on_error = check_on_error(on_error)
    count = num_samples if num_samples is not None else defaults[dataset.split]
    dataset.num_samples = _check_int("num_samples", count, 1)
    dataset.image_size = _check_int("image_size", image_size, min_image_size)
    dataset.seed = _check_int("seed", seed, 0)


def _check_float(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (low <= value <= high):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


class RelationalDataset(Dataset):
    """Red and blue object far apart; label 1 if they have the same shape ("same"), else 0 ("different").

    Args:
        split: "train", "val" or "test"; each split draws from its own random stream.
        transform: optional callable applied to the normalised image tensor (3, H, W); it must keep the label
            (a horizontal or vertical flip does; a crop may cut an object off).
        on_error: accepted for a uniform interface ("raise" or "skip"); generation cannot fail.
        num_samples: images in this split (default 8000 for train, 2000 for val and test).
        image_size: side of the square images, in pixels (>= 32).
        seed: base seed; the image at ``index`` depends only on (seed, split, index) and the arguments here.
        num_shapes: how many shapes are used, the first ``num_shapes`` of ``SHAPES`` (2 to 6).
        num_distractors: objects of other colours (green, yellow, white) added to every image.
        object_size: (min, max) side of an object as a fraction of ``image_size``.
        min_distance: least distance between the red and blue objects' centres, as a fraction of ``image_size``.
        noise: standard deviation of the Gaussian pixel noise, on the [0, 1] scale.
        min_gap: when set, the red and the blue object lie on opposite sides of the image, at least ``min_gap``
            pixels apart along x or along y (the axis and the order drawn at random), and ``min_distance`` is not
            used: a network whose receptive field is at most ``min_gap + 1`` pixels never sees both.
        relation: ``"shape"``: a red and a blue object, label 1 when their shapes are equal; ``"colour"``: two
            objects of any shapes, each red or blue, label 1 when their colours are equal.

    Attributes:
        classes: ``["different", "same"]``.
        num_classes: 2.
    """

    def __init__(
        self,
        split: str = "train",
        *,
        transform: Transform | None = None,
        on_error: str = "raise",
        num_samples: int | None = None,
        image_size: int = 64,
        seed: int = 0,
        num_shapes: int = 3,
        num_distractors: int = 0,
        object_size: tuple[float, float] = (0.18, 0.25),
        min_distance: float = 0.5,
        noise: float = 0.05,
        min_gap: int | None = None,
        relation: str = "shape",
    ) -> None:
        _init_generated(
            self, "relational", split, transform, on_error, num_samples, _DEFAULT_NUM_SAMPLES, image_size, 32, seed
        )
        self.num_shapes = _check_int("num_shapes", num_shapes, 2, len(SHAPES))
        self.num_distractors = _check_int("num_distractors", num_distractors, 0, 8)
        if isinstance(object_size, (str, bytes)) or not hasattr(object_size, "__len__") or len(object_size) != 2:
            raise ValueError(f"object_size must be a pair (min, max) of fractions, got {object_size!r}")
        low, high = (_check_float("object_size", v, 0.05, 0.4) for v in object_size)
        if low > high:
            raise ValueError(f"object_size must satisfy min <= max, got {object_size!r}")
        self.object_size = (low, high)
        self.min_distance = _check_float("min_distance", min_distance, 0.0, 0.85)
        self.noise = _check_float("noise", noise, 0.0, 0.5)
        self.shapes = SHAPES[: self.num_shapes]
        self.classes = ["different", "same"]
        self._min_px = max(5, int(round(low * self.image_size)))
        self._max_px = max(self._min_px, int(round(high * self.image_size)))
        # The pair must fit: two objects of the largest size at min_distance inside the image.
        reach = (self.image_size - self._max_px) * math.sqrt(2)
        if self.min_distance * self.image_size > 0.9 * reach:
            raise ValueError(
                f"min_distance={self.min_distance} is too large for object_size={object_size} "
                f"at image_size={self.image_size}"
            )
        if relation not in ("shape", "colour"):
            raise ValueError(f"relation must be 'shape' or 'colour', got {relation!r}")
        self.relation = relation
        self.min_gap = None if min_gap is None else _check_int("min_gap", min_gap, 0)
        if self.min_gap is not None and 2 * self._max_px + self.min_gap > self.image_size:
            raise ValueError(
                f"min_gap={self.min_gap} leaves no room for two objects of {self._max_px} px "
                f"(object_size={object_size}) in {self.image_size} px; lower min_gap or object_size"
            )

    @property
    def num_classes(self) -> int:
        """The number of classes, 2."""
        return len(self.classes)

    def __len__(self) -> int:
        return self.num_samples

    def _rng(self, index: int, stream: int = 0) -> np.random.Generator:
        """Stream 0 draws the label and the shapes, stream 1 everything else."""
        key = [self.seed, _SPLIT_CODE[self.split], index]
        return np.random.default_rng(key if stream == 0 else [*key, stream])

    def scene(self, index: int, pair: tuple[str, str] | None = None) -> Scene:
        """Generate the image at ``index`` with its label and objects (deterministic).

        Args:
            index: in [0, len(self)).
            pair: the two objects' shapes (``relation="shape"``, names of ``self.shapes``) or colours
                (``"colour"``: ``"red"``, ``"blue"``) instead of the drawn ones; everything else (placement, sizes,
                the other attribute, shades, noise) is the same as without, and the label follows.

        Raises:
            IndexError: ``index`` is out of range.
            ValueError: ``pair`` is not two of the relation's values.
        """
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"index must be an integer, got {type(index).__name__}")
        if not -self.num_samples <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} samples")
        index = int(index) % self.num_samples
        pair_rng, rng = self._rng(index), self._rng(index, 1)
        size = self.image_size
        values = self.shapes if self.relation == "shape" else tuple(_PAIR_COLOURS)

        label = int(pair_rng.integers(2))
        first = int(pair_rng.integers(len(values)))
        if label:
            second = first
        else:  # any other value, uniformly
            second = (first + 1 + int(pair_rng.integers(len(values) - 1))) % len(values)
        if pair is not None:
            if isinstance(pair, str) or len(pair) != 2 or any(v not in values for v in pair):
                raise ValueError(f"pair must be two of {values}, got {pair!r}")
            first, second = (values.index(v) for v in pair)
            label = int(first == second)
        if self.relation == "shape":
            colours, shapes = ("red", "blue"), (self.shapes[first], self.shapes[second])
        else:
            colours = (values[first], values[second])
            shapes = tuple(self.shapes[int(v)] for v in rng.integers(self.num_shapes, size=2))

        level = rng.uniform(0.0, 0.35)
        image = np.full((size, size, 3), level, dtype=np.float32)
        if self.noise > 0:
            image += rng.normal(0.0, self.noise, size=(size, size, 3)).astype(np.float32)

        objects: list[SceneObject] = []
        boxes = self._place_pair(rng) if self.min_gap is not None else self._place_far(rng)
        for colour, shape, box in zip(colours, shapes, boxes, strict=True):
            objects.append(SceneObject(colour, shape, box))

        # Distractors: any colour but red and blue, any shape, not touching another object (given up after a few
        # tries, so a crowded image may have fewer).
        distractor_colours = list(_DISTRACTOR_COLOURS)
        for _ in range(self.num_distractors):
            colour = distractor_colours[int(rng.integers(len(distractor_colours)))]
            shape = int(rng.integers(self.num_shapes))
            for _ in range(20):
                side = int(rng.integers(self._min_px, self._max_px + 1))
                left, top = (int(v) for v in rng.integers(0, size - side + 1, size=2))
                box = (left, top, left + side, top + side)
                if all(not _touch(box, other.box) for other in objects):
                    objects.append(SceneObject(colour, self.shapes[shape], box))
                    break

        for obj in objects:
            palette = _PAIR_COLOURS.get(obj.colour) or _DISTRACTOR_COLOURS[obj.colour]
            rgb = rng.uniform(palette[0], palette[1]).astype(np.float32)
            left, top, right, bottom = obj.box
            mask = _shape_mask(obj.shape, right - left)
            region = image[top:bottom, left:right]
            region[mask] = rgb

        image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return Scene(image, label, objects)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        scene = self.scene(index)
        # (H, W, 3) uint8 -> (3, H, W) float, normalised
        tensor = torch.from_numpy(scene.image).permute(2, 0, 1).float().div_(255.0)
        mean = torch.tensor(RELATIONAL_MEAN).view(3, 1, 1)
        std = torch.tensor(RELATIONAL_STD).view(3, 1, 1)
        tensor = (tensor - mean) / std
        if self.transform is not None:
            tensor = self.transform(tensor)
        return tensor, scene.label

    @property
    def targets(self) -> list[int]:
        """The label of every sample, in order (generates only the labels' random draws)."""
        return [int(self._rng(i).integers(2)) for i in range(self.num_samples)]

    def _place_far(self, rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
        """Boxes of the red and the blue object anywhere, centres ``min_distance`` apart (rejection sampling)."""
        size, min_dist = self.image_size, self.min_distance * self.image_size
        for _ in range(1000):
            sides = rng.integers(self._min_px, self._max_px + 1, size=2)
            lefts = rng.integers(0, size - sides + 1)
            tops = rng.integers(0, size - sides + 1)
            centres = np.stack([lefts + sides / 2, tops + sides / 2], axis=1)
            boxes = [(int(x), int(y), int(x + s), int(y + s)) for x, y, s in zip(lefts, tops, sides, strict=True)]
            if np.hypot(*(centres[0] - centres[1])) >= min_dist and not _touch(boxes[0], boxes[1]):
                return boxes
        raise RuntimeError("could not place the red and blue objects; lower min_distance")  # excluded by __init__

    def _place_pair(self, rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
        """Boxes of the red and the blue object on opposite sides, ``min_gap`` pixels apart along a random axis."""
        size, gap = self.image_size, self.min_gap or 0
        sides = [int(v) for v in rng.integers(self._min_px, self._max_px + 1, size=2)]
        axis, red_first = int(rng.integers(2)), bool(rng.integers(2))
        first, second = sides if red_first else sides[::-1]
        low = int(rng.integers(0, size - first - second - gap + 1))  # along the axis: the first box's start
        high = int(rng.integers(low + first + gap, size - second + 1))  # and the second's
        starts = (low, high) if red_first else (high, low)
        boxes = []
        for side, start in zip(sides, starts, strict=True):
            across = int(rng.integers(0, size - side + 1))
            left, top = (start, across) if axis == 0 else (across, start)
            boxes.append((left, top, left + side, top + side))
        return boxes

    def __repr__(self) -> str:
        return (
            f"RelationalDataset(split={self.split!r}, num_samples={self.num_samples}, image_size={self.image_size}, "
            f"seed={self.seed}, shapes={self.shapes}, num_distractors={self.num_distractors}, "
            f"object_size={self.object_size}, min_distance={self.min_distance}, noise={self.noise}, "
            f"min_gap={self.min_gap}, relation={self.relation!r})"
        )


def _touch(a: tuple[int, int, int, int], b: tuple[int, int, int, int], margin: int = 2) -> bool:
    """Whether boxes ``a`` and ``b`` overlap or come closer than ``margin`` pixels."""
    return not (a[2] + margin <= b[0] or b[2] + margin <= a[0] or a[3] + margin <= b[1] or b[3] + margin <= a[1])


# ---------------------------------------------------------------------------------------------------------------------
# relational_seg: a segmentation dataset whose labels depend on a distant marker
# ---------------------------------------------------------------------------------------------------------------------

_MARKER_COLOURS = {
    "red": ((0.8, 0.0, 0.0), (1.0, 0.2, 0.2)),
    "green": ((0.0, 0.7, 0.0), (0.2, 0.95, 0.2)),
    "blue": ((0.0, 0.15, 0.8), (0.2, 0.35, 1.0)),
    "yellow": ((0.8, 0.8, 0.0), (1.0, 1.0, 0.2)),
    "magenta": ((0.8, 0.0, 0.8), (1.0, 0.2, 1.0)),
    "cyan": ((0.0, 0.8, 0.8), (0.2, 1.0, 1.0)),
}
_SEG_RULES = ("marker", "match", "same_colour")
_SEG_DEFAULT_NUM_SAMPLES = {"train": 4000, "val": 1000, "test": 1000}
SEG_IGNORE_INDEX = 255


class RelationalSegDataset(Dataset):
    """``relational_seg``: grey objects whose class is decided by a coloured marker far away from them.

    Every image shows ``num_blobs`` grey objects (random shapes, sizes and grey levels) and one small saturated
    marker, on a dark noisy background; the marker's centre is at least ``min_distance * image_size`` from every
    object's centre. The mask labels the background 0, the marker's pixels ``255`` (ignored: it is the cue, not a
    target) and every object pixel by ``rule``:

    - ``"marker"`` (default): all objects get class ``1 + c``, where c is the marker's colour (red, green, blue, ...,
      ``num_classes - 1`` colours, equally likely). Classes: ``background``, ``red``, ``green``, ...
    - ``"match"``: the marker is red; an object gets class 1 (``same``) if its shape is the marker's shape, else 2
      (``different``); each object is "same" with probability 1/2.
    - ``"same_colour"``: the marker is red or green, and so are all the objects of an image (one colour, drawn
      independently of the marker's); every object gets class 1 (``same``) when its colour is the marker's, else 2
      (``different``).

    Why local features cannot solve it: an object's look (shape, size, grey level) is drawn independently of its
    class, so a pixel's neighbourhood that does not reach the marker predicts an object's class no better than chance
    (1 / (num_classes - 1) for "marker", 1/2 for "match"); the background and the object/background boundary are
    local. The network has to carry the marker's colour (or shape) to every object, across at least
    ``min_distance`` of the image: what a GloRe unit does by pooling the map into graph nodes and projecting back.
    A check on 2000 training images, 45 s of CPU training each: a 3-layer conv net (receptive field about 15 px)
    reached val mIoU 0.34 (object classes 0.01-0.29 IoU), the same net with a global max-pool branch 0.87.

    With ``min_gap`` set (``"marker"`` or ``"same_colour"`` rule), the marker lies at one side of the image and every
    object at least ``min_gap`` pixels away from the marker's box along the same axis (x or y, drawn at random), so
    the argument is exact: a network whose output pixel sees at most ``min_gap + 1`` pixels along each axis predicts
    an object pixel the same way whatever the marker's colour, and with ``K`` equally likely marker colours it labels
    at most ``1 / K`` of the object pixels right, however long it trains (``"same_colour"``: K = 2).

    Images are generated in ``__getitem__`` from (seed, split, index) with numpy, so workers agree and splits never
    overlap; 64 x 64 images take well under a millisecond each. The marker's colour comes from a random stream of
    its own, so ``generate(index, colour=...)`` draws the same image with another marker colour.

    Args:
        split: "train", "val" or "test".
        transform: joint transform ``(image, masks, generator=None) -> (tensor, masks)`` applied to the RGB PIL
            image and the mask (``glore.data.transforms.segmentation``; a flip keeps the labels, a crop may cut the
            marker off); None gives the image normalised with ``RELATIONAL_MEAN`` and ``RELATIONAL_STD``.
        on_error: accepted for a uniform interface; generation cannot fail.
        num_samples: images in this split (default 4000 train, 1000 val and test).
        image_size: side of the square images (>= 32).
        seed: base seed.
        rule: "marker", "match" or "same_colour".
        num_classes: classes including the background: 3 to 7 for "marker" (2 to 6 marker colours); 3 for "match".
        num_blobs: (min, max) objects per image (1 to 6).
        blob_size: (min, max) side of an object as a fraction of ``image_size``.
        marker_size: side of the marker as a fraction of ``image_size``.
        min_distance: least distance from the marker's centre to any object's centre, as a fraction of the size.
        noise: standard deviation of the Gaussian pixel noise, on the [0, 1] scale.
        min_gap: when set (``"marker"`` and ``"same_colour"``), the marker sits at one side and the objects at least
            ``min_gap`` pixels from its box along one axis; ``min_distance`` is then not used.

    Samples are ``(image (3, H, W) float, mask (H, W) int64, {"id": "<split>/<index>", "size": (H, W)})``.
    """

    def __init__(
        self,
        split: str = "train",
        *,
        transform: Transform | None = None,
        on_error: str = "raise",
        num_samples: int | None = None,
        image_size: int = 64,
        seed: int = 0,
        rule: str = "marker",
        num_classes: int = 4,
        num_blobs: tuple[int, int] = (2, 3),
        blob_size: tuple[float, float] = (0.2, 0.3),
        marker_size: float = 0.15,
        min_distance: float = 0.35,
        noise: float = 0.05,
        min_gap: int | None = None,
    ) -> None:
        defaults = _SEG_DEFAULT_NUM_SAMPLES
        _init_generated(self, "relational_seg", split, transform, on_error, num_samples, defaults, image_size, 32, seed)
        if rule not in _SEG_RULES:
            raise ValueError(f"rule must be one of {_SEG_RULES}, got {rule!r}")
        self.rule = rule
        if rule in ("match", "same_colour"):
            self.num_classes = _check_int("num_classes", num_classes if num_classes != 4 else 3, 3, 3)
            self.classes = ["background", "same", "different"]
        else:
            self.num_classes = _check_int("num_classes", num_classes, 3, len(_MARKER_COLOURS) + 1)
            self.classes = ["background", *list(_MARKER_COLOURS)[: self.num_classes - 1]]
        if isinstance(num_blobs, (str, bytes)) or not hasattr(num_blobs, "__len__") or len(num_blobs) != 2:
            raise ValueError(f"num_blobs must be a pair (min, max), got {num_blobs!r}")
        lo_b, hi_b = (_check_int("num_blobs", v, 1, 6) for v in num_blobs)
        if lo_b > hi_b:
            raise ValueError(f"num_blobs must satisfy min <= max, got {num_blobs!r}")
        self.num_blobs = (lo_b, hi_b)
        if isinstance(blob_size, (str, bytes)) or not hasattr(blob_size, "__len__") or len(blob_size) != 2:
            raise ValueError(f"blob_size must be a pair (min, max) of fractions, got {blob_size!r}")
        lo_s, hi_s = (_check_float("blob_size", v, 0.08, 0.4) for v in blob_size)
        if lo_s > hi_s:
            raise ValueError(f"blob_size must satisfy min <= max, got {blob_size!r}")
        self.blob_size = (lo_s, hi_s)
        self.marker_size = _check_float("marker_size", marker_size, 0.08, 0.3)
        self.min_distance = _check_float("min_distance", min_distance, 0.0, 0.7)
        self.noise = _check_float("noise", noise, 0.0, 0.5)
        self.ignore_index = SEG_IGNORE_INDEX
        self._blob_px = (max(5, round(lo_s * self.image_size)), max(5, round(hi_s * self.image_size)))
        self._marker_px = max(5, round(self.marker_size * self.image_size))
        self.min_gap = None if min_gap is None else _check_int("min_gap", min_gap, 0)
        if self.min_gap is not None:
            if rule == "match":
                raise ValueError("min_gap is for rule='marker' or 'same_colour', got rule='match'")
            if self._marker_px + self.min_gap + self._blob_px[1] > self.image_size:
                raise ValueError(
                    f"min_gap={self.min_gap} leaves no room for a {self._marker_px} px marker and a "
                    f"{self._blob_px[1]} px object in {self.image_size} px; lower min_gap, marker_size or blob_size"
                )

    def __len__(self) -> int:
        return self.num_samples

    def _rng(self, index: int, stream: int = 0) -> np.random.Generator:
        # 10 + split code: a stream apart from RelationalDataset's for the same seed; stream 1 draws the colour.
        key = [self.seed, 10 + _SPLIT_CODE[self.split], index]
        return np.random.default_rng(key if stream == 0 else [*key, stream])

    def generate(self, index: int, colour: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The image (H, W, 3) uint8 and the mask (H, W) uint8 at ``index`` (deterministic).

        Args:
            index: in [0, len(self)).
            colour: the marker's colour instead of the drawn one (``"marker"`` rule; one of ``self.classes[1:]``);
                the rest of the image is the same as without, the objects' classes follow.

        Raises:
            IndexError: ``index`` is out of range.
        """
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"index must be an integer, got {type(index).__name__}")
        if not -self.num_samples <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} samples")
        index = int(index) % self.num_samples
        rng = self._rng(index)
        size = self.image_size
        image = np.full((size, size, 3), rng.uniform(0.0, 0.3), dtype=np.float32)
        if self.noise > 0:
            image += rng.normal(0.0, self.noise, size=(size, size, 3)).astype(np.float32)
        mask = np.zeros((size, size), dtype=np.uint8)

        colours = list(_MARKER_COLOURS)
        object_colour = None
        if self.rule in ("marker", "same_colour"):
            choices = self.classes[1:] if self.rule == "marker" else colours[:2]
            drawn = choices[int(self._rng(index, 1).integers(len(choices)))]
            if colour is not None and colour not in choices:
                raise ValueError(f"colour must be one of {choices}, got {colour!r}")
            colour = colour or drawn
            marker_shape = SHAPES[int(rng.integers(len(SHAPES)))]
            if self.rule == "same_colour":
                object_colour = colours[int(rng.integers(2))]
        else:
            if colour is not None:
                raise ValueError("colour: only the 'marker' and 'same_colour' rules draw a marker colour")
            colour = "red"
            marker_shape = SHAPES[int(rng.integers(3))]
        m = self._marker_px
        if self.rule == "marker":
            label = 1 + colours.index(colour)
        elif self.rule == "same_colour":
            label = 1 if object_colour == colour else 2
        if self.min_gap is not None:
            boxes, shapes = self._place_apart(rng)
            marker_box = boxes[0]
            blobs = [(box, shape, label) for box, shape in zip(boxes[1:], shapes, strict=True)]
        else:
            marker_box, blobs = self._place_around(rng, marker_shape)
            if self.rule != "match":
                blobs = [(box, shape, label) for box, shape, _ in blobs]
        mx, my = marker_box[:2]

        for box, shape, label in blobs:
            left, top, right, bottom = box
            region = _shape_mask(shape, right - left)
            if object_colour is None:  # grey
                image[top:bottom, left:right][region] = rng.uniform(0.55, 0.95)
            else:
                shade = _MARKER_COLOURS[object_colour]
                image[top:bottom, left:right][region] = rng.uniform(shade[0], shade[1]).astype(np.float32)
            mask[top:bottom, left:right][region] = label
        palette = _MARKER_COLOURS[colour]
        region = _shape_mask(marker_shape, m)
        image[my : my + m, mx : mx + m][region] = rng.uniform(palette[0], palette[1]).astype(np.float32)
        mask[my : my + m, mx : mx + m][region] = SEG_IGNORE_INDEX
        image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return image, mask

    def _place_around(
        self, rng: np.random.Generator, marker_shape: str
    ) -> tuple[tuple[int, int, int, int], list[tuple[tuple[int, int, int, int], str, int]]]:
        """The marker's box anywhere, and ``(box, shape, label)`` of objects ``min_distance`` from it."""
        size, m = self.image_size, self._marker_px
        mx, my = (int(v) for v in rng.integers(0, size - m + 1, size=2))
        marker_box = (mx, my, mx + m, my + m)
        marker_centre = np.array([mx + m / 2, my + m / 2])
        boxes = [marker_box]
        blobs: list[tuple[tuple[int, int, int, int], str, int]] = []
        count = int(rng.integers(self.num_blobs[0], self.num_blobs[1] + 1))
        for _ in range(count):
            for _ in range(50):
                side = int(rng.integers(self._blob_px[0], self._blob_px[1] + 1))
                left, top = (int(v) for v in rng.integers(0, size - side + 1, size=2))
                box = (left, top, left + side, top + side)
                far = np.hypot(*(np.array([left + side / 2, top + side / 2]) - marker_centre))
                if far >= self.min_distance * size and all(not _touch(box, other) for other in boxes):
                    break
            else:  # a crowded image gets fewer objects (at least the first always fits at the defaults)
                continue
            if self.rule != "match":
                shape, label = SHAPES[int(rng.integers(len(SHAPES)))], 0  # the label follows the marker's colour
            elif rng.integers(2):
                shape, label = marker_shape, 1
            else:
                others = [s for s in SHAPES[:3] if s != marker_shape]
                shape, label = others[int(rng.integers(len(others)))], 2
            boxes.append(box)
            blobs.append((box, shape, label))
        return marker_box, blobs

    def _place_apart(self, rng: np.random.Generator) -> tuple[list[tuple[int, int, int, int]], list[str]]:
        """The marker's box at one side, then objects' boxes and shapes ``min_gap`` from it along one axis."""
        size, m, gap = self.image_size, self._marker_px, self.min_gap or 0
        axis, flip = int(rng.integers(2)), bool(rng.integers(2))
        # Along the axis (before the flip): the marker in [0, reach), the objects from reach + gap on.
        start = int(rng.integers(0, size - m - gap - self._blob_px[1] + 1))
        spans = [(start, int(rng.integers(0, size - m + 1)), m)]  # (along, across, side)
        shapes: list[str] = []
        count = int(rng.integers(self.num_blobs[0], self.num_blobs[1] + 1))
        for _ in range(count):
            for _ in range(50):
                side = int(rng.integers(self._blob_px[0], self._blob_px[1] + 1))
                along = int(rng.integers(min(start + m + gap, size - side), size - side + 1))
                across = int(rng.integers(0, size - side + 1))
                box = (along, across, along + side, across + side)
                if all(not _touch(box, (a, c, a + s, c + s)) for a, c, s in spans[1:]):
                    break
            else:  # a crowded image gets fewer objects; the first always fits
                continue
            spans.append((along, across, side))
            shapes.append(SHAPES[int(rng.integers(len(SHAPES)))])
        boxes = []
        for along, across, side in spans:
            along = size - along - side if flip else along
            left, top = (along, across) if axis == 0 else (across, along)
            boxes.append((left, top, left + side, top + side))
        return boxes, shapes

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, object]]:
        image, mask = self.generate(index)
        meta = {"id": f"{self.split}/{int(index) % self.num_samples}", "size": (self.image_size, self.image_size)}
        if self.transform is None:
            # (H, W, 3) uint8 -> (3, H, W) float, normalised
            tensor = torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)
            mean = torch.tensor(RELATIONAL_MEAN).view(3, 1, 1)
            std = torch.tensor(RELATIONAL_STD).view(3, 1, 1)
            return (tensor - mean) / std, torch.from_numpy(mask).long(), meta
        from PIL import Image

        tensor, masks = self.transform(Image.fromarray(image), [mask])
        return tensor, masks[0].long(), meta

    def __repr__(self) -> str:
        return (
            f"RelationalSegDataset(split={self.split!r}, num_samples={self.num_samples}, "
            f"image_size={self.image_size}, seed={self.seed}, rule={self.rule!r}, num_classes={self.num_classes}, "
            f"num_blobs={self.num_blobs}, blob_size={self.blob_size}, marker_size={self.marker_size}, "
            f"min_distance={self.min_distance}, noise={self.noise}, min_gap={self.min_gap})"
        )


# ---------------------------------------------------------------------------------------------------------------------
# relational_video: a video dataset whose class relates the first frames to the last ones

_VIDEO_COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.95, 0.15, 0.15),
    "green": (0.15, 0.85, 0.2),
    "blue": (0.2, 0.3, 0.95),
    "yellow": (0.95, 0.9, 0.15),
}
_VIDEO_SPLIT_OFFSET = {"train": 0, "val": 1_000_003, "test": 2_000_006}


class RelationalVideoDataset(Dataset):
    """``relational_video``: is the square shown at the end the colour of the one shown at the start?

    Each clip of ``num_frames`` frames shows, on a dark noisy background, a coloured square during the first quarter
    of the frames (at least one) and a coloured square during the last quarter, at two places at least
    ``min_distance * image_size`` apart; a grey square wanders through the middle frames as a distractor. The label is
    1 (``same``) when the two colours are equal, else 0 (``different``); both are equally likely and the colours are
    drawn from ``num_colours`` colours.

    Why neither one frame nor one place can solve it: every frame shows at most one coloured square, and each square
    is far from the other, so the answer needs the start and the end of the clip, at two distant places, brought
    together: reasoning across time and space, what a GloRe unit over the (T, H, W) positions of a 3D network does.

    A network that sees one frame at a time before its global average pool (temporal kernels of 1, as the C2D
    baseline of Wang et al., Non-local Neural Networks, CVPR 2018) cannot solve it at all: its pooled features are
    a sum of a start term, an end term and a middle term, so its logit is ``u(first colour) + v(second colour)`` for
    every clip's placement, and with two colours ``logit(a, a) + logit(b, b) = logit(a, b) + logit(b, a)``: it is
    right on at most 3 of 4 clips, however long it trains.

    Clips are generated in ``__getitem__`` from (seed, split, index) with numpy: workers agree, splits never overlap.
    The label and the two colours come from one random stream and everything else from another, so
    ``clip(index, colours=...)`` draws the same clip with other colours.

    Args:
        split: "train", "val" or "test".
        transform: callable applied to the clip tensor (3, T, H, W) (must keep the label).
        on_error: accepted for a uniform interface; generation cannot fail.
        num_samples: clips in this split (default 2000 train, 500 val and test).
        num_frames: frames per clip (>= 4).
        image_size: side of the square frames (>= 16).
        seed: base seed.
        num_colours: colours the squares are drawn from (2 to 4).
        square_size: side of the squares as a fraction of ``image_size``.
        min_distance: least distance between the two coloured squares' centres, as a fraction of ``image_size``.
        noise: standard deviation of the Gaussian pixel noise, on the [0, 1] scale.

    Samples are ``(clip (3, T, H, W) float normalised with RELATIONAL_MEAN/STD, label, {"video": index, "view": 0})``.
    """

    def __init__(
        self,
        split: str = "train",
        *,
        transform: Transform | None = None,
        on_error: str = "raise",
        num_samples: int | None = None,
        num_frames: int = 8,
        image_size: int = 32,
        seed: int = 0,
        num_colours: int = 3,
        square_size: float = 0.25,
        min_distance: float = 0.45,
        noise: float = 0.05,
    ) -> None:
        defaults = {"train": 2000, "val": 500, "test": 500}
        name = "relational_video"
        _init_generated(self, name, split, transform, on_error, num_samples, defaults, image_size, 16, seed)
        self.num_frames = _check_int("num_frames", num_frames, 4)
        self.num_colours = _check_int("num_colours", num_colours, 2, len(_VIDEO_COLOURS))
        self.square_size = _check_float("square_size", square_size, 0.1, 0.4)
        self.min_distance = _check_float("min_distance", min_distance, 0.0, 0.7)
        self.noise = _check_float("noise", noise, 0.0, 0.5)
        side = max(2, int(round(self.square_size * self.image_size)))
        reach = (self.image_size - side) * math.sqrt(2)
        if self.min_distance * self.image_size > reach:
            raise ValueError(
                f"min_distance: {self.min_distance} of the image cannot fit two squares of {self.square_size}; "
                "lower min_distance or square_size"
            )
        self.side = side
        self.classes = ["different", "same"]
        self.num_classes = 2
        self.num_views = 1

    def __len__(self) -> int:
        return self.num_samples

    def _place(self, rng: np.random.Generator, avoid: tuple[int, int] | None) -> tuple[int, int]:
        high = self.image_size - self.side
        for _ in range(1000):
            y, x = (int(v) for v in rng.integers(0, high + 1, size=2))
            if avoid is None or math.dist((y, x), avoid) >= self.min_distance * self.image_size:
                return y, x
        raise RuntimeError("relational_video: no place found for the second square")  # excluded by __init__

    def label(self, index: int) -> int:
        """The label of clip ``index`` (without drawing the clip)."""
        return int(self._rng(index).integers(0, 2))

    def _rng(self, index: int, stream: int = 0) -> np.random.Generator:
        """Stream 0 draws the label and the colours, stream 1 everything else."""
        key = [self.seed, _VIDEO_SPLIT_OFFSET[self.split], index]
        return np.random.default_rng(key if stream == 0 else [*key, stream])

    def clip(self, index: int, colours: tuple[int, int] | None = None) -> tuple[np.ndarray, int]:
        """The clip (T, H, W, 3) float in [0, 1] and its label at ``index`` (deterministic).

        Args:
            index: in [0, len(self)).
            colours: the start and the end square's colour indices (in ``range(num_colours)``) instead of the drawn
                ones; the rest of the clip is the same as without, the label follows.
        """
        if not 0 <= index < self.num_samples:
            raise IndexError(f"index {index} out of range for {self.num_samples} clips")
        pair_rng, rng = self._rng(index), self._rng(index, 1)
        same = int(pair_rng.integers(0, 2))
        palette = list(_VIDEO_COLOURS.values())[: self.num_colours]
        first = int(pair_rng.integers(0, self.num_colours))
        second = first if same else int((first + pair_rng.integers(1, self.num_colours)) % self.num_colours)
        if colours is not None:
            if len(colours) != 2 or any(c not in range(self.num_colours) for c in colours):
                raise ValueError(f"colours must be two indices in [0, {self.num_colours}), got {colours!r}")
            first, second = (int(c) for c in colours)
            same = int(first == second)
        t, s, side = self.num_frames, self.image_size, self.side
        quarter = max(1, t // 4)
        clip = np.clip(0.1 + rng.normal(0.0, self.noise, size=(t, s, s, 3)), 0.0, 1.0)  # (T, H, W, 3)
        start = self._place(rng, None)
        end = self._place(rng, start)
        for frame in range(quarter):
            clip[frame, start[0] : start[0] + side, start[1] : start[1] + side] = palette[first]
            clip[t - 1 - frame, end[0] : end[0] + side, end[1] : end[1] + side] = palette[second]
        grey = rng.integers(0, s - side + 1, size=2)
        for frame in range(quarter, t - quarter):  # a distractor wandering through the middle frames
            grey = np.clip(grey + rng.integers(-2, 3, size=2), 0, s - side)
            clip[frame, grey[0] : grey[0] + side, grey[1] : grey[1] + side] = 0.5
        return clip, same

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, dict[str, int]]:
        clip, same = self.clip(index)
        tensor = torch.from_numpy(clip.astype(np.float32)).permute(3, 0, 1, 2)  # (T, H, W, 3) -> (3, T, H, W)
        mean = torch.tensor(RELATIONAL_MEAN).view(3, 1, 1, 1)
        std = torch.tensor(RELATIONAL_STD).view(3, 1, 1, 1)
        tensor = (tensor - mean) / std
        if self.transform is not None:
            tensor = self.transform(tensor)
        return tensor, same, {"video": index, "view": 0}
