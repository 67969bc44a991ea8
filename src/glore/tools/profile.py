"""``glore profile``: parameters and GFLOPs of a network, per stage, and the paper's ImageNet table beside them.

GFLOPs follow the paper: billions of multiply-adds. They are counted with ``torch.utils.flop_counter.
FlopCounterMode``, which sees every matrix product the network runs, the GloRe unit's batched products included
(a profiler that only hooks nn.Conv/nn.Linear modules misses them). FlopCounterMode reports FLOPs = 2 x MACs
for convolutions and matrix products, so its counts are halved. Elementwise work (norms, activations, pooling,
residual adds) is not counted, as in the paper. The network is built on the ``meta`` device: shapes only, no
memory and no arithmetic, so even ResNet-200 profiles in about a second.

Without an input size a network is profiled at its default config's (``glore.models.resolve_data_config``):
224 x 224 for the ImageNet networks, a 1024 x 2048 Cityscapes image for the FCNs, 8 x 224 x 224 clips for the
Kinetics networks.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..layers import GloRe
from ..models import create_model, get_default_cfg, list_models, resolve_data_config
from ..models._builder import _model_class
from ..models._registry import get_model_entrypoint
from ..models._spec import STAGE_MODULES, STAGES

__all__ = ["Profile", "PAPER_TABLE", "PaperRow", "profile_model", "profile", "paper_rows", "add_arguments", "run"]


@dataclass
class Profile:
    """Parameters and multiply-adds of one network for one input size.

    Attributes:
        name: the registered model name.
        input_size: the input's (H, W), or (T, H, W) for a video network.
        params: parameters per part (``stem``, ``res2``..``res5``, ``head``; a segmentation network's ``head``
            leaves out its context unit, reported as ``unit``, and its auxiliary head is ``aux``).
        macs: multiply-adds per part for one image.
        glore_params: parameters of the GloRe units (included in their stages).
        glore_macs: multiply-adds of the GloRe units for one image (included in their stages).
    """

    name: str
    input_size: tuple[int, ...]
    params: dict[str, int] = field(default_factory=dict)
    macs: dict[str, int] = field(default_factory=dict)
    glore_params: int = 0
    glore_macs: int = 0

    @property
    def total_params(self) -> int:
        """All parameters."""
        return sum(self.params.values())

    @property
    def total_macs(self) -> int:
        """All multiply-adds for one image."""
        return sum(self.macs.values())


def _input_shape(model: nn.Module, input_size: int | Sequence[int] | None) -> tuple[int, ...]:
    """(H, W) for an image network, (T, H, W) for a video one, as the network's default config says: None is its
    default input, an int side keeps its number of frames."""
    default = tuple(resolve_data_config(model)["input_size"][1:])  # (H, W) or (T, H, W)
    video = len(default) == 3
    if input_size is None:
        return default
    if isinstance(input_size, int):
        size: tuple[int, ...] = (*default[:-2], input_size, input_size)
    else:
        size = tuple(int(s) for s in input_size)
    expected = "a side or (T, H, W) (a video network)" if video else "a side or (H, W)"
    if len(size) != len(default) or min(size) < 1:
        raise ValueError(f"input_size must be {expected} of positive ints, got {input_size!r}")
    return size


def _is_segmentation(model: nn.Module) -> bool:
    """A segmentation network (``glore.models.fcn.FCN``): a ``backbone`` with stages, a ``head`` and an ``aux_head``."""
    return isinstance(getattr(model, "backbone", None), nn.Module) and hasattr(model, "aux_head")


def profile_model(model: nn.Module, input_size: int | Sequence[int] | None = None, *, name: str = "") -> Profile:
    """Count the parameters and multiply-adds of ``model`` for one ``input_size`` image or clip, per stage.

    The model may live on any device; on ``meta`` nothing is computed. Parts are the stem (everything before
    ``layer1``), the stages ``layer1..layer4`` (reported as res2..res5) and the head (pooling and classifier,
    plus a final norm where there is one). For a segmentation network (an FCN) the stages are its backbone's,
    ``head`` is the main head without its context unit, ``unit`` that unit (GloRe or NonLocal; absent for a plain
    head) and ``aux`` the auxiliary head, which is run too; the final bilinear upsampling has no products.

    Args:
        model: a network with ``layer1..layer4`` (glore's, or torchvision-structured).
        input_size: the image side, or (H, W); for a video network (T, H, W), or a side (T from the network's
            default config). None: the network's default config's input (``model.default_cfg``).
        name: a label for the result.

    Returns:
        The :class:`Profile`.
    """
    segmentation = _is_segmentation(model)
    backbone = model.backbone if segmentation else model
    prefix = "backbone." if segmentation else ""
    size = _input_shape(model, input_size)
    param = next(model.parameters())
    x = torch.empty(1, int(getattr(backbone.conv1, "in_channels", 3)), *size, device=param.device, dtype=param.dtype)
    counter = FlopCounterMode(display=False)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), counter:
            if segmentation and model.aux_head is not None:
                model(x, aux=True)
            else:
                model(x)
    finally:
        model.train(was_training)
    # Keys are module paths rooted at the class name: "ResNet.layer3", "ResNet.layer3.glore1".
    counts = {key: sum(ops.values()) for key, ops in counter.get_flop_counts().items()}
    root = type(model).__name__
    stage_names = {STAGE_MODULES[s]: s for s in STAGES}
    result = Profile(name=name or root, input_size=size)

    def flops(path: str) -> int:
        return counts.get(f"{root}.{path}", 0)

    def params(path: str) -> int:
        return sum(p.numel() for p in model.get_submodule(path).parameters())

    unit_paths = [n for n, m in model.named_modules() if isinstance(m, GloRe)]
    # FLOPs = 2 x multiply-adds for convolutions and matrix products.
    total = counter.get_total_flops() // 2
    result.macs = {"stem": 0, **{s: flops(prefix + m) // 2 for m, s in stage_names.items()}}
    result.params = {"stem": 0, **{s: params(prefix + m) for m, s in stage_names.items()}}
    if segmentation:
        unit = "head.unit" if not isinstance(model.head.unit, nn.Identity) else None
        result.macs["head"] = (flops("head") - (flops(unit) if unit else 0)) // 2
        result.params["head"] = params("head") - (params(unit) if unit else 0)
        if unit:
            result.macs["unit"], result.params["unit"] = flops(unit) // 2, params(unit)
        if model.aux_head is not None:
            result.macs["aux"], result.params["aux"] = flops("aux_head") // 2, params("aux_head")
    else:
        heads = [n for n, _ in model.named_children() if n not in stage_names and n in _HEAD]
        result.macs["head"] = sum(flops(n) for n in heads) // 2
        result.params["head"] = sum(params(n) for n in heads)
    result.macs["stem"] = total - sum(result.macs.values())
    result.params["stem"] = sum(p.numel() for p in model.parameters()) - sum(result.params.values())
    result.glore_macs = sum(flops(p) for p in unit_paths) // 2
    result.glore_params = sum(params(path) for path in unit_paths)
    return result


# Modules after the last stage; everything else outside layer1..layer4 counts as the stem.
_HEAD = ("final_norm", "avgpool", "global_pool", "fc", "classifier", "head")


def _takes(name: str, option: str) -> bool:
    """Whether the network class of model ``name`` has the architecture option ``option``."""
    import inspect

    cls = _model_class(get_model_entrypoint(name))
    return cls is not None and option in inspect.signature(cls.__init__).parameters


def profile(
    name: str,
    *,
    glore: Any = None,
    glore_args: Mapping[str, Any] | None = None,
    input_size: int | Sequence[int] | None = None,
    **kwargs: Any,
) -> Profile:
    """Build ``name`` on the meta device (no memory, no arithmetic) and profile it (see :func:`profile_model`)."""
    with torch.device("meta"):
        model = create_model(name, glore=glore, glore_args=glore_args, **kwargs)
    return profile_model(model, input_size, name=name)


# ----------------------------------------------------------------------------------------------------------------
# The paper's table.


@dataclass(frozen=True)
class PaperRow:
    """One row of the paper's ImageNet table (Chen et al. 2019, Table 3): what it reports and how to build it."""

    network: str
    model: str
    res3: int
    res4: int
    gflops: float
    params_m: float
    top1: float

    @property
    def spec(self) -> dict[str, int] | None:
        """The insertion spec of the row: ``{"res3": 2, "res4": 3}`` for "+2 +3"."""
        spec = {k: v for k, v in (("res3", self.res3), ("res4", self.res4)) if v}
        return spec or None

    @property
    def method(self) -> str:
        """ "Baseline", "GloRe +3" or "GloRe +2 +3"."""
        if not self.spec:
            return "Baseline"
        return "GloRe " + " ".join(f"+{v}" for v in (self.res3, self.res4) if v)


# Read from the OCR of shared/seed/: "52" is 5.2, "314M" 31.4M, "28. 1M" 28.1M, "443M" 44.3M and "67. ™M" 67.7M
# (the GFLOPs column has one decimal everywhere, the params column one decimal and an M).
PAPER_TABLE: tuple[PaperRow, ...] = (
    PaperRow("ResNet-50", "resnet50", 0, 0, 4.0, 25.6, 76.2),
    PaperRow("ResNet-50", "resnet50", 0, 3, 5.2, 30.5, 78.4),
    PaperRow("ResNet-50", "resnet50", 2, 3, 6.0, 31.4, 78.2),
    PaperRow("SE-ResNet-50", "seresnet50", 0, 0, 4.0, 28.1, 77.2),
    PaperRow("SE-ResNet-50", "seresnet50", 0, 3, 5.2, 33.0, 78.7),
    PaperRow("ResNet-200", "resnet200", 0, 0, 15.0, 64.6, 78.3),
    PaperRow("ResNet-200", "resnet200", 0, 3, 16.2, 69.7, 79.4),
    PaperRow("ResNet-200", "resnet200", 2, 3, 16.9, 70.6, 79.7),
    PaperRow("ResNeXt-101 (32x4d)", "resnext101_32x4d", 0, 0, 8.0, 44.3, 78.8),
    PaperRow("ResNeXt-101 (32x4d)", "resnext101_32x4d", 2, 3, 9.9, 50.3, 79.8),
    PaperRow("DPN-98", "dpn98", 0, 0, 11.7, 61.7, 79.8),
    PaperRow("DPN-98", "dpn98", 2, 3, 13.6, 67.7, 80.2),
    PaperRow("DPN-131", "dpn131", 0, 0, 16.0, 79.5, 80.1),
    PaperRow("DPN-131", "dpn131", 2, 3, 17.9, 85.5, 80.3),
)


def paper_rows(
    *, order: str = "direct", preact: bool = False, glore_args: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """glore's counts for every row of the paper's table beside the paper's, with relative differences.

    Args:
        order: the units' product order; the paper counted the direct order.
        preact: build the ResNet-family rows pre-activation (the paper's MXNet networks).
        glore_args: further unit options (``num_nodes``, ``num_state``).

    Returns:
        One dict a row: ``network, method, res3, res4, paper_gflops, gflops, gflops_diff, paper_params_m,
        params_m, params_diff, top1`` (differences relative to the paper's figure).
    """
    rows = []
    for row in PAPER_TABLE:
        kwargs: dict[str, Any] = {"preact": True} if preact and _takes(row.model, "preact") else {}
        args = {"order": order, **(glore_args or {})} if row.spec else None
        prof = profile(row.model, glore=row.spec, glore_args=args, **kwargs)
        gflops, params_m = prof.total_macs / 1e9, prof.total_params / 1e6
        rows.append(
            {
                "network": row.network,
                "method": row.method,
                "res3": row.res3,
                "res4": row.res4,
                "paper_gflops": row.gflops,
                "gflops": gflops,
                "gflops_diff": gflops / row.gflops - 1,
                "paper_params_m": row.params_m,
                "params_m": params_m,
                "params_diff": params_m / row.params_m - 1,
                "top1": row.top1,
            }
        )
    return rows


# ----------------------------------------------------------------------------------------------------------------
# Printing.


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*header)] + [fmt.format(*r) for r in rows])


