"""Segmentation heads and networks: GloRe vs Non-local vs the plain FCN head, time and peak memory, in one run.

Two parts, each printing ratios to the plain FCN head measured in the same run:

``heads``: the three heads of ``fcn_resnet50`` alone on the res5 feature map of a 1024x2048 image at output stride
8, i.e. an input of (batch, 2048, 128, 256): "fcn" (1x1 conv 2048->512 + BN + ReLU, dropout, 1x1 classifier),
"glore" (the same with a GloRe unit of 64 nodes x 128 state channels after the convolution, glore's default product
order ``auto``), "nonlocal" (an embedded-Gaussian NonLocal block of 256 inner channels there instead, attention over
all 32768 positions). Forward: eval mode, no_grad. Training step: train mode, forward, cross-entropy against random
labels at the feature map's resolution, backward (no optimizer: the heads' gradients are what is compared).

``model``: the whole FCN-R50 (dilated ResNet-50, output stride 8, aux head) with the plain head and with the GloRe
head on a 512x1024 crop: forward (eval, no_grad), and with ``--model-train`` a training step (forward, cross-entropy
of the main and 0.4 x the aux logits at the crop's size, backward, SGD step).

Times: each configuration is built once and warmed up; then they take turns, one step of each mode per round, so a
change of machine load hits all alike; the best time over the rounds is reported (median in the JSON). Peak memory:
each configuration and mode runs once more in a fresh process, and the peak is the process's peak resident set size
over its size once the module and input are built (CPU; ``tracemalloc`` does not see torch's allocator), or
``torch.cuda.max_memory_allocated`` over the same baseline (CUDA). The training peak includes the gradients. The
bytes autograd saves for the backward pass (activations, parameters excluded) are given too: they do not depend on
the allocator. Multiply-adds come from ``glore.tools.profile``.

Usage::

    python benchmarks/bench_segmentation.py                        # both parts, CPU, batch 1
    python benchmarks/bench_segmentation.py --part heads --repeats 3
    python benchmarks/bench_segmentation.py --part model --model-train
    python benchmarks/bench_segmentation.py --device cuda --dtype bfloat16 --channels-last --model-train
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import time
from typing import Any

import torch
from _memory import saved_for_backward_mb
from torch import nn

HEADS = ("fcn", "glore", "nonlocal")
NUM_CLASSES = 19


def build(part: str, head: str) -> nn.Module:
    """The module one configuration times: the head of ``fcn_resnet50`` (part "heads") or the whole network."""
    from glore.models import create_model
    from glore.models.fcn import FCN, FCNHead

    if part == "heads":
        # The head alone, as fcn_resnet50 builds it (no backbone allocated: it would raise the RSS baseline).
        unit = FCN._head_unit(head, 512, 64, 128, None)
        return FCNHead(2048, 512, NUM_CLASSES, kernel_size=1, unit=unit, dropout=0.1)
    return create_model("fcn_resnet50", num_classes=NUM_CLASSES, head=head, output_stride=8, aux=True)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class Runner:
    """One configuration's module, input and labels; ``step(mode)`` runs a forward or a training step."""

    def __init__(self, opts: dict[str, Any], part: str, head: str) -> None:
        torch.manual_seed(0)
        self.part, self.device, self.dtype = part, opts["device"], getattr(torch, opts["dtype"])
        fmt = torch.channels_last if opts["channels_last"] else torch.contiguous_format
        self.module = build(part, head).to(self.device, memory_format=fmt)
        n = opts["batch"]
        if part == "heads":
            h, w = opts["feature"]
            self.x = torch.randn(n, 2048, h, w, device=self.device).contiguous(memory_format=fmt)
        else:
            h, w = opts["crop"]
            self.x = torch.randn(n, 3, h, w, device=self.device).contiguous(memory_format=fmt)
        self.target = torch.randint(0, NUM_CLASSES, (n, h, w), device=self.device)
        self.optimizer = torch.optim.SGD(self.module.parameters(), lr=1e-3, momentum=0.9) if part == "model" else None

    def _loss(self) -> torch.Tensor:
        ce = nn.functional.cross_entropy
        if self.part == "heads":
            return ce(self.module(self.x).float(), self.target)
        out = self.module(self.x)
        return ce(out["out"].float(), self.target) + 0.4 * ce(out["aux"].float(), self.target)

    def step(self, mode: str) -> float:
        """Run one forward ("forward") or training step ("train"); returns its seconds."""
        autocast = torch.autocast(device_type=self.device, dtype=self.dtype, enabled=self.dtype != torch.float32)
        self.module.train(mode == "train")
        _sync(self.device)
        start = time.perf_counter()
        if mode == "forward":
            with torch.no_grad(), autocast:
                self.module(self.x)
        else:
            self.module.zero_grad(set_to_none=True)
            with autocast:
                loss = self._loss()
            loss.backward()
            if self.optimizer is not None:
                self.optimizer.step()
        _sync(self.device)
        return time.perf_counter() - start

    def saved_mb(self) -> float:
        """MB of the tensors a training forward saves for backward (unique storages, parameters excluded)."""
        autocast = torch.autocast(device_type=self.device, dtype=self.dtype, enabled=self.dtype != torch.float32)

        def forward() -> torch.Tensor:
            with autocast:
                return self._loss()

        return saved_for_backward_mb(self.module, forward)


def peak_memory(opts: dict[str, Any], part: str, head: str, mode: str, queue: Any) -> None:
    """Run in a fresh process: the peak memory (MB) of one ``mode`` step over the built module's and input's."""
    if opts["threads"]:
        torch.set_num_threads(opts["threads"])
    runner = Runner(opts, part, head)
    if runner.device == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = _rss_mb()
    runner.step(mode)
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if runner.device == "cuda" else _rss_mb() - base
    queue.put(peak)


