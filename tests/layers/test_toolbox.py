"""The GloRe unit with the PyTorch toolbox: autograd, compile, export, ONNX, memory formats, autocast, fusing."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call

import glore.layers
from glore.layers import GloRe


def trained_like(unit: GloRe, seed: int = 0) -> GloRe:
    """Random non-zero parameters and running statistics, as after some training."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in unit.parameters():
            param.copy_(torch.randn(param.shape, generator=gen, dtype=param.dtype) * 0.5)
        unit.norm.running_mean.copy_(torch.randn(unit.channels, generator=gen))
        unit.norm.running_var.copy_(torch.rand(unit.channels, generator=gen) + 0.5)
    return unit


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).abs().max() / b.float().abs().max()).item()


@pytest.mark.parametrize("order", ("direct", "reassociated"))
@pytest.mark.parametrize("training", (True, False))
def test_gradcheck_float64(order: str, training: bool) -> None:
    unit = trained_like(GloRe(6, 3, 4, order=order)).double().train(training)
    names = [name for name, _ in unit.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in unit.parameters())
    x = torch.randn(2, 6, 3, 2, dtype=torch.float64, requires_grad=True)

    def fn(x: torch.Tensor, *values: torch.Tensor) -> torch.Tensor:
        return functional_call(unit, dict(zip(names, values, strict=True)), (x,))

    assert torch.autograd.gradcheck(fn, (x, *params), eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("training", (False, True))
def test_torch_compile_inductor_matches_eager(training: bool) -> None:
    torch.manual_seed(0)
    unit = trained_like(GloRe(16)).train(training)
    x = torch.randn(2, 16, 6, 6)
    compiled = torch.compile(unit, backend="inductor", fullgraph=True)
    expected = unit(x)
    out = compiled(x)
    assert rel_err(out, expected) < 1e-5
    if training:
        out.square().sum().backward()
        assert unit.conv_proj.weight.grad is not None


def test_torch_export_matches_eager() -> None:
    unit = trained_like(GloRe(16, gcn_layers=2)).eval()
    x = torch.randn(2, 16, 5, 4)
    program = torch.export.export(unit, (x,))
    assert rel_err(program.module()(x), unit(x)) < 1e-6


@pytest.mark.parametrize("spatial", [(5, 4), (2, 2)])  # auto picks reassociated for L = 20, direct for L = 4
def test_torch_export_with_a_dynamic_batch(spatial: tuple[int, int]) -> None:
    unit = trained_like(GloRe(16)).eval()
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(unit, (torch.randn(2, 16, *spatial),), dynamic_shapes=({0: batch},))
    for n in (1, 5):
        y = torch.randn(n, 16, *spatial)
        assert rel_err(program.module()(y), unit(y)) < 1e-6
    assert unit.resolve_order((1, 16, *spatial)) == unit.resolve_order((1000, 16, *spatial))


def test_onnx_export_runs_in_onnxruntime(tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    unit = trained_like(GloRe(16)).eval()
    x = torch.randn(2, 16, 7, 6)
    path = tmp_path / "glore.onnx"
    torch.onnx.export(unit, (x,), str(path), dynamo=True, verbose=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected = unit(x)
    assert rel_err(torch.from_numpy(out), expected) < 1e-5


@pytest.mark.parametrize("order", ("direct", "reassociated"))
@pytest.mark.parametrize("training", (False, True))
def test_channels_last_input(order: str, training: bool) -> None:
    unit = trained_like(GloRe(16, order=order)).train(training)
    x = torch.randn(2, 16, 5, 6)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    assert not x_cl.is_contiguous()
    assert rel_err(unit(x_cl), unit(x)) < 1e-6
    x3 = torch.randn(2, 16, 2, 3, 4)
    assert rel_err(unit(x3.contiguous(memory_format=torch.channels_last_3d)), unit(x3)) < 1e-6


@pytest.mark.parametrize("training", (False, True))
def test_bfloat16_autocast_on_cpu(training: bool) -> None:
    torch.manual_seed(0)
    unit = trained_like(GloRe(32)).train(training)
    x = torch.randn(2, 32, 6, 6)
    expected = unit(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = unit(x)
        residual = unit.residual(x)
    # The residual add happens in the input's precision; the products in bfloat16 (8 significant bits).
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert rel_err(residual, expected - x) < 5e-2
    assert rel_err(out, expected) < 5e-2


@pytest.mark.parametrize("spatial", [(1, 1), (4, 5), (3,), (2, 2, 2)])
def test_eval_batch_size_one(spatial: tuple[int, ...]) -> None:
    unit = trained_like(GloRe(16)).eval()
    batch = torch.randn(3, 16, *spatial)
    whole = unit(batch)
    for i in range(3):
        single = unit(batch[i : i + 1])
        assert single.shape == (1, 16, *spatial)
        assert rel_err(single, whole[i : i + 1]) < 1e-6


# ----- fusing for inference


@pytest.mark.parametrize("order", ("direct", "reassociated"))
@pytest.mark.parametrize("gcn_layers", (1, 2))
def test_fuse_matches_unfused(order: str, gcn_layers: int) -> None:
    unit = trained_like(GloRe(32, gcn_layers=gcn_layers, order=order)).eval()
    x = torch.randn(2, 32, 6, 7)
    before, before_residual = unit(x), unit.residual(x)
    macs_before = unit.macs(x.shape)
    assert unit.fuse() is unit
    assert unit.fused and isinstance(unit.norm, nn.Identity)
    assert isinstance(unit.gcn[-1].state_conv, nn.Identity)
    assert rel_err(unit.residual(x), before_residual) < 1e-5
    assert rel_err(unit(x), before) < 1e-5
    saved = x.shape[0] * unit.num_state**2 * unit.num_nodes
    assert {k: macs_before[k] - v for k, v in unit.macs(x.shape).items()} == {"direct": saved, "reassociated": saved}


def test_fuse_walks_a_network() -> None:
    model = nn.Sequential(GloRe(16), nn.Conv2d(16, 16, 3, padding=1), nn.Sequential(nn.ReLU(), GloRe(16, gcn_layers=2)))
    for unit in (model[0], model[2][1]):
        trained_like(unit)
    model.eval()
    x = torch.randn(2, 16, 5, 5)
    before = model(x)
    assert glore.layers.fuse(model) is model
    assert model[0].fused and model[2][1].fused
    assert rel_err(model(x), before) < 1e-5


def test_fuse_in_training_mode_raises() -> None:
    unit = GloRe(16).train()
    with pytest.raises(RuntimeError, match=r"call model\.eval\(\) first"):
        unit.fuse()
    with pytest.raises(RuntimeError, match=r"call model\.eval\(\) first"):
        glore.layers.fuse(nn.Sequential(unit))
    assert not unit.fused


def test_fused_unit_refuses_training_mode() -> None:
    unit = trained_like(GloRe(16)).eval().fuse()
    model = nn.Sequential(nn.Conv2d(16, 16, 1), unit)
    with pytest.raises(RuntimeError, match="fused unit is inference-only .* cannot go back to training mode"):
        unit.train()
    with pytest.raises(RuntimeError, match="fused unit is inference-only"):
        model.train()
    assert not unit.training
    x = torch.randn(2, 16, 3, 3)
    assert unit.eval() is unit and model.eval()(x).shape == x.shape  # eval stays allowed
    assert unit.train(False) is unit


def test_fuse_needs_batch_norm() -> None:
    unit = GloRe(16, norm_layer=lambda c: nn.GroupNorm(4, c)).eval()
    with pytest.raises(RuntimeError, match="needs a BatchNorm with running statistics"):
        unit.fuse()
