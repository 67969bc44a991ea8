"""``relational``: a built-in image dataset whose label is a relation between two objects placed far apart.

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

Images are generated on the fly in ``__getitem__`` with numpy, deterministically from (seed, split, index), so every
DataLoader worker produces the same image for the same index and ``train``, ``val`` and ``test`` never overlap.
"""

from __future__ import annotations

import math
import numbers
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from ._base import Transform, check_on_error, check_split

__all__ = ["RelationalDataset", "Scene", "SHAPES", "RELATIONAL_MEAN", "RELATIONAL_STD"]

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
        label: 1 if the red and blue objects have the same shape, else 0.
        objects: the red object, the blue object, then the distractors.
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
    ) -> None:
        self.split = check_split(split, _SPLITS, "relational")
        self.transform = transform
        self.on_error = check_on_error(on_error)
        if num_samples is None:
            num_samples = _DEFAULT_NUM_SAMPLES[self.split]
        self.num_samples = _check_int("num_samples", num_samples, 1)
        self.image_size = _check_int("image_size", image_size, 32)
        self.seed = _check_int("seed", seed, 0)
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

    @property
    def num_classes(self) -> int:
        """The number of classes, 2."""
        return len(self.classes)

    def __len__(self) -> int:
        return self.num_samples

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, _SPLIT_CODE[self.split], index])

    def scene(self, index: int) -> Scene:
        """Generate the image at ``index`` with its label and objects (deterministic).

        Args:
            index: in [0, len(self)).

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

        label = int(rng.integers(2))
        red_shape = int(rng.integers(self.num_shapes))
        if label:
            blue_shape = red_shape
        else:  # any other shape, uniformly
            blue_shape = (red_shape + 1 + int(rng.integers(self.num_shapes - 1))) % self.num_shapes

        level = rng.uniform(0.0, 0.35)
        image = np.full((size, size, 3), level, dtype=np.float32)
        if self.noise > 0:
            image += rng.normal(0.0, self.noise, size=(size, size, 3)).astype(np.float32)

        objects: list[SceneObject] = []
        # The pair: rejection-sample positions until the centres are far enough apart.
        min_dist = self.min_distance * size
        for _ in range(1000):
            sides = rng.integers(self._min_px, self._max_px + 1, size=2)
            lefts = rng.integers(0, size - sides + 1)
            tops = rng.integers(0, size - sides + 1)
            centres = np.stack([lefts + sides / 2, tops + sides / 2], axis=1)
            boxes = [(int(x), int(y), int(x + s), int(y + s)) for x, y, s in zip(lefts, tops, sides, strict=True)]
            if np.hypot(*(centres[0] - centres[1])) >= min_dist and not _touch(boxes[0], boxes[1]):
                break
        else:  # pragma: no cover - min_distance is checked against the image size in __init__
            raise RuntimeError("could not place the red and blue objects; lower min_distance")
        for colour, shape, box in zip(("red", "blue"), (red_shape, blue_shape), boxes, strict=True):
            objects.append(SceneObject(colour, self.shapes[shape], box))

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

    def __repr__(self) -> str:
        return (
            f"RelationalDataset(split={self.split!r}, num_samples={self.num_samples}, image_size={self.image_size}, "
            f"seed={self.seed}, shapes={self.shapes}, num_distractors={self.num_distractors}, "
            f"object_size={self.object_size}, min_distance={self.min_distance}, noise={self.noise})"
        )


def _touch(a: tuple[int, int, int, int], b: tuple[int, int, int, int], margin: int = 2) -> bool:
    """Whether boxes ``a`` and ``b`` overlap or come closer than ``margin`` pixels."""
    return not (a[2] + margin <= b[0] or b[2] + margin <= a[0] or a[3] + margin <= b[1] or b[3] + margin <= a[1])
