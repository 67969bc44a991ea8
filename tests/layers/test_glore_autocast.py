"""The GloRe unit under autocast and under FlopCounterMode.

Every product order x mode (train, eval, fused) x precision x memory format x number of spatial dims agrees with
the float32 unit; gradients flow under autocast; ``torch.utils.flop_counter.FlopCounterMode`` counts the same
multiply-adds in train and eval mode, for a unit and for networks, and they are the unit's own ``macs()``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from glore.layers import GloRe
from glore.models import create_model

CHANNELS = 24  # N = 6 nodes, S = 12 state channels: "auto" takes the reassociated order when L > C/3 = 8
# dims -> spatial size; "auto" picks direct for the 1D input (L = 5) and reassociated for the others.
SPATIAL = {1: (5,), 2: (3, 5), 3: (2, 2, 3)}
ORDERS = ("direct", "reassociated", "auto")
MODES = ("train", "eval", "fused")
# precision -> (autocast dtype or None, dtype of the unit's input). Inside a network under autocast a unit gets
# the low-precision output of the layer before it; the first layer of a network gets float32 under autocast.
PRECISIONS = {
    "float32": (None, torch.float32),
    "bfloat16": (torch.bfloat16, torch.bfloat16),
    "bfloat16-float32-input": (torch.bfloat16, torch.float32),
    "float16": (torch.float16, torch.float16),
    "float16-float32-input": (torch.float16, torch.float32),
}
# Largest error allowed relative to the float32 output's largest magnitude, per autocast dtype. The products run in
# that dtype: bfloat16 keeps 8 significant bits (rounding 2^-9 = 2e-3 per operand), float16 11 bits (2^-12 = 2.4e-4),
# and the unit chains five of them (projection, interaction, graph conv, extend, reverse projection), so the bound
# is about ten roundings of the largest value; float32 is the unit itself, up to the order of its summations.
TOLERANCE = {None: 1e-5, torch.bfloat16: 3e-2, torch.float16: 4e-3}
# The unit is checked on every device this machine has; the float32 reference always runs on the CPU.
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def trained_like(unit: GloRe, seed: int = 0) -> GloRe:
    """Random non-zero parameters and running statistics (the norm weight included), as after some training."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in unit.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
        unit.norm.running_mean.copy_(torch.randn(unit.channels, generator=gen) * 0.3)
        unit.norm.running_var.copy_(torch.rand(unit.channels, generator=gen) + 0.5)
    return unit


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference relative to the largest magnitude of ``b``, computed in float32."""
    return ((a.float() - b.float()).abs().max() / b.float().abs().max()).item()


def with_memory_format(x: torch.Tensor, memory_format: str) -> torch.Tensor:
    """``x`` as is, or with channels innermost (channels_last for 2D, channels_last_3d for 3D, (n, L, C) for 1D)."""
    if memory_format == "contiguous":
        return x.contiguous()
    channels_last = x.movedim(1, -1).contiguous().movedim(-1, 1)  # (n, *spatial, C) storage, (n, C, *spatial) view
    assert channels_last.stride(1) == 1 and not channels_last.is_contiguous()
    return channels_last


def autocast(dtype: torch.dtype | None, device: str = "cpu") -> torch.autocast:
    return torch.autocast(device, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def unit_in_mode(order: str, mode: str, seed: int = 0, device: str = "cpu") -> GloRe:
    unit = trained_like(GloRe(CHANNELS, order=order), seed).to(device)
    if mode == "train":
        return unit.train()
    unit.eval()
    return unit.fuse() if mode == "fused" else unit


@pytest.fixture(autouse=True)
def _no_stray_autocast() -> Iterator[None]:
    """Each test opens its own autocast region: none must be left open by another test. On CUDA, float32 stays
    float32 (no TF32), so that it can be held to the float32 tolerance."""
    assert not any(torch.is_autocast_enabled(device) for device in DEVICES)
    if "cuda" not in DEVICES:
        yield
    else:
        flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        yield
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags
    assert not any(torch.is_autocast_enabled(device) for device in DEVICES)


# ----- agreement with the float32 unit


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dims", sorted(SPATIAL))
@pytest.mark.parametrize("memory_format", ("contiguous", "channels_last"))
@pytest.mark.parametrize("precision", list(PRECISIONS))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("order", ORDERS)
def test_agrees_with_the_float32_unit(
    order: str, mode: str, precision: str, memory_format: str, dims: int, device: str
) -> None:
    amp_dtype, input_dtype = PRECISIONS[precision]
    unit = unit_in_mode(order, mode, device=device)
    # The reference: the float32 unit without autocast, unfused (so a fused unit is checked against its origin).
    reference = unit_in_mode(order, "train" if mode == "train" else "eval")
    gen = torch.Generator().manual_seed(dims)
    x = with_memory_format(torch.randn(2, CHANNELS, *SPATIAL[dims], generator=gen).to(input_dtype), memory_format)
    with torch.no_grad():
        expected = reference(x.float())
        expected_residual = reference.residual(x.float()) if mode != "train" else None
        x = x.to(device)
        with autocast(amp_dtype, device):
            out = unit(x)
            residual = unit.residual(x) if mode != "train" else None
    # The residual add happens in the input's dtype: the unit's output has its input's dtype, under autocast too.
    assert out.dtype == input_dtype and out.shape == x.shape and out.device == x.device
    out, residual, unit = out.cpu(), None if residual is None else residual.cpu(), unit.cpu()
    tol = TOLERANCE[amp_dtype]
    assert rel_err(out, expected) < tol
    if residual is not None:  # in training the norm's batch statistics change with every call; checked above
        assert residual.dtype == input_dtype
        assert rel_err(residual, expected_residual) < tol
        assert expected_residual.abs().max() > 0.3 * expected.abs().max()  # the branch is not negligible
    if mode == "train":  # the running statistics were updated alike
        assert rel_err(unit.norm.running_mean, reference.norm.running_mean) < tol
        assert rel_err(unit.norm.running_var, reference.norm.running_var) < tol


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", list(PRECISIONS))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("order", ORDERS)
def test_fresh_unit_is_exactly_the_identity_under_autocast(order: str, mode: str, precision: str, device: str) -> None:
    amp_dtype, input_dtype = PRECISIONS[precision]
    unit = GloRe(CHANNELS, order=order).to(device).train(mode == "train")
    if mode == "fused":
        unit.fuse()
    x = torch.randn(2, CHANNELS, 4, 5).to(device, input_dtype)
    with torch.no_grad(), autocast(amp_dtype, device):
        assert torch.equal(unit(x), x)


def test_the_reported_case_res3_eval_bfloat16() -> None:
    """GloRe(512) in eval mode on a bf16 (n, 512, 28, 28) input under bf16 autocast, where "auto" is reassociated."""
    torch.manual_seed(0)
    unit = trained_like(GloRe(512)).eval()
    assert unit.resolve_order((1, 512, 28, 28)) == "reassociated"
    x = torch.randn(1, 512, 28, 28).to(torch.bfloat16)
    with torch.no_grad():
        expected = unit(x.float())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = unit(x)
    assert out.dtype == torch.bfloat16
    assert rel_err(out, expected) < TOLERANCE[torch.bfloat16]


# ----- gradients under autocast


def _gradients(unit: nn.Module, x: torch.Tensor, amp_dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """Gradients of a fixed weighting of the output with respect to the input and every parameter (on the CPU)."""
    x = x.detach().clone().requires_grad_()
    weights = torch.linspace(-1.0, 1.0, x.numel(), device=x.device).reshape(x.shape)
    with autocast(amp_dtype, x.device.type):
        out = unit(x)
    (out.float() * weights).sum().backward()
    grads = {"input": x.grad}
    grads.update({name: p.grad for name, p in unit.named_parameters()})
    return {name: None if grad is None else grad.cpu() for name, grad in grads.items()}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", [p for p in PRECISIONS if p != "float32"])
@pytest.mark.parametrize("mode", ("train", "eval"))
@pytest.mark.parametrize("order", ORDERS)
def test_gradients_flow_under_autocast(order: str, mode: str, precision: str, device: str) -> None:
    """In training, and in eval mode with autograd on (input gradients for a saliency map), every parameter and the
    input get a finite gradient that agrees with the float32 unit's."""
    amp_dtype, input_dtype = PRECISIONS[precision]
    x = torch.randn(3, CHANNELS, 3, 4).to(input_dtype)
    got = _gradients(unit_in_mode(order, mode, device=device), x.to(device), amp_dtype)
    expected = _gradients(unit_in_mode(order, mode), x.float(), None)
    assert got.keys() == expected.keys()
    for name, grad in got.items():
        assert grad is not None, name
        assert torch.isfinite(grad).all(), name
        assert grad.abs().max() > 0, name
        # A gradient passes the products twice (forward and backward), so it gets twice the forward's tolerance.
        assert rel_err(grad, expected[name]) < 2 * TOLERANCE[amp_dtype], name


