"""The GloRe unit: exactness against written-out formulas, both product orders, official weights, bad input."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from glore.layers import GloRe, GraphConv, NonLocal, SqueezeExcite, convert_official_state_dict, glore_macs

SPATIAL = {1: (7,), 2: (3, 5), 3: (2, 3, 4), 4: (2, 2, 3, 2)}


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every parameter and norm statistic a random, non-zero value (the BN weight included)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=gen, dtype=param.dtype) * 0.5)
        for sub in module.modules():
            if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                sub.running_mean.copy_(torch.randn(sub.running_mean.shape, generator=gen))
                sub.running_var.copy_(torch.rand(sub.running_var.shape, generator=gen) + 0.5)
    return module


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference relative to the largest magnitude of ``b``."""
    return ((a - b).abs().max() / b.abs().max()).item()


def batch_norm_ref(y: torch.Tensor, norm: nn.BatchNorm1d, training: bool) -> torch.Tensor:
    """BatchNorm over (n, C, L) written out: batch statistics (biased variance) in training, running ones in eval."""
    if training:
        mean = y.mean(dim=(0, 2))
        var = y.var(dim=(0, 2), unbiased=False)
    else:
        mean, var = norm.running_mean, norm.running_var
    # (C,) -> (1, C, 1) against (n, C, L)
    normed = (y - mean[None, :, None]) / torch.sqrt(var[None, :, None] + norm.eps)
    return normed * norm.weight[None, :, None] + norm.bias[None, :, None]


def glore_ref(unit: GloRe, x: torch.Tensor, training: bool = False) -> torch.Tensor:
    """The unit's formula (DESIGN.md, "The unit, exactly") in einsum, independent of the unit's code."""
    n, c = x.shape[:2]
    xf = x.reshape(n, c, -1)  # (n, C, L)
    length = xf.shape[-1]
    w_s, b_s = unit.conv_state.weight[..., 0], unit.conv_state.bias
    w_b, b_b = unit.conv_proj.weight[..., 0], unit.conv_proj.bias
    w_e = unit.conv_extend.weight[..., 0]
    state = torch.einsum("sc,bcl->bsl", w_s, xf) + b_s[None, :, None]  # S_x = W_s X + b_s
    proj = torch.einsum("kc,bcl->bkl", w_b, xf) + b_b[None, :, None]  # B = W_b X + b_b
    v = torch.einsum("bsl,bkl->bsk", state, proj)  # V = S_x Bᵀ
    if unit.normalize:
        v = v / length
    for layer in unit.gcn:
        adj, b_g = layer.node_conv.weight[..., 0], layer.node_conv.bias
        w_g = layer.state_conv.weight[..., 0]
        h = v + torch.einsum("bsm,km->bsk", v, adj) + b_g[None, None, :]  # H = V + V A_gᵀ + b_g
        v = torch.einsum("ts,bsk->btk", w_g, torch.relu(h))  # Z = W_g relu(H)
    y = torch.einsum("bsk,bkl->bsl", v, proj)  # Y = Z B
    out = xf + batch_norm_ref(torch.einsum("cs,bsl->bcl", w_e, y), unit.norm, training)
    return out.reshape(x.shape)


# ----- identity at initialisation


@pytest.mark.parametrize(
    "dims,training,order", list(itertools.product((1, 2, 3), (True, False), ("direct", "reassociated")))
)
def test_fresh_unit_is_exactly_identity(dims: int, training: bool, order: str) -> None:
    torch.manual_seed(dims)
    unit = GloRe(16, order=order).train(training)
    x = torch.randn(2, 16, *SPATIAL[dims]) * 3
    assert torch.equal(unit(x), x)
    assert torch.equal(unit.residual(x), torch.zeros_like(x))


def test_zero_init_false_is_not_identity() -> None:
    unit = GloRe(16, zero_init=False).eval()
    x = torch.randn(2, 16, 3, 5)
    assert not torch.equal(unit(x), x)


# ----- the formula


