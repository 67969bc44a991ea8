"""Check glore's conversions of the released GloRe networks against the frameworks that define them.

PaddleSeg's GloRe (ResNet50_vd, output stride 8; Cityscapes with its aux head, Pascal VOC) and MindSpore's
glore_resnet50/101/200 (ImageNet) are built from the frameworks' own code with random weights (BatchNorm
statistics randomised too), saved in their own formats (``paddle.save`` -> ``.pdparams``,
``mindspore.save_checkpoint`` -> ``.ckpt``), loaded into glore with ``create_model(pretrained=FILE)`` and run on
the same input. The table gives the largest absolute difference of the outputs relative to the largest absolute
output; the check passes below 1e-4. "units' effect" is how much the output changes when glore's units are
removed (their extend weights zeroed): the random weights are scaled so that the units matter (a few per cent)
while a deep network stays finite.

MindSpore's GloRe units cast the operands of their two matrix products to float16 (``GloreUnit_50`` always,
``GloreUnit_200`` with ``cast_fp16=True``, the default); glore computes them in float32. Each MindSpore network is
therefore compared twice with the same weights: with those casts replaced by the identity (the float32 function,
the check) and as shipped (the difference is float16 rounding, reported for information).

Neither framework is a glore dependency. This script runs by hand, with a virtual environment per framework::

    python3.11 -m venv /work/venvs/paddle
    /work/venvs/paddle/bin/pip install paddlepaddle==3.3.1 paddleseg==2.8.0
    /work/venvs/paddle/bin/pip uninstall -y opencv-python        # paddleseg pins 4.5, built for numpy 1
    /work/venvs/paddle/bin/pip install "opencv-python-headless>=5.0,<5.1"
    python3.11 -m venv /work/venvs/mindspore
    /work/venvs/mindspore/bin/pip install mindspore==2.10.0 "numpy<2"   # CPU build, about 2.8 GB
    git clone https://github.com/mindspore-ai/models /work/mindspore-models   # glore_resnet lives there

    .venv/bin/python benchmarks/compare_released_models.py \\
        --paddle-python /work/venvs/paddle/bin/python \\
        --mindspore-python /work/venvs/mindspore/bin/python \\
        --mindspore-models /work/mindspore-models

Leave out a framework's ``--*-python`` to skip it. The table goes to stdout (docs/models.md shows it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TOLERANCE = 1e-4
SEED = 0

# case -> (classes, input shape) of the PaddleSeg networks.
PADDLE_CASES = {"paddleseg_cityscapes": (19, (1, 3, 128, 256)), "paddleseg_voc": (21, (1, 3, 128, 128))}
MINDSPORE_CASES = ("glore_resnet50", "glore_resnet101", "glore_resnet200")
MINDSPORE_INPUT = (1, 3, 224, 224)


def _random_array(rng: np.random.Generator, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A random value for a parameter named ``name``: kernels scaled by 1/sqrt(fan-in), BatchNorm statistics
    (mean, variance), scales and shifts each in a range that keeps a deep network's activations finite."""
    leaf = name.rsplit(".", 1)[-1]
    if leaf in ("_mean", "moving_mean"):
        return rng.normal(0.0, 0.1, shape)
    if leaf in ("_variance", "moving_variance"):
        return rng.uniform(0.5, 1.5, shape)
    if len(shape) == 1 and leaf in ("weight", "gamma"):
        return rng.uniform(0.5, 1.0, shape)
    if len(shape) == 1:  # biases, BN shifts
        return rng.normal(0.0, 0.1, shape)
    fan_in = int(np.prod(shape[1:]))
    scale = 1.0 / np.sqrt(fan_in)
    if "conv_proj" in name or "projection_mat" in name:
        # The unit is cubic in its input and sums over all L positions without normalising (V = S Bᵀ, Y = Z B):
        # small projections and graph/extend weights keep a random deep network finite (a trained one is).
        scale *= 0.01
    elif "gcn.conv" in name or "conv_extend" in name or "extend_dim" in name:
        scale *= 0.3
    return rng.normal(0.0, scale, shape)


