"""GloRe against Non-local networks for video: time and peak memory of a forward and a training step, in one run.

The networks are the official 3D ResNets (``resnet50_3d`` / ``resnet101_3d``): without units ("plain"), with the
five GloRe units at the official positions ("glore": res3 blocks 1, 3 and res4 blocks 1, 3, 5 for R50, official
arithmetic ``normalize=False``, glore's product order ``auto``; "glore-direct": the official unit's order), and with
embedded-Gaussian NonLocal blocks at the same positions ("nonlocal": attention over all T*H*W positions;
"nonlocal-sub": keys and values max-pooled 2x2 in space, Wang et al.'s subsampling).

Times: every network is built in one process and warmed up, then the configurations take turns, one forward (eval,
no_grad) and one training step (train mode, forward + cross-entropy + backward + SGD step) each per round, so a change
of machine load during the run hits all of them alike; the best (least disturbed) time over the rounds is reported,
the median beside it in the JSON.

Peak memory: each configuration and mode runs once more in a fresh process, and the peak is the process's peak
resident set size (CPU) over its size once the network is built (weights), or ``torch.cuda.max_memory_allocated``
over the weights (CUDA); the training peak includes the gradients and the momentum buffers. RSS peaks move with the
allocator's caching; a deterministic measure of training memory is given too: the bytes of the tensors autograd
saves for the backward pass (activations, parameters excluded). Ratios are to the plain network of the same run.
Multiply-adds come from ``glore.tools.profile`` (the units in the order they run).

Usage::

    python benchmarks/bench_video_models.py                                  # R50, 8x224x224, batch 1, CPU
    python benchmarks/bench_video_models.py --model resnet101_3d --repeats 5
    python benchmarks/bench_video_models.py --device cuda --batch 8 --dtype bfloat16
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

SPECS = {"resnet50_3d": "res3:2,res4:3", "resnet101_3d": {"res3": [1, 3], "res4": [6, 12, 18]}}
CONFIGS = ("plain", "glore", "glore-direct", "nonlocal", "nonlocal-sub")


def build(model_name: str, config: str, num_classes: int = 400) -> nn.Module:
    """The network of one configuration."""
    from glore.layers import NonLocal
    from glore.models import create_model

    spec = SPECS[model_name]
    if config == "plain":
        return create_model(model_name, num_classes=num_classes)
    if config in ("glore", "glore-direct"):
        args = {"normalize": False, "order": "direct" if config == "glore-direct" else "auto"}
        return create_model(model_name, num_classes=num_classes, glore=spec, glore_args=args)
    model = create_model(model_name, num_classes=num_classes, glore=spec, glore_args={"block": "nonlocal"})
    if config == "nonlocal-sub":
        for unit in model.modules():
            if isinstance(unit, NonLocal):
                unit.subsample = True  # glore_args does not expose it; the attribute is what forward reads
    return model


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class Runner:
    """One configuration's network, clip, target and optimizer; ``step(mode)`` runs a forward or a training step."""

    def __init__(self, opts: dict[str, Any], config: str) -> None:
        torch.manual_seed(0)
        self.device, self.dtype = opts["device"], getattr(torch, opts["dtype"])
        self.model = build(opts["model"], config).to(self.device)
        shape = (opts["batch"], 3, opts["frames"], opts["size"], opts["size"])
        self.x = torch.randn(shape, device=self.device)
        self.target = torch.randint(0, 400, (opts["batch"],), device=self.device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1e-3, momentum=0.9)

    def step(self, mode: str) -> float:
        """Run one forward ("forward") or training step ("train"); returns its seconds."""
        autocast = torch.autocast(device_type=self.device, dtype=self.dtype, enabled=self.dtype != torch.float32)
        self.model.train(mode == "train")
        _sync(self.device)
        start = time.perf_counter()
        if mode == "forward":
            with torch.no_grad(), autocast:
                self.model(self.x)
        else:
            self.optimizer.zero_grad(set_to_none=True)
            with autocast:
                loss = nn.functional.cross_entropy(self.model(self.x), self.target)
            loss.backward()
            self.optimizer.step()
        _sync(self.device)
        return time.perf_counter() - start

    def saved_mb(self) -> float:
        """MB of the tensors a training forward saves for backward (unique storages, parameters excluded)."""
        return saved_for_backward_mb(self.model, lambda: nn.functional.cross_entropy(self.model(self.x), self.target))


