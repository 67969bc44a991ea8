"""Channels-last memory formats on this machine: contiguous (NCHW / NCTHW) against channels_last (2D networks) and
channels_last_3d (3D networks), one forward (eval, no_grad) and one training step each, measured in one run.

The networks are built once per format (weights copied, so both compute the same function) and the formats take
turns round after round, so a change of machine load hits both alike; the best time over the rounds is kept and the
ratio channels-last / contiguous printed (below 1: channels-last is faster). Precision follows ``--dtype``
(``bfloat16`` runs under autocast, as ``train.amp: bfloat16`` does).

Usage::

    python benchmarks/bench_memory_format.py         # R50-3D + 5 units at 8x112x112, R50 + 5 units at 224
    python benchmarks/bench_memory_format.py --repeats 5 --dtype bfloat16
    python benchmarks/bench_memory_format.py --device cuda --batch 8
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import time

import torch
from torch import nn

from glore.layers import to_channels_last
from glore.models import create_model

NETWORKS = {
    # name: (model, insertion spec, input shape without the batch)
    "resnet50_3d+glore": ("resnet50_3d", "res3:2,res4:3", (3, 8, 112, 112)),
    "resnet50+glore": ("resnet50", "res3:2,res4:3", (3, 224, 224)),
}


def step(model: nn.Module, x: torch.Tensor, target: torch.Tensor, mode: str, dtype: str, device: str) -> float:
    """Seconds of one forward (``mode="eval"``) or one forward + backward + SGD step (``"train"``)."""
    amp = torch.autocast(device, torch.bfloat16) if dtype == "bfloat16" else contextlib.nullcontext()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    if mode == "eval":
        model.eval()
        with torch.no_grad(), amp:
            model(x)
    else:
        model.train()
        with amp:
            loss = nn.functional.cross_entropy(model(x).float(), target)
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p.sub_(0.01 * p.grad)
                    p.grad = None
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    results = {}
    for name in args.networks:
        model_name, spec, shape = NETWORKS[name]
        plain = create_model(model_name, num_classes=10, glore=spec).to(args.device)
        last = to_channels_last(copy.deepcopy(plain))
        x = torch.randn(args.batch, *shape, device=args.device)
        x_last = x.contiguous(memory_format=torch.channels_last if x.dim() == 4 else torch.channels_last_3d)
        target = torch.randint(0, 10, (args.batch,), device=args.device)
        times: dict[str, dict[str, list[float]]] = {f: {"eval": [], "train": []} for f in ("contiguous", "last")}
        for _ in range(args.repeats + 1):  # the first round warms up and is dropped
            for mode in ("eval", "train"):
                times["contiguous"][mode].append(step(plain, x, target, mode, args.dtype, args.device))
                times["last"][mode].append(step(last, x_last, target, mode, args.dtype, args.device))
        row = {}
        for mode in ("eval", "train"):
            best = {f: min(times[f][mode][1:]) for f in times}
            row[mode] = {"contiguous_s": best["contiguous"], "channels_last_s": best["last"]}
            row[mode]["ratio"] = best["last"] / best["contiguous"]
        results[name] = row
        print(
            f"{name:20s} {args.dtype:8s} batch {args.batch}: channels-last / contiguous  "
            f"forward {row['eval']['ratio']:.2f}x  training step {row['train']['ratio']:.2f}x  "
            f"(contiguous {row['eval']['contiguous_s']:.3f} s / {row['train']['contiguous_s']:.3f} s)",
            flush=True,
        )
    print(json.dumps({"device": args.device, "dtype": args.dtype, "batch": args.batch, "results": results}))


if __name__ == "__main__":
    main()