# ----------------------------------------------------------------------------------------------------------------
# The frameworks' side: runs under their own interpreters (no glore, no torch).


def paddle_side(workdir: Path) -> dict:
    import paddle
    from paddleseg.models import GloRe
    from paddleseg.models.backbones import ResNet50_vd

    paddle.set_device("cpu")
    report = {}
    for case, (classes, shape) in PADDLE_CASES.items():
        rng = np.random.default_rng(SEED)
        model = GloRe(num_classes=classes, backbone=ResNet50_vd(output_stride=8), enable_auxiliary_loss=True)
        state = model.state_dict()
        for name, param in state.items():
            param.set_value(_random_array(rng, name, tuple(param.shape)).astype("float32"))
        model.eval()
        x = rng.standard_normal(shape).astype("float32")
        start = time.perf_counter()
        with paddle.no_grad():
            out, aux = model(paddle.to_tensor(x))
        seconds = time.perf_counter() - start
        paddle.save(model.state_dict(), str(workdir / f"{case}.pdparams"))
        np.save(workdir / f"{case}_input.npy", x)
        np.save(workdir / f"{case}_out.npy", out.numpy())
        np.save(workdir / f"{case}_aux.npy", aux.numpy())
        values = sum(int(np.prod(p.shape)) for p in state.values())  # what the file holds, BN statistics included
        report[case] = {"values": values, "tensors": len(state), "seconds": seconds}
    return report


class _NoCast:
    """Stands in for a unit's ``P.Cast()``: keeps float32 (the products run in float32)."""

    def __call__(self, x, dtype):  # noqa: ANN001, ANN204
        return x


def mindspore_side(workdir: Path, models_root: Path) -> dict:
    import mindspore as ms

    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    sys.path.insert(0, str(models_root / "research" / "cv" / "glore_res"))
    from src import glore_resnet  # the model zoo's own file

    report = {}
    for case in MINDSPORE_CASES:
        rng = np.random.default_rng(SEED)
        build = getattr(glore_resnet, case)
        net = build(class_num=1000)
        params = list(net.parameters_and_names())
        for name, param in params:
            param.set_data(ms.Tensor(_random_array(rng, name, tuple(param.shape)).astype("float32")))
        net.set_train(False)
        x = rng.standard_normal(MINDSPORE_INPUT).astype("float32")
        start = time.perf_counter()
        shipped = net(ms.Tensor(x)).asnumpy()
        seconds = time.perf_counter() - start
        units = [cell for _, cell in net.cells_and_names() if type(cell).__name__.startswith("GloreUnit")]
        for cell in units:
            cell.cast = _NoCast()
        exact = net(ms.Tensor(x)).asnumpy()
        ms.save_checkpoint(net, str(workdir / f"{case}.ckpt"))
        np.save(workdir / f"{case}_input.npy", x)
        np.save(workdir / f"{case}_out.npy", exact)
        np.save(workdir / f"{case}_shipped.npy", shipped)
        values = sum(int(np.prod(p.shape)) for _, p in params)  # what the file holds, BN statistics included
        report[case] = {"values": values, "tensors": len(params), "units": len(units), "seconds": seconds}
    return report


# ----------------------------------------------------------------------------------------------------------------
# glore's side.


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def _unit_share(model, x, output) -> float:  # noqa: ANN001
    """How much the GloRe units change the output (relative max change when their extend weights are zeroed):
    evidence that the comparison exercises them."""
    import copy

    from glore.layers import GloRe

    plain = copy.deepcopy(model)
    for module in plain.modules():
        if isinstance(module, GloRe):
            module.conv_extend.weight.data.zero_()
    out = plain(x)
    out = out["out"] if isinstance(out, dict) else out
    return _relative(out.numpy(), output.numpy())