def run_part(opts: dict[str, Any], part: str, heads: list[str], modes: list[str]) -> dict[str, dict[str, Any]]:
    """Measure ``heads`` in one part; returns one row per head."""
    from glore.tools.profile import profile_model

    ctx = mp.get_context("spawn")
    rows: dict[str, dict[str, Any]] = {}
    for head in heads:
        with torch.device("meta"):
            net = build("model", head)
        assert part == "model" or sum(p.numel() for p in build(part, head).parameters()) == sum(
            p.numel() for p in [*net.head.parameters()]
        ), "the benchmarked head differs from fcn_resnet50's"
        h, w = opts["feature"]
        prof = profile_model(net, (8 * h, 8 * w) if part == "heads" else tuple(opts["crop"]))  # output stride 8
        if part == "heads":
            gmacs = (prof.macs["head"] + prof.macs.get("unit", 0)) * opts["batch"] / 1e9
            params = prof.params["head"] + prof.params.get("unit", 0)
        else:  # the forward runs no aux head in eval mode: count the main path
            gmacs = (prof.total_macs - prof.macs["aux"]) * opts["batch"] / 1e9
            params = prof.total_params
        rows[head] = {"gmacs": gmacs, "params_m": params / 1e6}
        for mode in modes:
            queue = ctx.Queue()
            proc = ctx.Process(target=peak_memory, args=(opts, part, head, mode, queue))
            proc.start()
            rows[head][mode] = {"peak_mb": queue.get()}
            proc.join()
        print(
            f"  [{part}] {head:9s} peak memory " + ", ".join(f"{m} +{rows[head][m]['peak_mb']:.0f} MB" for m in modes)
        )

    runners = {head: Runner(opts, part, head) for head in heads}
    for runner in runners.values():  # warm-up: first-call costs and the momentum buffers
        for mode in modes:
            runner.step(mode)
    times: dict[str, dict[str, list[float]]] = {h: {m: [] for m in modes} for h in runners}
    for r in range(opts["repeats"]):
        for head, runner in runners.items():
            for mode in modes:
                times[head][mode].append(runner.step(mode))
        print(
            f"  [{part}] round {r + 1}/{opts['repeats']}: "
            + ", ".join(f"{h} " + "/".join(f"{t[m][-1]:.2f}" for m in modes) + " s" for h, t in times.items()),
            flush=True,
        )
    for head, runner in runners.items():
        for mode in modes:
            rows[head][mode]["time_s"] = min(times[head][mode])
            rows[head][mode]["median_s"] = statistics.median(times[head][mode])
        if "train" in modes:
            rows[head]["saved_mb"] = runner.saved_mb()
    del runners
    return rows


def print_table(title: str, rows: dict[str, dict[str, Any]], modes: list[str]) -> None:
    """A markdown table with ratios to the plain head."""
    ref = rows.get("fcn")
    names = {"forward": "forward", "train": "fwd+bwd"}
    columns = ["head", "GMACs", "params (M)"]
    for mode in modes:
        columns += [f"{names[mode]} s", "ratio", f"peak {names[mode]} MB", "ratio"]
    if "train" in modes:
        columns += ["saved for backward MB", "ratio"]
    print(f"\n{title}; ratios to the plain FCN head")
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for head, row in rows.items():

        def ratio(value: float, ref_value: float | None) -> str:
            return f"{value / ref_value:.2f}x" if ref_value else "-"

        cells = [head, f"{row['gmacs']:.1f}", f"{row['params_m']:.2f}"]
        for mode in modes:
            m, r = row[mode], (ref or {}).get(mode, {})
            cells += [f"{m['time_s']:.3f}", ratio(m["time_s"], r.get("time_s"))]
            cells += [f"{m['peak_mb']:.0f}", ratio(m["peak_mb"], r.get("peak_mb"))]
        if "train" in modes:
            cells += [f"{row['saved_mb']:.0f}", ratio(row["saved_mb"], (ref or {}).get("saved_mb"))]
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("heads", "model", "both"), default="both")
    parser.add_argument("--heads", nargs="+", choices=HEADS, default=list(HEADS), help="heads of the 'heads' part")
    parser.add_argument("--feature", type=int, nargs=2, default=(128, 256), metavar=("H", "W"))
    parser.add_argument("--crop", type=int, nargs=2, default=(512, 1024), metavar=("H", "W"))
    parser.add_argument("--model-train", action="store_true", help="also time the whole network's training step")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    opts = vars(parser.parse_args())
    if opts["threads"]:
        torch.set_num_threads(opts["threads"])
    where = f"{opts['device']} ({opts['threads'] or torch.get_num_threads()} threads), {opts['dtype']}"
    where += ", channels_last" if opts["channels_last"] else ""
    results: dict[str, Any] = {"options": opts}
    if opts["part"] in ("heads", "both"):
        rows = run_part(opts, "heads", opts["heads"], ["forward", "train"])
        h, w = opts["feature"]
        print_table(
            f"Heads of fcn_resnet50 on a (batch {opts['batch']}, 2048, {h}, {w}) feature map, {where}",
            rows,
            ["forward", "train"],
        )
        results["heads"] = rows
    if opts["part"] in ("model", "both"):
        modes = ["forward", "train"] if opts["model_train"] else ["forward"]
        rows = run_part(opts, "model", ["fcn", "glore"], modes)
        h, w = opts["crop"]
        print_table(f"fcn_resnet50 (OS8, aux head) on a batch {opts['batch']} x {h}x{w} crop, {where}", rows, modes)
        results["model"] = rows
    print(f"\nbest of {opts['repeats']} rounds (configurations in turns); peak memory in fresh processes")
    if opts["json"]:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