def peak_memory(opts: dict[str, Any], config: str, mode: str, queue: Any) -> None:
    """Run in a fresh process: the peak memory (MB) of one ``mode`` step over the built network's."""
    if opts["threads"]:
        torch.set_num_threads(opts["threads"])
    runner = Runner(opts, config)
    if runner.device == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = _rss_mb()
    runner.step(mode)
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if runner.device == "cuda" else _rss_mb() - base
    queue.put(peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(SPECS), default="resnet50_3d")
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    opts = vars(parser.parse_args())

    from glore.tools.profile import profile_model

    if opts["threads"]:
        torch.set_num_threads(opts["threads"])
    ctx = mp.get_context("spawn")
    rows: dict[str, dict[str, Any]] = {}
    for config in opts["configs"]:
        with torch.device("meta"):
            net = build(opts["model"], config)
        prof = profile_model(net, (opts["frames"], opts["size"], opts["size"]))
        rows[config] = {"gmacs": prof.total_macs / 1e9, "params_m": prof.total_params / 1e6}
        for mode in ("forward", "train"):
            queue = ctx.Queue()
            proc = ctx.Process(target=peak_memory, args=(opts, config, mode, queue))
            proc.start()
            rows[config][mode] = {"peak_mb": queue.get()}
            proc.join()
        print(
            f"  {config:13s} peak memory +{rows[config]['forward']['peak_mb']:.0f} MB forward, "
            f"+{rows[config]['train']['peak_mb']:.0f} MB training step",
            flush=True,
        )

    runners = {config: Runner(opts, config) for config in opts["configs"]}
    for runner in runners.values():  # warm-up: first-call costs and the momentum buffers
        runner.step("forward"), runner.step("train")
    times: dict[str, dict[str, list[float]]] = {c: {"forward": [], "train": []} for c in runners}
    for r in range(opts["repeats"]):
        for config, runner in runners.items():
            for mode in ("forward", "train"):
                times[config][mode].append(runner.step(mode))
        print(
            f"  round {r + 1}/{opts['repeats']}: "
            + ", ".join(f"{c} {t['forward'][-1]:.2f}/{t['train'][-1]:.2f} s" for c, t in times.items()),
            flush=True,
        )
    for config in runners:
        for mode in ("forward", "train"):
            rows[config][mode]["time_s"] = min(times[config][mode])
            rows[config][mode]["median_s"] = statistics.median(times[config][mode])
        rows[config]["saved_mb"] = runners[config].saved_mb()

    ref = rows.get("plain")
    where = f"{opts['device']} ({torch.get_num_threads() if not opts['threads'] else opts['threads']} threads)"
    print(
        f"\n{opts['model']}, batch {opts['batch']} x {opts['frames']}x{opts['size']}x{opts['size']}, {opts['dtype']}, "
        f"{where}, best of {opts['repeats']} rounds; ratios to plain"
    )
    columns = ["network", "GMACs", "params (M)", "forward s", "ratio", "train step s", "ratio", "peak fwd MB"]
    columns += ["ratio", "peak train MB", "ratio", "saved for backward MB", "ratio"]
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for config, row in rows.items():
        f, t = row["forward"], row["train"]

        def ratio(key: str, mode: str, row: dict[str, Any] = row) -> str:
            return f"{row[mode][key] / ref[mode][key]:.2f}x" if ref and ref[mode][key] > 0 else "-"

        print(
            f"| {config} | {row['gmacs']:.2f} | {row['params_m']:.2f} "
            f"| {f['time_s']:.3f} | {ratio('time_s', 'forward')} "
            f"| {t['time_s']:.3f} | {ratio('time_s', 'train')} | {f['peak_mb']:.0f} | {ratio('peak_mb', 'forward')} "
            f"| {t['peak_mb']:.0f} | {ratio('peak_mb', 'train')} | {row['saved_mb']:.0f} "
            f"| {row['saved_mb'] / ref['saved_mb']:.2f}x |"
        )
    if opts["json"]:
        print(json.dumps({"options": opts, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