def _run_side(python: str, side: str, workdir: Path, extra: list[str]) -> dict:
    command = [python, __file__, "--side", side, "--workdir", str(workdir), *extra]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"{side} side failed (exit {done.returncode}):\n{tail}")
    return json.loads((workdir / f"{side}.json").read_text())


def compare(args: argparse.Namespace) -> int:
    import torch

    from glore.models import create_model

    torch.set_grad_enabled(False)
    rows, failed = [], False
    with tempfile.TemporaryDirectory(prefix="glore-compare-") as tmp:
        workdir = Path(tmp)
        sides = []
        if args.paddle_python:
            sides.append(("paddle", args.paddle_python, [], "PaddleSeg 2.8.0 / PaddlePaddle 3.3.1", ".pdparams"))
        if args.mindspore_python:
            extra = ["--mindspore-models", str(args.mindspore_models)]
            sides.append(("mindspore", args.mindspore_python, extra, "MindSpore 2.10.0", ".ckpt"))
        for side, python, extra, framework, suffix in sides:
            try:
                report = _run_side(python, side, workdir, extra)
            except (RuntimeError, OSError) as error:
                print(f"{framework}: could not run: {error}", file=sys.stderr)
                failed = True
                continue
            for case, info in report.items():
                start = time.perf_counter()
                model = create_model(pretrained=str(workdir / f"{case}{suffix}")).eval()
                load_seconds = time.perf_counter() - start
                x = torch.from_numpy(np.load(workdir / f"{case}_input.npy"))
                glore_values = sum(v.numel() for k, v in model.state_dict().items() if "num_batches" not in k)
                if side == "paddle":
                    out = model(x, aux=True)
                    checks = [("out", out["out"], "out"), ("aux", out["aux"], "aux")]
                else:
                    logits = model(x)
                    checks = [("logits", logits, "out"), ("logits, float16 products", logits, "shipped")]
                share = _unit_share(model, x, checks[0][1])
                for what, mine, ref_name in checks:
                    reference = np.load(workdir / f"{case}_{ref_name}.npy")
                    error = _relative(mine.numpy(), reference)
                    exact_check = ref_name != "shipped"
                    ok = error < TOLERANCE
                    failed |= exact_check and not ok
                    verdict = ("pass" if ok else "FAIL") if exact_check else "(info)"
                    rows.append(
                        f"| {case} | {what} | {tuple(reference.shape)} | {info['values']:,} "
                        f"({info['tensors']} tensors) | {glore_values:,} | {error:.1e} | {verdict} | "
                        f"{share:.1e} | {load_seconds:.1f} s |"
                    )
    print(f"Relative max abs difference, tolerance {TOLERANCE:g}; random weights, seed {SEED}.\n")
    print(
        "| network | output | shape | values in their file | glore's state dict | rel. max diff | check "
        "| units' effect | load + convert |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paddle-python", help="python of a venv with paddlepaddle and paddleseg")
    parser.add_argument("--mindspore-python", help="python of a venv with mindspore")
    parser.add_argument("--mindspore-models", type=Path, help="a clone of mindspore-ai/models (glore_res)")
    parser.add_argument("--side", choices=("paddle", "mindspore"), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "paddle":
        (args.workdir / "paddle.json").write_text(json.dumps(paddle_side(args.workdir)))
        return 0
    if args.side == "mindspore":
        (args.workdir / "mindspore.json").write_text(json.dumps(mindspore_side(args.workdir, args.mindspore_models)))
        return 0
    if args.mindspore_python and not args.mindspore_models:
        parser.error("--mindspore-python needs --mindspore-models (a clone of mindspore-ai/models)")
    if not (args.paddle_python or args.mindspore_python):
        parser.error("give --paddle-python and/or --mindspore-python")
    return compare(args)


if __name__ == "__main__":
    raise SystemExit(main())
