"""Look inside trained GloRe units: projection maps, node assignment, learned adjacency, residual size.

``glore visualize CHECKPOINT --images FILES...`` writes one PNG a unit and image; :func:`unit_views`
returns the same arrays for use in Python.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from glore.layers import GloRe

__all__ = ["UnitViews", "glore_units", "unit_views", "render_unit_figure", "visualize_model"]


@dataclass
class UnitViews:
    """What one GloRe unit does to a batch of images, as numpy arrays at the unit's feature resolution.

    Attributes:
        projection: (n, N, h, w) projection maps B, one per node.
        assignment: (n, h, w) index of the node whose projection weight is largest at each position.
        adjacency: (N, N) learned node-wise GCN weight A_g of the first graph convolution.
        residual_ratio: (n, h, w) norm over channels of what the unit adds, over the norm of its input.
        node_mass: (n, N) total projection weight of each node over the positions (its sum of |B|).
    """

    projection: np.ndarray
    assignment: np.ndarray
    adjacency: np.ndarray
    residual_ratio: np.ndarray
    node_mass: np.ndarray

    def node_order(self, index: int) -> np.ndarray:
        """Nodes of image ``index`` by decreasing total mass."""
        return np.argsort(-self.node_mass[index], kind="stable")


def glore_units(model: nn.Module) -> list[tuple[str, GloRe]]:
    """The GloRe units of ``model`` with their qualified names, in forward-definition order."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, GloRe)]


def assignment_map(projection: torch.Tensor) -> torch.Tensor:
    """Index of the strongest node at each position: (n, N, *spatial) -> (n, *spatial)."""
    return projection.argmax(dim=1)