# ----- FlopCounterMode


def count_flops(module: nn.Module, x: torch.Tensor, amp_dtype: torch.dtype | None = None) -> int:
    """FLOPs FlopCounterMode counts for one forward pass (2 per multiply-add); without autograd outside training,
    as inference runs."""
    with torch.set_grad_enabled(module.training), FlopCounterMode(display=False) as counter, autocast(amp_dtype):
        module(x)
    return counter.get_total_flops()


@pytest.mark.parametrize("amp_dtype", (None, torch.bfloat16))
@pytest.mark.parametrize("order", ORDERS)
def test_flop_counter_counts_every_product_in_every_mode(order: str, amp_dtype: torch.dtype | None) -> None:
    x = torch.randn(2, CHANNELS, 3, 5)
    counts = {}
    for mode in MODES:
        unit = unit_in_mode(order, mode)
        macs = unit.macs(x.shape)[unit.resolve_order(x.shape)]
        counts[mode] = count_flops(unit, x, amp_dtype)
        assert counts[mode] == 2 * macs, mode
    assert counts["train"] == counts["eval"]
    # Fusing folds W_g into the extend conv: S*S*N multiply-adds fewer per sample.
    unit = GloRe(CHANNELS)
    assert counts["eval"] - counts["fused"] == 2 * x.shape[0] * unit.num_state**2 * unit.num_nodes