def format_profile(prof: Profile, *, markdown: bool = False) -> str:
    """The per-stage table of one profile."""
    rows = [[part, f"{prof.params[part] / 1e6:.3f}", f"{prof.macs[part] / 1e9:.3f}"] for part in prof.params]
    rows.append(["total", f"{prof.total_params / 1e6:.3f}", f"{prof.total_macs / 1e9:.3f}"])
    if prof.glore_params:
        rows.append(["(GloRe units)", f"{prof.glore_params / 1e6:.3f}", f"{prof.glore_macs / 1e9:.3f}"])
    size = "x".join(str(s) for s in prof.input_size)
    return f"{prof.name}, input {size}\n" + _table(["part", "params (M)", "GFLOPs"], rows, markdown)


def format_paper(rows: Sequence[Mapping[str, Any]], *, markdown: bool = False) -> str:
    """The paper's table beside glore's counts."""
    header = ["network", "method", "GFLOPs paper", "glore", "diff", "params paper", "glore", "diff", "top-1 paper"]
    body = []
    for r in rows:
        body.append(
            [
                r["network"],
                r["method"],
                f"{r['paper_gflops']:.1f}",
                f"{r['gflops']:.2f}",
                f"{100 * r['gflops_diff']:+.1f}%",
                f"{r['paper_params_m']:.1f}M",
                f"{r['params_m']:.2f}M",
                f"{100 * r['params_diff']:+.1f}%",
                f"{r['top1']:.1f}%",
            ]
        )
    return _table(header, body, markdown)


