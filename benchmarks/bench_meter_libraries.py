"""The measurements behind docs/training.md's choice of hand-written meters and config checking.

Compares ``glore.metrics.ClassificationMeter`` with torchmetrics' ``MulticlassAccuracy`` (top-1, top-5 and the
macro per-class mean that ``mean_class_acc`` is) on the same batches: host reads per ``update`` (calls of
``Tensor.item``/``tolist``/``__bool__``/``__int__``/``__float__``, each a device synchronisation on a GPU), time per
update, and that the values agree. Then prints the one-line errors of glore's config checker next to pydantic's and
OmegaConf's for the same two mistakes (an unknown key, a value of the wrong type), with each library's import time.

The libraries are not glore dependencies: install them elsewhere and put them on ``PYTHONPATH``::

    pip install --no-deps -t /tmp/libs torchmetrics lightning-utilities pydantic pydantic-core annotated-types \
        typing-inspection omegaconf antlr4-python3-runtime==4.9.3
    PYTHONPATH=/tmp/libs python benchmarks/bench_meter_libraries.py
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import subprocess
import sys
import time
from collections.abc import Iterator

import torch

from glore.metrics import ClassificationMeter

READS = ("item", "tolist", "__bool__", "__int__", "__float__")


@contextlib.contextmanager
def count_host_reads() -> Iterator[list[str]]:
    """Count the calls of the Tensor methods that copy a value to the host (a sync on a GPU)."""
    calls: list[str] = []
    originals = {name: getattr(torch.Tensor, name) for name in READS}

    def wrap(name: str):
        original = originals[name]

        def counted(self, *args, **kwargs):
            calls.append(name)
            return original(self, *args, **kwargs)

        return counted

    for name in READS:
        setattr(torch.Tensor, name, wrap(name))
    try:
        yield calls
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def import_time(module: str) -> float:
    """Seconds to import ``module`` in a fresh interpreter (median of 3)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    times = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        times.append(float(out))
    return sorted(times)[1]


def bench_meters(batch: int, classes: int, batches: int) -> None:
    from torchmetrics.classification import MulticlassAccuracy

    g = torch.Generator().manual_seed(0)
    data = [
        (torch.randn(batch, classes, generator=g), torch.randint(classes, (batch,), generator=g))
        for _ in range(batches)
    ]
    ours = ClassificationMeter(classes, ks=(1, 5))
    theirs = {
        "top1": MulticlassAccuracy(classes, top_k=1, average="micro"),
        "top5": MulticlassAccuracy(classes, top_k=5, average="micro"),
        "mean_class_acc": MulticlassAccuracy(classes, top_k=1, average="macro"),
    }
    for logits, targets in data[:2]:  # warm-up (torchmetrics checks its inputs on the first calls)
        ours.update(logits, targets)
        for m in theirs.values():
            m.update(logits, targets)
    ours.reset()
    for m in theirs.values():
        m.reset()

    with count_host_reads() as ours_reads:
        start = time.perf_counter()
        for logits, targets in data:
            ours.update(logits, targets)
        ours_time = time.perf_counter() - start
    with count_host_reads() as theirs_reads:
        start = time.perf_counter()
        for logits, targets in data:
            for m in theirs.values():
                m.update(logits, targets)
        theirs_time = time.perf_counter() - start
    a = ours.compute()
    b = {k: float(m.compute()) for k, m in theirs.items()}
    print(f"meters: {batches} batches of {batch} x {classes} logits, CPU, one process")
    ours_ms, theirs_ms = ours_time / batches * 1e3, theirs_time / batches * 1e3
    ours_reads_per, theirs_reads_per = len(ours_reads) / batches, len(theirs_reads) / batches
    print(f"  host reads per update: glore {ours_reads_per:.1f}, torchmetrics {theirs_reads_per:.1f}")
    print(
        f"  time per update: glore {ours_ms:.3f} ms, torchmetrics {theirs_ms:.3f} ms "
        f"(torchmetrics / glore = {theirs_time / ours_time:.2f}x)"
    )
    print("  values: " + ", ".join(f"{k} glore {a[k]:.6f} torchmetrics {b[k]:.6f}" for k in b))


def bench_config_errors() -> None:
    from glore.engine import ConfigError, load_config

    print("config errors for `optim.lrr: 0.1` (unknown key) and `train.epochs: ten` (wrong type):")
    for values in ({"optim": {"lrr": 0.1}}, {"train": {"epochs": "ten"}}):
        try:
            load_config(values)
        except ConfigError as err:
            print(f"  glore ({len(str(err).splitlines())} line): {err}")
    try:
        import pydantic
    except ImportError:
        print("  pydantic: not installed")
    else:

        class Optim(pydantic.BaseModel):
            model_config = pydantic.ConfigDict(extra="forbid")
            lr: float = 0.1

        class Train(pydantic.BaseModel):
            model_config = pydantic.ConfigDict(extra="forbid")
            epochs: int = 10

        for cls, values in ((Optim, {"lrr": 0.1}), (Train, {"epochs": "ten"})):
            try:
                cls(**values)
            except pydantic.ValidationError as err:
                text = str(err)
                print(f"  pydantic {pydantic.VERSION} ({len(text.splitlines())} lines): {text!r}")
    try:
        from omegaconf import OmegaConf
    except ImportError:
        print("  omegaconf: not installed")
    else:

        @dataclasses.dataclass
        class Optim2:
            lr: float = 0.1

        @dataclasses.dataclass
        class Train2:
            epochs: int = 10

        for cls, values in ((Optim2, {"lrr": 0.1}), (Train2, {"epochs": "ten"})):
            try:
                OmegaConf.merge(OmegaConf.structured(cls), values)
            except Exception as err:  # noqa: BLE001 - printing whatever the library raises
                text = str(err)
                print(f"  omegaconf ({len(text.splitlines())} lines): {text!r}")
    for module in ("glore.engine.config", "pydantic", "omegaconf", "torchmetrics"):
        with contextlib.suppress(subprocess.CalledProcessError):
            print(f"  import {module}: {import_time(module) * 1e3:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        bench_meters(args.batch, args.classes, args.batches)
    except ImportError:
        print("torchmetrics: not installed (see the module docstring)")
    bench_config_errors()


if __name__ == "__main__":
    main()