@pytest.mark.parametrize(
    "normalize,gcn_layers,order,training",
    list(itertools.product((True, False), (1, 2), ("direct", "reassociated"), (False, True))),
)
def test_matches_einsum_reference(normalize: bool, gcn_layers: int, order: str, training: bool) -> None:
    unit = randomize(GloRe(12, 5, 7, normalize=normalize, gcn_layers=gcn_layers, order=order)).double()
    unit.train(training)
    x = torch.randn(3, 12, 4, 6, dtype=torch.float64)
    expected = glore_ref(unit, x, training)
    assert rel_err(unit(x), expected) < 1e-12
    assert rel_err(unit.residual(x), expected - x) < 1e-12


@pytest.mark.parametrize("dims", (1, 2, 3, 4))
def test_any_number_of_spatial_dims(dims: int) -> None:
    unit = randomize(GloRe(8, gcn_layers=2)).double().eval()
    x = torch.randn(2, 8, *SPATIAL[dims], dtype=torch.float64)
    out = unit(x)
    assert out.shape == x.shape
    assert rel_err(out, glore_ref(unit, x)) < 1e-12
    assert unit.projection(x).shape == (2, unit.num_nodes, *SPATIAL[dims])


def test_projection_is_the_projection_maps() -> None:
    unit = randomize(GloRe(8, 3, 4)).double()
    x = torch.randn(2, 8, 3, 4, dtype=torch.float64)
    expected = (
        torch.einsum("kc,bchw->bkhw", unit.conv_proj.weight[..., 0], x) + unit.conv_proj.bias[None, :, None, None]
    )
    assert rel_err(unit.projection(x), expected) < 1e-12


@pytest.mark.parametrize(
    "dtype,tol,training", [(torch.float32, 1e-5, False), (torch.float32, 1e-5, True), (torch.float64, 1e-10, False)]
)
@pytest.mark.parametrize("gcn_layers", (1, 2))
def test_product_orders_agree(dtype: torch.dtype, tol: float, training: bool, gcn_layers: int) -> None:
    direct = randomize(GloRe(32, gcn_layers=gcn_layers, order="direct")).to(dtype).train(training)
    reassociated = GloRe(32, gcn_layers=gcn_layers, order="reassociated").to(dtype).train(training)
    reassociated.load_state_dict(direct.state_dict())
    assert reassociated.norm.weight.abs().min() > 0
    x = torch.randn(4, 32, 6, 7, dtype=dtype)
    a, b = direct.residual(x), reassociated.residual(x)
    assert b.abs().max() > 0.1
    assert rel_err(a, b) < tol
    assert rel_err(direct(x), reassociated(x)) < tol


def test_auto_order_picks_fewer_multiply_adds() -> None:
    # Default N = C/4, S = C/2: the reassociated order is cheaper exactly when L > C/3 (= 16 here).
    unit = GloRe(48)
    assert unit.resolve_order((2, 48, 4, 4)) == "direct"  # L = 16: a tie keeps the official order
    assert unit.resolve_order((2, 48, 17)) == "reassociated"
    assert unit.resolve_order((2, 48, 2, 3, 3)) == "reassociated"
    assert GloRe(48, order="direct").resolve_order((2, 48, 100)) == "direct"
    assert GloRe(48, order="reassociated").resolve_order((2, 48, 1)) == "reassociated"


def test_auto_matches_the_order_it_picks() -> None:
    auto = randomize(GloRe(24)).double().eval()
    for shape, order in [((2, 24, 2, 2), "direct"), ((2, 24, 6, 6), "reassociated")]:
        assert auto.resolve_order(shape) == order
        fixed = GloRe(24, order=order).double().eval()
        fixed.load_state_dict(auto.state_dict())
        x = torch.randn(shape, dtype=torch.float64)
        assert torch.equal(auto(x), fixed(x))


def test_macs_count_every_product() -> None:
    n, c, length, k, s = 2, 40, 30, 6, 9
    # Products written out: W_b X; direct: W_s X, S_x Bᵀ, Z B, W_e Y; reassociated: X Bᵀ, W_s (XBᵀ), W_e Z, (W_e Z) B.
    graph = k * k * s + s * s * k
    direct = k * c * length + s * c * length + s * length * k + s * k * length + c * s * length + graph
    reassociated = k * c * length + c * length * k + s * c * k + c * s * k + c * k * length + graph
    unit = GloRe(c, k, s)
    assert unit.macs((n, c, 5, 6)) == {"direct": n * direct, "reassociated": n * reassociated}
    assert glore_macs((n, c, length), k, s, gcn_layers=3)["direct"] == n * (direct + 2 * graph)