def residual_ratio(unit: GloRe, x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Per-position size of what ``unit`` adds to ``x`` relative to ``x``: (n, C, *spatial) -> (n, *spatial)."""
    added = unit.residual(x)
    return added.norm(dim=1) / x.norm(dim=1).clamp_min(eps)


def frames_side_by_side(maps: torch.Tensor) -> torch.Tensor:
    """Lay the frames of video maps side by side: (..., t, h, w) -> (..., h, t * w)."""
    *lead, t, h, w = maps.shape
    return maps.movedim(-3, -2).reshape(*lead, h, t * w)  # (..., h, t, w) -> (..., h, t*w)


@torch.no_grad()
def views_from_input(unit: GloRe, x: torch.Tensor) -> UnitViews:
    """Compute every view of ``unit`` for its input ``x``: (n, C, h, w) images, or (n, C, t, h, w) video features,
    whose maps are then laid out frame by frame side by side, (h, t * w)."""
    if x.dim() not in (4, 5):
        raise ValueError(
            "visualisation needs image (n, C, h, w) or video (n, C, t, h, w) features at the unit, "
            f"got {tuple(x.shape)}"
        )
    projection = unit.projection(x).float()  # (n, N, h, w) or (n, N, t, h, w)
    ratio = residual_ratio(unit, x).float()  # (n, h, w) or (n, t, h, w)
    if x.dim() == 5:
        projection, ratio = frames_side_by_side(projection), frames_side_by_side(ratio)
    adjacency = unit.gcn[0].node_conv.weight.squeeze(-1).float()  # (N, N, 1) -> (N, N)
    return UnitViews(
        projection=projection.cpu().numpy(),
        assignment=assignment_map(projection).cpu().numpy(),
        adjacency=adjacency.cpu().numpy(),
        residual_ratio=ratio.cpu().numpy(),
        node_mass=projection.abs().flatten(2).sum(-1).cpu().numpy(),  # (n, N, h*w) -> (n, N)
    )


@torch.no_grad()
def unit_views(model: nn.Module, images: torch.Tensor, unit: str | None = None) -> dict[str, UnitViews]:
    """Run ``model`` on ``images`` and return the views of each GloRe unit (or of the one named ``unit``).

    Args:
        model: a network with GloRe units; it is put in eval mode.
        images: (n, 3, H, W) normalised input batch.
        unit: the qualified name of one unit (``layer3.glore1``); every unit when None.

    Returns:
        Unit name -> its :class:`UnitViews`.

    Raises:
        ValueError: the model has no GloRe units, or none named ``unit``.
    """
    units = glore_units(model)
    if not units:
        raise ValueError("the model has no GloRe units: there is nothing to visualise")
    if unit is not None:
        names = [name for name, _ in units]
        if unit not in names:
            raise ValueError(f"unit must name one of the model's GloRe units {names}, got {unit!r}")
        units = [(name, module) for name, module in units if name == unit]
    captured: dict[str, torch.Tensor] = {}

    def capture(name: str, args: tuple[Any, ...]) -> None:
        x = args[0]
        # A DPN unit (DualPathGloRe) takes the (resid, dense) pair and acts on the residual path only.
        captured[name] = (x[0] if isinstance(x, (tuple, list)) else x).detach()

    hooks = [
        module.register_forward_pre_hook(lambda _m, args, name=name: capture(name, args)) for name, module in units
    ]
    model.eval()
    try:
        model(images)
    finally:
        for hook in hooks:
            hook.remove()
    return {name: views_from_input(module, captured[name]) for name, module in units}


def _upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    # (k, h, w) -> (k, H, W), bilinear
    tensor = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32))[None]
    return F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)[0].numpy()


def render_unit_figure(
    image: np.ndarray,
    views: UnitViews,
    index: int,
    unit_name: str,
    path: str | Path,
    *,
    max_nodes: int = 16,
    dpi: int = 100,
    figsize: tuple[float, float] = (16.0, 9.0),
) -> Path:
    """Draw one image's views of one unit into a PNG file of ``figsize * dpi`` pixels.

    Left: the image and the ``max_nodes`` heaviest nodes' projection maps over it (nodes by decreasing mass).
    Right: the node-assignment map, the learned adjacency and the residual size over the image.

    Args:
        image: (H, W, 3) float RGB in [0, 1].
        views: the unit's views for the batch the image belongs to.
        index: the image's index in that batch.
        unit_name: shown in the titles.
        path: the PNG to write.
        max_nodes: how many projection maps to draw.
        dpi: resolution of the PNG.
        figsize: size in inches.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height, width = image.shape[:2]
    order = views.node_order(index)[:max_nodes]
    maps = _upsample(views.projection[index][order], (height, width))  # (k, H, W)
    num_nodes = views.projection.shape[1]
    columns = 4
    rows = max(3, int(np.ceil((len(order) + 1) / columns)))

    fig = plt.figure(figsize=figsize, dpi=dpi)
    grid = fig.add_gridspec(rows, columns + 3, width_ratios=[1] * columns + [0.15, 1.4, 0.1], hspace=0.45)
    fig.suptitle(
        f"GloRe unit {unit_name}: {num_nodes} nodes, projection maps of the {len(order)} heaviest", fontsize=12
    )

    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(image)
    ax.set_title("input", fontsize=8)
    ax.axis("off")
    for slot, (node, node_map) in enumerate(zip(order, maps, strict=True), start=1):
        ax = fig.add_subplot(grid[slot // columns, slot % columns])
        ax.imshow(image)
        ax.imshow(node_map, cmap="jet", alpha=0.5)
        ax.set_title(f"node {node}: [{node_map.min():.2g}, {node_map.max():.2g}]", fontsize=7)
        ax.axis("off")

    ax = fig.add_subplot(grid[0, columns + 1])
    assignment = _upsample(views.assignment[index][None].astype(np.float32), (height, width))[0]
    assignment = np.rint(assignment).astype(int)
    ax.imshow(image)
    ax.imshow(assignment, cmap="tab20", alpha=0.6, vmin=0, vmax=max(num_nodes - 1, 1), interpolation="nearest")
    used = np.unique(views.assignment[index])
    ax.set_title(f"node assignment (argmax of B): {len(used)} of {num_nodes} nodes win somewhere", fontsize=8)
    ax.axis("off")

    ax = fig.add_subplot(grid[1, columns + 1])
    adjacency = views.adjacency
    bound = float(np.abs(adjacency).max()) or 1.0
    shown = ax.imshow(adjacency, cmap="RdBu_r", vmin=-bound, vmax=bound)
    ax.set_title(
        f"learned adjacency A_g (row: to node, column: from node): [{adjacency.min():.2g}, {adjacency.max():.2g}]",
        fontsize=8,
    )
    ax.tick_params(labelsize=6)
    fig.colorbar(shown, cax=fig.add_subplot(grid[1, columns + 2]))

    ax = fig.add_subplot(grid[2, columns + 1])
    ratio = _upsample(views.residual_ratio[index][None], (height, width))[0]
    ax.imshow(image)
    shown = ax.imshow(ratio, cmap="magma", alpha=0.6)
    ax.set_title(
        f"|added| / |input| per pixel: [{views.residual_ratio[index].min():.2g}, "
        f"{views.residual_ratio[index].max():.2g}]",
        fontsize=8,
    )
    ax.axis("off")
    fig.colorbar(shown, cax=fig.add_subplot(grid[2, columns + 2]))

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def denormalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(n, 3, H, W) normalised tensor -> (n, H, W, 3) float RGB in [0, 1]."""
    mean_t = torch.tensor(mean, dtype=images.dtype).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=images.dtype).view(1, -1, 1, 1)
    # (n, 3, H, W) -> (n, H, W, 3)
    return (images * std_t + mean_t).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()


def visualize_model(
    model: nn.Module,
    images: torch.Tensor,
    out_dir: str | Path,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    unit: str | None = None,
    names: Sequence[str] | None = None,
    max_nodes: int = 16,
) -> list[Path]:
    """Write one figure per image and unit into ``out_dir``; returns the paths.

    Args:
        model: a network with GloRe units.
        images: (n, 3, H, W) normalised batch, or (n, 3, T, H, W) clips (drawn as their frames side by side).
        out_dir: where the PNG files go.
        mean: the normalisation mean, to show the images.
        std: the normalisation std.
        unit: one unit's name, or every unit.
        names: a stem per image for the file names (``image0``... by default).
        max_nodes: projection maps drawn per figure.
    """
    views = unit_views(model, images, unit)
    shown = denormalize(frames_side_by_side(images) if images.dim() == 5 else images, mean, std)
    names = list(names) if names is not None else [f"image{i}" for i in range(len(images))]
    paths = []
    for unit_name, unit_view in views.items():
        for index, stem in enumerate(names):
            target = Path(out_dir) / f"{stem}_{unit_name.replace('.', '-')}.png"
            paths.append(render_unit_figure(shown[index], unit_view, index, unit_name, target, max_nodes=max_nodes))
    return paths


def load_images(task: Any, paths: Sequence[str]) -> list[torch.Tensor]:
    """Each file as the network's evaluation input, by the task's own preprocessing (``Task.load_input``): (1, 3,
    H, W) for an image, the first test view (1, 3, T, H, W) of a video."""
    return [task.load_input(path).inputs[:1] for path in paths]


def _validation_samples(config: Mapping[str, Any], count: int) -> torch.Tensor:
    from glore.engine import load_config
    from glore.engine.task import build_task

    task = build_task(load_config(config))
    dataset = task.build_dataset(config["data"]["val_split"] or config["data"]["train_split"], train=False)
    return torch.stack([dataset[i][0] for i in range(min(count, len(dataset)))])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``glore visualize``."""
    parser.add_argument("checkpoint", help="a checkpoint written by glore train (last.pt or best.pt)")
    parser.add_argument("--images", nargs="+", default=None, metavar="FILE", help="images to look at")
    parser.add_argument(
        "--samples",
        type=int,
        default=None,
        metavar="K",
        help="without --images: the first K validation samples of the checkpoint's data (default 4)",
    )
    parser.add_argument("--unit", default=None, help="one unit's name (e.g. layer3.glore1); every unit by default")
    parser.add_argument("--out", default=None, help="output folder (default: <checkpoint folder>/visualize)")
    parser.add_argument("--max-nodes", type=int, default=16, help="projection maps drawn per figure")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``glore visualize``."""
    from glore.cli import output_folder
    from glore.engine import load_checkpoint, load_model

    if args.samples is not None and args.samples < 1:
        raise ValueError(f"--samples: expected a positive number of validation images, got {args.samples}")
    if args.max_nodes < 1:
        raise ValueError(f"--max-nodes: expected a positive number of projection maps, got {args.max_nodes}")
    if args.images and args.samples is not None:
        raise ValueError("--samples counts validation images; with --images it has nothing to count: give one")
    out = output_folder(args.out if args.out else Path(args.checkpoint).parent / "visualize", "--out")
    state = load_checkpoint(args.checkpoint)
    model = load_model(args.checkpoint)
    names_of_units = [name for name, _ in glore_units(model)]
    if not names_of_units:
        raise ValueError(f"checkpoint {args.checkpoint!r} has no GloRe units: nothing to visualise")
    if args.unit is not None and args.unit not in names_of_units:
        raise ValueError(f"--unit: the network has no GloRe unit {args.unit!r}; its units are {names_of_units}")
    from glore.tools.predict import checkpoint_task

    task = checkpoint_task(state, args.checkpoint)
    mean, std = task.input_normalization()
    if args.images:  # one at a time: files may differ in size
        batches = load_images(task, args.images)
        names = [[Path(p).stem] for p in args.images]
    else:
        batches = [_validation_samples(state["config"], args.samples or 4)]
        names = [[f"val{i}" for i in range(len(batches[0]))]]
    paths = []
    for images, stems in zip(batches, names, strict=True):
        paths += visualize_model(
            model, images, out, mean=mean, std=std, unit=args.unit, names=stems, max_nodes=args.max_nodes
        )
    for path in paths:
        print(path)
    return 0