def _network_counts(
    name: str, spec: str, num_units: int, input_shape: tuple[int, ...], device: str
) -> tuple[dict[str, int], int, int, list[str]]:
    """FlopCounterMode's count of the network with units in train and eval mode, the count of the same network
    without units, the units' own multiply-adds (``GloRe.macs`` of the order used, at the shapes they see) and the
    orders they used."""
    with torch.device(device):
        model = create_model(name, num_classes=10, glore=spec)
        plain = create_model(name, num_classes=10).eval()
        x = torch.zeros(input_shape)
    unit_macs, orders = {}, {}

    def record(unit: GloRe, args: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        shape = tuple(args[0].shape)
        orders[id(unit)] = unit.resolve_order(shape)
        unit_macs[id(unit)] = unit.macs(shape)[orders[id(unit)]]

    units = [m for m in model.modules() if isinstance(m, GloRe)]
    assert len(units) == num_units
    hooks = [unit.register_forward_hook(record) for unit in units]
    counts = {mode: count_flops(model.train(mode == "train"), x) for mode in ("train", "eval")}
    for hook in hooks:
        hook.remove()
    return counts, count_flops(plain, x), sum(unit_macs.values()), [orders[id(unit)] for unit in units]


def test_flop_counter_counts_a_small_network_alike_in_train_and_eval() -> None:
    # At 32 px the res3 unit of resnet_small takes the reassociated order (L = 64 > C/3), the res4 unit the direct one.
    counts, plain, unit_macs, orders = _network_counts("resnet_small", "res3:1,res4:1", 2, (2, 3, 32, 32), "cpu")
    assert orders == ["reassociated", "direct"]
    assert counts["train"] == counts["eval"]
    assert counts["eval"] - plain == 2 * unit_macs


def test_flop_counter_counts_resnet50_with_units_alike_in_train_and_eval() -> None:
    """ResNet-50 with the paper's res3:2,res4:3 units at 224 px (res3 units reassociated), shapes only (meta)."""
    counts, plain, unit_macs, orders = _network_counts("resnet50", "res3:2,res4:3", 5, (1, 3, 224, 224), "meta")
    assert orders == ["reassociated"] * 2 + ["direct"] * 3
    assert counts["train"] == counts["eval"]
    assert counts["eval"] - plain == 2 * unit_macs


def test_small_network_under_bfloat16_autocast_in_eval_mode() -> None:
    """A network whose units take the reassociated order evaluates under bf16 autocast like in float32."""
    torch.manual_seed(0)
    model = create_model("resnet_small", num_classes=10, glore="res3:1,res4:1")
    for unit in model.modules():
        if isinstance(unit, GloRe):
            trained_like(unit)
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
            fused = copy.deepcopy(model)
            for unit in fused.modules():
                if isinstance(unit, GloRe):
                    unit.fuse()
            out_fused = fused(x)
    for got in (out, out_fused):
        assert got.dtype == torch.bfloat16
        assert rel_err(got, expected) < 5 * TOLERANCE[torch.bfloat16]  # a dozen layers, each rounding to bfloat16


def test_matrix_covers_both_orders() -> None:
    """The matrix above runs "auto" through both orders."""
    picked = {GloRe(CHANNELS).resolve_order((2, CHANNELS, *spatial)) for spatial in SPATIAL.values()}
    assert picked == {"direct", "reassociated"}


# ----- the eval path's out= accumulation under the compiler


@pytest.mark.parametrize("amp_dtype", (None, torch.bfloat16))
def test_eval_path_compiles_and_exports_without_autograd(amp_dtype: torch.dtype | None) -> None:
    """Without autograd the eval unit accumulates its output with ``baddbmm(out=)``: torch.compile (fullgraph) and
    torch.export of a frozen unit take that path and compute what eager does."""
    unit = unit_in_mode("reassociated", "eval")
    x = torch.randn(2, CHANNELS, 3, 5).to(amp_dtype or torch.float32)
    with torch.no_grad(), autocast(amp_dtype):
        expected = unit(x)
        compiled = torch.compile(unit, backend="aot_eager", fullgraph=True)
        assert rel_err(compiled(x), expected) < TOLERANCE[amp_dtype]
    if amp_dtype is None:
        unit.requires_grad_(False)
        program = torch.export.export(unit, (x,))
        assert rel_err(program.module()(x), expected) < TOLERANCE[None]