def test_every_parameter_gets_a_gradient() -> None:
    for order in ("direct", "reassociated"):
        unit = GloRe(16, gcn_layers=2, order=order)
        nn.init.ones_(unit.norm.weight)
        x = torch.randn(3, 16, 4, 5, requires_grad=True)
        unit(x).square().sum().backward()
        for name, param in unit.named_parameters():
            assert param.grad is not None, name
            assert param.grad.abs().sum() > 0, name
        assert x.grad is not None


@pytest.mark.parametrize("order", ("direct", "reassociated"))
def test_normalize_makes_constant_input_size_free(order: str) -> None:
    # A spatially constant input makes B constant over positions, so V = (1/L) sum_l S_x B_lᵀ is the same at
    # any L, and so is Y = Z B at every position: the branch output does not depend on the size.
    unit = randomize(GloRe(16, order=order)).double().eval()
    values = torch.randn(2, 16, 1, 1, dtype=torch.float64)
    small, large = values.expand(2, 16, 7, 7), values.expand(2, 16, 28, 28)
    r_small, r_large = unit.residual(small), unit.residual(large)
    assert r_small.abs().max() > 0.1
    assert rel_err(r_large[..., :7, :7], r_small) < 1e-10
    assert rel_err(r_large, r_large[..., :1, :1].expand_as(r_large)) < 1e-10
    # Without normalize the node states grow with L: the two sizes disagree.
    plain = GloRe(16, order=order, normalize=False).double().eval()
    plain.load_state_dict(unit.state_dict())
    assert rel_err(plain.residual(large)[..., :7, :7], plain.residual(small)) > 0.1


def test_state_dict_round_trip() -> None:
    unit = randomize(GloRe(16, gcn_layers=2)).eval()
    copy = GloRe(16, gcn_layers=2).eval()
    copy.load_state_dict(unit.state_dict(), strict=True)
    x = torch.randn(2, 16, 3, 4)
    assert torch.equal(copy(x), unit(x))
    assert {k for k in unit.state_dict() if k.startswith("gcn.")} >= {
        "gcn.0.node_conv.weight",
        "gcn.0.node_conv.bias",
        "gcn.0.state_conv.weight",
        "gcn.1.state_conv.weight",
    }
    assert unit.gcn[0].node_conv.weight.shape == (4, 4, 1)  # the adjacency A_g, (N, N, 1)


# ----- the official unit's weights