# ----------------------------------------------------------------------------------------------------------------
# Command line.


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``glore profile``."""
    parser.add_argument("name", nargs="?", help="a registered model name (see --all)")
    parser.add_argument("--glore", default=None, help="insertion spec of GloRe units, e.g. 'res3:2,res4:3'")
    parser.add_argument(
        "--input",
        type=int,
        default=None,
        help="input image side in pixels (default: the network's default config: 224 for ImageNet networks, "
        "1024 x 2048 for the Cityscapes FCNs, 8 x 224 x 224 for the Kinetics networks)",
    )
    parser.add_argument(
        "--input-size",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="input size: H W for an image network, T H W for a video one (e.g. 8 224 224); overrides --input",
    )
    parser.add_argument(
        "--order",
        choices=("auto", "direct", "reassociated"),
        default=None,
        help="product order of the GloRe units (default: the units' own, 'auto'; with --paper: 'direct')",
    )
    parser.add_argument("--nodes", type=int, default=None, help="GloRe nodes N (default C/4)")
    parser.add_argument("--state", type=int, default=None, help="GloRe state channels S (default C/2)")
    parser.add_argument("--preact", action="store_true", help="the pre-activation ResNet variant")
    parser.add_argument(
        "--head", choices=("glore", "fcn", "nonlocal"), default=None, help="head of a segmentation network (fcn_*)"
    )
    parser.add_argument(
        "--output-stride", type=int, default=None, help="output stride of a segmentation network's backbone (8, 16)"
    )
    parser.add_argument(
        "--num-classes",
        type=int,
        default=None,
        help="classifier outputs (default: the network's: 1000 for ImageNet, 19 for Cityscapes, 400 for Kinetics)",
    )
    parser.add_argument("--paper", action="store_true", help="the paper's ImageNet table beside glore's counts")
    parser.add_argument("--all", action="store_true", help="totals of every registered network")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    """Run ``glore profile``; returns the exit status."""
    glore_args = {k: v for k, v in (("num_nodes", args.nodes), ("num_state", args.state)) if v is not None}
    if args.paper:
        rows = paper_rows(order=args.order or "direct", preact=args.preact, glore_args=glore_args)
        print(json.dumps(rows, indent=2) if args.json else format_paper(rows, markdown=args.markdown))
        return 0
    if args.all:
        body, data = [], []
        for name in list_models():
            prof = profile(name, input_size=args.input)
            size = "x".join(str(s) for s in prof.input_size)
            data.append(
                {"name": name, "input_size": prof.input_size, "params": prof.total_params, "macs": prof.total_macs}
            )
            body.append([name, size, f"{prof.total_params / 1e6:.2f}", f"{prof.total_macs / 1e9:.2f}"])
        header = ["model", "input", "params (M)", "GFLOPs"]
        print(json.dumps(data, indent=2) if args.json else _table(header, body, args.markdown))
        return 0
    if not args.name:
        print("glore profile: give a model name, --paper or --all (models: " + ", ".join(list_models()) + ")")
        return 2
    if args.order:
        glore_args["order"] = args.order
    segmentation = get_default_cfg(args.name)["task"] == "segmentation"
    if (args.head is not None or args.output_stride is not None) and not segmentation:
        print(f"glore profile: --head and --output-stride are options of segmentation networks, not {args.name}")
        return 2
    kwargs: dict[str, Any] = {}
    if args.preact:
        kwargs = {"backbone_args": {"preact": True}} if _takes(args.name, "backbone_args") else {"preact": True}
    kwargs.update({k: v for k, v in (("head", args.head), ("output_stride", args.output_stride)) if v is not None})
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    size = args.input_size if args.input_size is not None else args.input
    unit_args = (glore_args or None) if args.glore else None  # --order/--nodes/--state need units (--glore)
    prof = profile(args.name, glore=args.glore, glore_args=unit_args, input_size=size, **kwargs)
    if args.json:
        print(json.dumps({**prof.__dict__, "total_params": prof.total_params, "total_macs": prof.total_macs}))
    else:
        print(format_profile(prof, markdown=args.markdown))
    return 0