def official_state_dict(num_in: int, num_mid: int, spatial_dims: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A hand-built state dict in the official GloRe_Unit layout: ConvNd kernels (out, in, 1, ...), GCN in Conv1d."""
    gen = torch.Generator().manual_seed(seed)
    ones = (1,) * spatial_dims
    s, k = 2 * num_mid, num_mid

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=gen, dtype=torch.float64) * 0.5

    return {
        "conv_state.weight": rand(s, num_in, *ones),
        "conv_state.bias": rand(s),
        "conv_proj.weight": rand(k, num_in, *ones),
        "conv_proj.bias": rand(k),
        "gcn.conv1.weight": rand(k, k, 1),
        "gcn.conv1.bias": rand(k),
        "gcn.conv2.weight": rand(s, s, 1),
        "conv_extend.weight": rand(num_in, s, *ones),
        "blocker.weight": rand(num_in),
        "blocker.bias": rand(num_in),
        "blocker.running_mean": rand(num_in),
        "blocker.running_var": torch.rand(num_in, generator=gen, dtype=torch.float64) + 0.5,
        "blocker.num_batches_tracked": torch.tensor(7),
    }


def official_forward_ref(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The official GloRe_Unit forward (normalize=False, eval mode) restated in einsum on its own state dict."""
    n, c = x.shape[:2]
    xf = x.reshape(n, c, -1)  # (n, C, L)
    flat = {k: v.reshape(v.shape[0], v.shape[1]) if k.endswith("weight") and v.dim() > 1 else v for k, v in sd.items()}
    state = torch.einsum("sc,bcl->bsl", flat["conv_state.weight"], xf) + sd["conv_state.bias"][None, :, None]
    proj = torch.einsum("kc,bcl->bkl", flat["conv_proj.weight"], xf) + sd["conv_proj.bias"][None, :, None]
    nodes = torch.einsum("bsl,bkl->bsk", state, proj)  # (n, num_s, num_n)
    # gcn.conv1 runs over the node axis of the permuted (n, num_n, num_s) tensor, then h + x
    h = torch.einsum("km,bsm->bsk", flat["gcn.conv1.weight"], nodes) + sd["gcn.conv1.bias"][None, None, :] + nodes
    rel = torch.einsum("ts,bsk->btk", flat["gcn.conv2.weight"], torch.relu(h))
    y = torch.einsum("bsk,bkl->bsl", rel, proj)  # reverse projection
    ext = torch.einsum("cs,bsl->bcl", flat["conv_extend.weight"], y)
    mean, var = sd["blocker.running_mean"][None, :, None], sd["blocker.running_var"][None, :, None]
    blocked = (ext - mean) / torch.sqrt(var + 1e-4) * sd["blocker.weight"][None, :, None]
    return (xf + blocked + sd["blocker.bias"][None, :, None]).reshape(x.shape)


@pytest.mark.parametrize("spatial_dims", (1, 2, 3))
def test_official_state_dict_converts_and_matches_official_forward(spatial_dims: int) -> None:
    num_in, num_mid = 12, 3
    sd = official_state_dict(num_in, num_mid, spatial_dims)
    unit = GloRe(num_in, num_mid, 2 * num_mid, normalize=False, order="direct").double().eval()
    unit.load_state_dict(convert_official_state_dict(sd), strict=True)
    assert unit.norm.eps == 1e-4
    x = torch.randn(2, num_in, *SPATIAL[spatial_dims], dtype=torch.float64)
    assert rel_err(unit(x), official_forward_ref(sd, x)) < 1e-12
    # The auto order computes the same function.
    auto = GloRe(num_in, num_mid, 2 * num_mid, normalize=False).double().eval()
    auto.load_state_dict(unit.state_dict())
    big = torch.randn(2, num_in, *([5] * spatial_dims), dtype=torch.float64)
    assert rel_err(auto(big), official_forward_ref(sd, big)) < 1e-10


def test_convert_keeps_prefixes_and_refuses_foreign_keys() -> None:
    sd = {f"layer3.1.glore.{k}": v for k, v in official_state_dict(8, 2, 2).items()}
    converted = convert_official_state_dict(sd)
    assert "layer3.1.glore.gcn.0.node_conv.weight" in converted
    assert converted["layer3.1.glore.conv_state.weight"].shape == (4, 8, 1)
    assert converted["layer3.1.glore.norm.running_var"].shape == (8,)
    with pytest.raises(KeyError, match="fc.weight"):
        convert_official_state_dict({**sd, "fc.weight": torch.zeros(2, 2)})
    passed = convert_official_state_dict({**sd, "fc.weight": torch.zeros(2, 2)}, strict=False)
    assert passed["fc.weight"].shape == (2, 2)


# ----- GraphConv alone


def test_graph_conv_matches_formula() -> None:
    gcn = randomize(GraphConv(6, 4)).double()
    v = torch.randn(3, 6, 4, dtype=torch.float64)
    adj, bias, w_g = gcn.node_conv.weight[..., 0], gcn.node_conv.bias, gcn.state_conv.weight[..., 0]
    h = v + torch.einsum("bsm,km->bsk", v, adj) + bias  # (I + A_g) acting on the node axis, plus b_g
    expected = torch.einsum("ts,bsk->btk", w_g, torch.relu(h))
    out = gcn(v)
    assert out.shape == (3, 6, 4)
    assert rel_err(out, expected) < 1e-12
    assert rel_err(gcn.relate(v), torch.relu(h)) < 1e-12


def test_graph_conv_identity_path_with_zero_adjacency() -> None:
    # With A_g = 0 and b_g = 0 the node-wise step is the identity: Z = W_g relu(V).
    gcn = randomize(GraphConv(5, 3))
    with torch.no_grad():
        gcn.node_conv.weight.zero_()
        gcn.node_conv.bias.zero_()
    v = torch.randn(2, 5, 3)
    assert torch.equal(gcn.relate(v), torch.relu(v))


# ----- bad input


@pytest.mark.parametrize(
    "kwargs,error,pattern",
    [
        ({"channels": 0}, ValueError, r"channels must be a positive integer, got 0"),
        ({"channels": -8}, ValueError, r"channels must be a positive integer, got -8"),
        ({"channels": 8.0}, TypeError, r"channels must be a positive integer, got 8\.0 of type float"),
        ({"channels": "8"}, TypeError, r"channels must be a positive integer"),
        ({"channels": True}, TypeError, r"channels must be a positive integer, got True"),
        ({"channels": 8, "num_nodes": 0}, ValueError, r"num_nodes must be a positive integer, got 0"),
        ({"channels": 8, "num_nodes": 2.5}, TypeError, r"num_nodes must be a positive integer, got 2\.5"),
        ({"channels": 8, "num_state": -1}, ValueError, r"num_state must be a positive integer, got -1"),
        ({"channels": 8, "num_state": 4.0}, TypeError, r"num_state must be a positive integer"),
        ({"channels": 8, "gcn_layers": 0}, ValueError, r"gcn_layers must be a positive integer, got 0"),
        ({"channels": 8, "gcn_layers": 1.5}, TypeError, r"gcn_layers must be a positive integer"),
        ({"channels": 8, "order": "fast"}, ValueError, r"order must be one of .*'fast'"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict, error: type[Exception], pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        GloRe(**kwargs)


@pytest.mark.parametrize("method", ("forward", "residual", "projection"))
@pytest.mark.parametrize(
    "x,error,pattern",
    [
        (torch.randn(2, 6, 4, 4), ValueError, r"input x must have 8 channels .* got 6 channels"),
        (torch.randn(2, 8), ValueError, r"input x must have shape \(n, 8, \*spatial\) .* got shape \(2, 8\)"),
        (torch.randn(8), ValueError, r"at least one spatial dim"),
        (
            torch.ones(2, 8, 4, 4, dtype=torch.int64),
            TypeError,
            r"input x must be a floating-point tensor .* got torch\.int64",
        ),
        (torch.ones(2, 8, 4, 4, dtype=torch.bool), TypeError, r"input x must be a floating-point tensor"),
        ([[1.0] * 4] * 8, TypeError, r"input x must be a torch\.Tensor, got list"),
    ],
)
def test_bad_input(method: str, x: object, error: type[Exception], pattern: str) -> None:
    unit = GloRe(8)
    with pytest.raises(error, match=pattern):
        getattr(unit, method)(x)


def test_bad_graph_conv_and_macs_arguments() -> None:
    with pytest.raises(ValueError, match="num_nodes must be a positive integer, got 0"):
        GraphConv(4, 0)
    with pytest.raises(TypeError, match="num_state must be a positive integer"):
        GraphConv(4.0, 2)
    with pytest.raises(ValueError, match=r"input_shape must be \(n, C, \*spatial\)"):
        glore_macs((2, 8), 2, 4)


def test_default_widths() -> None:
    unit = GloRe(64)
    assert (unit.num_nodes, unit.num_state) == (16, 32)
    assert GloRe(2).num_nodes == 1  # never zero nodes
    assert math.isclose(unit.macs((1, 64, 1))["direct"], glore_macs((1, 64, 1), 16, 32)["direct"])


@pytest.mark.parametrize("module", [GloRe(8), NonLocal(8), SqueezeExcite(8)], ids=["glore", "nonlocal", "se"])
def test_input_dtype_must_match_the_parameters(module: nn.Module) -> None:
    x = torch.randn(2, 8, 4, 4, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"input x is torch\.float64 but the module's parameters are torch\.float32"):
        module(x)
    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(TypeError, match="never casts float64"):
        module(x)
    assert module.double()(x).dtype == torch.float64  # float64 is accepted with float64 parameters
    module.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast mixes dtypes on purpose
        assert module(x.to(torch.bfloat16)).shape == x.shape


def test_macs_refuses_another_channel_count() -> None:
    unit = GloRe(64)
    with pytest.raises(ValueError, match=r"input_shape must be \(n, 64, \*spatial\) .* got \(2, 32, 7, 7\)"):
        unit.macs((2, 32, 7, 7))
    with pytest.raises(ValueError, match=r"got \(2, 64\)"):
        unit.macs((2, 64))
    assert unit.macs((2, 64, 7, 7)) == glore_macs((2, 64, 7, 7), 16, 32)
