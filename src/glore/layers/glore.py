"""The Global Reasoning unit (Chen et al., "Graph-Based Global Reasoning Networks", CVPR 2019).

One class serves inputs with any number of spatial dims: the input (n, C, *spatial) is flattened to
(n, C, L), the unit works there, and the output gets the input's shape back. See docs/unit.md for
each equation of the paper next to the line that computes it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial

import torch
from torch import nn

from .helpers import check_feature_input, check_positive_int, reset_residual_block

__all__ = ["GloRe", "GraphConv", "glore_macs", "convert_official_state_dict", "fuse", "PRODUCT_ORDERS", "GCN_ACTS"]

PRODUCT_ORDERS = ("auto", "direct", "reassociated")
GCN_ACTS = ("between", "after")


class GraphConv(nn.Module):
    """Graph convolution over a fully connected graph of ``num_nodes`` nodes with ``num_state`` channels each.

    Computes ``Z = W_g relu(V + V A_gᵀ + b_g)`` for node states ``V`` of shape (n, S, N): a node-wise
    1D convolution (adjacency ``A_g`` with bias, plus the identity path) and a state-wise 1D convolution
    ``W_g`` without bias. The paper writes the node-wise step as ``(I - A_g) V``; the sign is absorbed by
    the learned ``A_g``.

    Args:
        num_state: S, the channels of each node state.
        num_nodes: N, the number of nodes.
        act_layer: the nonlinearity between the two convolutions.
        act: where the nonlinearity goes: ``"between"`` the two convolutions (the official unit) or ``"after"``
            the state-wise one, ``Z = relu(W_g (V + V A_gᵀ + b_g))`` (PaddleSeg's GCN).
    """

    def __init__(
        self,
        num_state: int,
        num_nodes: int,
        *,
        act_layer: Callable[[], nn.Module] = nn.ReLU,
        act: str = "between",
    ) -> None:
        super().__init__()
        num_state = check_positive_int("num_state", num_state)
        num_nodes = check_positive_int("num_nodes", num_nodes)
        if act not in GCN_ACTS:
            raise ValueError(f"gcn_act must be one of {GCN_ACTS}, got {act!r}")
        self.num_state = num_state
        self.num_nodes = num_nodes
        self.act_position = act
        # A_g and its bias: mixes the N nodes, shared by every state channel.
        self.node_conv = nn.Conv1d(num_nodes, num_nodes, kernel_size=1)
        self.act = act_layer()
        # W_g: mixes the S state channels, shared by every node. An nn.Identity after GloRe.fuse().
        self.state_conv: nn.Module = nn.Conv1d(num_state, num_state, kernel_size=1, bias=False)

    def relate(self, v: torch.Tensor) -> torch.Tensor:
        """Return ``relu(V + V A_gᵀ + b_g)``, the node-wise step and the nonlinearity (without it when ``act`` is
        ``"after"``), of shape (n, S, N)."""
        adjacency = self.node_conv.weight.squeeze(-1)  # (N, N)
        # (n, S, N) x (N, N)ᵀ -> (n, S, N); the bias b_g is per node, so it broadcasts over the last dim.
        h = torch.matmul(v, adjacency.t()) + self.node_conv.bias + v
        return self.act(h) if self.act_position == "between" else h

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """Args: v: node states of shape (n, S, N). Returns: the new node states, (n, S, N)."""
        # (S, S) x (n, S, N) -> (n, S, N)
        out = self.state_conv(self.relate(v))
        return out if self.act_position == "between" else self.act(out)


def glore_macs(
    input_shape: Sequence[int],
    num_nodes: int,
    num_state: int,
    *,
    gcn_layers: int = 1,
    fused: bool = False,
) -> dict[str, int]:
    """Multiply-adds of one GloRe unit's matrix products in each product order.

    Counts every product of the unit (the two input 1x1 convs, projection, graph convolution, reverse
    projection, extend conv); biases, the nonlinearity, normalisation and the residual add are
    elementwise and left out, as in the paper's GFLOPs.

    Args:
        input_shape: (n, C, *spatial) of the unit's input.
        num_nodes: N.
        num_state: S.
        gcn_layers: the number of stacked graph convolutions.
        fused: count a unit after :meth:`GloRe.fuse`, whose last state-wise weight W_g is folded into the
            extend conv (S*S*N fewer multiply-adds per sample).

    Returns:
        ``{"direct": ..., "reassociated": ...}``, multiply-adds for the whole batch.
    """
    if len(input_shape) < 3:
        raise ValueError(
            f"input_shape must be (n, C, *spatial) with at least one spatial dim, got {tuple(input_shape)}"
        )
    n, c = int(input_shape[0]), int(input_shape[1])
    length = int(math.prod(input_shape[2:]))
    s, k = num_state, num_nodes
    graph = gcn_layers * (k * k * s + s * s * k) - (s * s * k if fused else 0)
    projection = k * c * length  # B = W_b X, needed by both orders
    direct = projection + length * (s * c + s * k + s * k + c * s) + graph
    reassociated = projection + length * (c * k + c * k) + k * (s * c + c * s) + graph
    return {"direct": n * direct, "reassociated": n * reassociated}


def _affine(weight: torch.Tensor, bias: torch.Tensor | None, x_flat: torch.Tensor, n: int) -> torch.Tensor:
    """``b + W x`` for a (K, C) weight and a flat (n, C, L) input, as one batched product: (n, K, L)."""
    batched = weight.expand(n, -1, -1)  # (K, C) -> (n, K, C), a view
    if bias is None:
        # (n, K, C) x (n, C, L) -> (n, K, L)
        return torch.bmm(batched, x_flat)
    # (K, 1) + (n, K, C) x (n, C, L) -> (n, K, L)
    return torch.baddbmm(bias[:, None], batched, x_flat)


def _add_product(
    x_flat: torch.Tensor, addend: torch.Tensor | None, left: torch.Tensor, right: torch.Tensor
) -> torch.Tensor:
    """``x + b + left right`` for x (n, C, L), b (C, 1) or None, left (n, C, K), right (n, K, L): (n, C, L).

    The output has the input's dtype. The product runs in ``right``'s dtype, that of the unit's products: the
    parameters' dtype, or autocast's under autocast. When it is the input's, one product writes the result with
    ``x + b`` as its addend, so neither the bias nor the residual add makes its own pass over the output. That
    accumulation uses ``torch.baddbmm(..., out=)``, not ``baddbmm_``: autocast does not see in-place ops (it would
    hand them mixed dtypes) and ``torch.utils.flop_counter`` does not count them, while the ``out=`` form is
    counted as ``baddbmm``. Autograd refuses ``out=``, so with a gradient to compute the addend is copied instead.
    """
    dtype = right.dtype
    left = left.to(dtype)  # the direct order's left is the (folded) weight, not yet cast by autocast
    if x_flat.dtype != dtype:
        # Autocast with an input of another dtype (float32 into bfloat16 products): the product in the products'
        # dtype, the residual sum in the input's, which the output keeps.
        # b + (n, C, K) x (n, K, L) -> (n, C, L)
        product = torch.bmm(left, right) if addend is None else torch.baddbmm(addend.to(dtype), left, right)
        return x_flat + product.to(x_flat.dtype)
    if addend is None:
        # x + (n, C, K) x (n, K, L) -> (n, C, L)
        return torch.baddbmm(x_flat, left, right)
    addend = addend.to(dtype)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x_flat, addend, left, right)):
        # (x + b) + (n, C, K) x (n, K, L) -> (n, C, L)
        return torch.baddbmm(x_flat + addend, left, right)
    # x + b into a fresh contiguous (n, C, L) tensor: a channels_last input flattens to a (n, C, L) view with
    # channels innermost, and accumulating a product into that layout takes a slow CPU path (200x in bfloat16).
    acc = torch.add(x_flat, addend, out=torch.empty(x_flat.shape, dtype=dtype, device=x_flat.device))
    # Accumulate into the fresh x + b: (x + b) + (n, C, K) x (n, K, L) -> (n, C, L)
    return torch.baddbmm(acc, left, right, out=acc)


class GloRe(nn.Module):
    """Global Reasoning unit: project to a graph of N nodes, reason with a graph convolution, project back.

    ``out = X + BN(W_e (Z B))`` with ``B = W_b X + b_b`` (N soft masks over the L positions),
    ``V = (W_s X + b_s) Bᵀ`` (times 1/L when ``normalize``) and ``Z = GCN(V)``. The output norm's weight
    starts at zero, so a new unit is exactly the identity and can be inserted anywhere in a trained network.

    Args:
        channels: C, the input and output channels.
        num_nodes: N, the number of graph nodes; defaults to C/4 (the official ``num_mid``).
        num_state: S, the channels of each node state; defaults to C/2 (2N in the official code).
        normalize: scale the node states by 1/L so their size does not depend on the input's size
            (wanted when it changes between training and test); ``False`` reproduces the official unit.
        gcn_layers: how many graph convolutions to stack.
        zero_init: start the output norm's weight at zero, so the unit starts as the identity.
        order: ``"direct"`` computes ``(W_s X) Bᵀ`` and ``W_e (Z B)`` as the official code does,
            ``"reassociated"`` computes ``W_s (X Bᵀ)`` and ``(W_e Z) B``, ``"auto"`` picks per call
            whichever costs fewer multiply-adds for the input's channels and spatial size (never its batch
            size, so an export with a dynamic batch dimension works).
        norm_layer: normalisation class for the (n, C, L) branch output; BatchNorm1d with eps 1e-4 as
            in the official unit by default.
        act_layer: the nonlinearity inside the graph convolution.
        gcn_act: where the graph convolution puts its nonlinearity: ``"between"`` its two products (the official
            unit) or ``"after"`` the state-wise one (PaddleSeg's GloRe head).
        preact: the pre-activation unit of the paper's MXNet networks (and MindSpore's glore_resnet): the state
            and projection convolutions (without bias) each read ``relu(BN(X))`` of their own BatchNorm, and the
            extend convolution reads ``relu(BN(Y))``, with no norm after it: ``out = X + W_e relu(BN(Z B))``.
            ``zero_init`` zeroes W_e (a zero BatchNorm weight before a ReLU would get no gradient, and the unit
            would never train). The reverse projection is then always computed
            in the direct order (a nonlinearity separates W_e from Z B).
    """

    def __init__(
        self,
        channels: int,
        num_nodes: int | None = None,
        num_state: int | None = None,
        *,
        normalize: bool = True,
        gcn_layers: int = 1,
        zero_init: bool = True,
        order: str = "auto",
        norm_layer: Callable[[int], nn.Module] | None = None,
        act_layer: Callable[[], nn.Module] = nn.ReLU,
        gcn_act: str = "between",
        preact: bool = False,
    ) -> None:
        super().__init__()
        channels = check_positive_int("channels", channels)
        if num_nodes is None:
            num_nodes = max(1, channels // 4)
        if num_state is None:
            num_state = max(1, channels // 2)
        self.channels = channels
        self.num_nodes = check_positive_int("num_nodes", num_nodes)
        self.num_state = check_positive_int("num_state", num_state)
        self.gcn_layers = check_positive_int("gcn_layers", gcn_layers)
        if order not in PRODUCT_ORDERS:
            raise ValueError(f"order must be one of {PRODUCT_ORDERS}, got {order!r}")
        self.order = order
        self.normalize = bool(normalize)
        self.zero_init = bool(zero_init)
        self.preact = bool(preact)
        self.gcn_act = gcn_act
        self.fused = False
        norm_layer = norm_layer or partial(nn.BatchNorm1d, eps=1e-4)

        if self.preact:
            # relu(BN(X)) before the state and the projection convolutions, each with a norm of its own.
            self.norm_state = norm_layer(channels)
            self.norm_proj = norm_layer(channels)
            self.act = act_layer()
        # W_s, b_s: reduce C -> S state channels.
        self.conv_state = nn.Conv1d(channels, self.num_state, kernel_size=1, bias=not self.preact)
        # W_b, b_b: N projection maps over the L positions.
        self.conv_proj = nn.Conv1d(channels, self.num_nodes, kernel_size=1, bias=not self.preact)
        self.gcn = nn.Sequential(
            *[
                GraphConv(self.num_state, self.num_nodes, act_layer=act_layer, act=gcn_act)
                for _ in range(self.gcn_layers)
            ]
        )
        # Pre-activation: relu(BN(Y)) on the S channels before W_e, and no norm after it.
        self.norm_extend: nn.Module | None = norm_layer(self.num_state) if self.preact else None
        # W_e: extend S -> C. Gets the folded norm as its bias after fuse().
        self.conv_extend = nn.Conv1d(self.num_state, channels, kernel_size=1, bias=False)
        self.norm: nn.Module = nn.Identity() if self.preact else norm_layer(channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise every parameter; with ``zero_init`` the output norm weight is zero (identity unit)."""
        # Pre-activation: the norm is an Identity, so W_e is zeroed (a zero BatchNorm weight before the ReLU
        # would stop every gradient of the unit).
        reset_residual_block(self, self.norm, self.conv_extend.weight, self.zero_init)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, num_nodes={self.num_nodes}, num_state={self.num_state}, "
            f"normalize={self.normalize}, order={self.order!r}, fused={self.fused}"
            + (f", gcn_act={self.gcn_act!r}" if self.gcn_act != "between" else "")
            + (", preact=True" if self.preact else "")
        )

    def train(self, mode: bool = True) -> GloRe:
        """Set training mode; refused for a fused unit, which is inference-only (see :meth:`fuse`).

        Raises:
            RuntimeError: ``mode`` is true and the unit is fused (its norm and W_g are folded away, so training
                would train another function with no norm); the unit stays in eval mode.
        """
        if mode and self.fused:
            raise RuntimeError(
                "GloRe: a fused unit is inference-only (its BatchNorm and last W_g are folded into conv_extend) and "
                "cannot go back to training mode; train the unfused network (rebuild it, or reload its weights) "
                "and fuse again"
            )
        return super().train(mode)

    def macs(self, input_shape: Sequence[int]) -> dict[str, int]:
        """Multiply-adds of each product order for an input of ``input_shape`` (see :func:`glore_macs`).

        Raises:
            ValueError: ``input_shape`` is not (n, C, *spatial) with this unit's C channels.
        """
        shape = tuple(input_shape)
        if len(shape) < 3 or shape[1] != self.channels:
            raise ValueError(
                f"GloRe.macs: input_shape must be (n, {self.channels}, *spatial) for this unit of {self.channels} "
                f"channels, got {shape}"
            )
        folded_wg = self.fused and self.gcn_act == "between"  # W_g stays when the nonlinearity follows it
        return glore_macs(input_shape, self.num_nodes, self.num_state, gcn_layers=self.gcn_layers, fused=folded_wg)

    def resolve_order(self, input_shape: Sequence[int]) -> str:
        """The product order used for an input of ``input_shape``: ``order`` itself unless it is ``"auto"``.

        The choice reads the channels and spatial size only, never the batch size (both orders' costs scale with
        it alike), so a traced or exported network with a dynamic batch dimension takes one fixed order.
        """
        if self.order != "auto":
            return self.order
        counts = self.macs((1, *input_shape[1:]))  # per sample: the batch size must not enter the choice
        return "reassociated" if counts["reassociated"] < counts["direct"] else "direct"

    def _project(self, x_flat: torch.Tensor) -> torch.Tensor:
        n = x_flat.shape[0]
        weight = self.conv_proj.weight.squeeze(-1)  # (N, C, 1) -> (N, C)
        # b_b + (N, C) x (n, C, L) -> (n, N, L), one batched product that also reads a channels_last input as is
        return _affine(weight, self.conv_proj.bias, x_flat, n)

    def projection(self, x: torch.Tensor) -> torch.Tensor:
        """The N projection maps ``B = W_b X + b_b``, shaped like the input: (n, N, *spatial)."""
        check_feature_input(type(self).__name__, x, self.channels, self.conv_proj.weight.dtype)
        n = x.shape[0]
        # (n, C, *spatial) -> (n, C, L) -> (n, N, L) -> (n, N, *spatial)
        return self._project(x.flatten(2)).reshape(n, self.num_nodes, *x.shape[2:])

    def interaction(self, x_flat: torch.Tensor, proj: torch.Tensor, order: str) -> torch.Tensor:
        """Node states ``V = (W_s X + b_s) Bᵀ`` (over L when ``normalize``) for a flat input, (n, S, N).

        Args:
            x_flat: the input flattened to (n, C, L).
            proj: the projection maps B of shape (n, N, L).
            order: ``"direct"`` or ``"reassociated"``.
        """
        n = x_flat.shape[0]
        weight = self.conv_state.weight.squeeze(-1)  # (S, C, 1) -> (S, C)
        if order == "direct":
            # b_s + (S, C) x (n, C, L) -> (n, S, L)
            state = _affine(weight, self.conv_state.bias, x_flat, n)
            # (n, S, L) x (n, L, N) -> (n, S, N)
            nodes = torch.bmm(state, proj.transpose(1, 2))
        else:
            # (n, C, L) x (n, L, N) -> (n, C, N)
            pooled = torch.bmm(x_flat, proj.transpose(1, 2))
            if self.conv_state.bias is None:
                # (S, C) x (n, C, N) -> (n, S, N)
                nodes = torch.matmul(weight, pooled)
            else:
                # The bias b_s enters through the row sums of B: (b_s 1ᵀ) Bᵀ = b_s (B 1)ᵀ,
                # (S, 1) * (n, 1, N) -> (n, S, N); then + (S, C) x (n, C, N) -> (n, S, N).
                bias_term = self.conv_state.bias[:, None] * proj.sum(-1).unsqueeze(1)
                nodes = torch.baddbmm(bias_term, weight.expand(n, -1, -1), pooled)
        if self.normalize:
            nodes = nodes * (1.0 / x_flat.shape[-1])
        return nodes

    def _folded_extend(self) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """``(W, b)`` with ``norm(W_e Y) = W Y + b`` when the norm is affine (eval-mode BatchNorm, fused), else None.

        Folding costs C*S multiply-adds per call and saves the norm's pass over the (n, C, L) output.
        """
        weight = self.conv_extend.weight.squeeze(-1)  # (C, S, 1) -> (C, S)
        norm = self.norm
        if isinstance(norm, nn.Identity):
            return weight, self.conv_extend.bias
        if not isinstance(norm, nn.modules.batchnorm._BatchNorm) or self.conv_extend.bias is not None:
            return None
        if norm.training or norm.running_mean is None or norm.running_var is None:
            return None  # batch statistics: not an affine map known before the output exists
        scale = torch.rsqrt(norm.running_var + norm.eps)  # (C,)
        shift = -norm.running_mean * scale
        if norm.weight is not None:
            scale = scale * norm.weight
            shift = shift * norm.weight + norm.bias
        # diag(scale) (C, S) -> (C, S)
        return scale[:, None] * weight, shift

    def _branch(self, x_flat: torch.Tensor, add_input: bool) -> torch.Tensor:
        """``norm(W_e Z B)``, plus ``x_flat`` when ``add_input``, for a flat input (n, C, L); returns (n, C, L)."""
        if self.preact:
            return self._preact_branch(x_flat, add_input)
        n = x_flat.shape[0]
        order = self.resolve_order(x_flat.shape)
        proj = self._project(x_flat)  # (n, N, L)
        nodes = self.interaction(x_flat, proj, order)  # (n, S, N)
        relations = self.gcn(nodes)  # (n, S, N)
        folded = self._folded_extend()
        weight, bias = folded if folded is not None else (self.conv_extend.weight.squeeze(-1), self.conv_extend.bias)
        if order == "direct":
            # (n, S, N) x (n, N, L) -> (n, S, L): Y = Z B
            left, right = weight.expand(n, -1, -1), torch.bmm(relations, proj)  # (n, C, S), (n, S, L)
        else:
            # (C, S) x (n, S, N) -> (n, C, N): W_e Z, then times B below
            left, right = torch.matmul(weight, relations), proj  # (n, C, N), (n, N, L)
        addend = None if bias is None else bias[:, None]  # (C,) -> (C, 1)
        if folded is None:
            # b + (n, C, K) x (n, K, L) -> (n, C, L), then the norm with batch statistics (training) or a general norm
            out = torch.bmm(left, right) if addend is None else torch.baddbmm(addend, left, right)
            out = self.norm(out).to(x_flat.dtype)  # under autocast: the products' dtype back to the input's
            return x_flat + out if add_input else out
        if not add_input:
            # Affine norm folded into W: b + (n, C, K) x (n, K, L) -> (n, C, L)
            out = torch.bmm(left, right) if addend is None else torch.baddbmm(addend, left, right)
            return out.to(x_flat.dtype)
        return _add_product(x_flat, addend, left, right)

    def _preact_branch(self, x_flat: torch.Tensor, add_input: bool) -> torch.Tensor:
        """``W_e relu(BN(Z B))`` (plus ``x_flat``) of the pre-activation unit, for a flat input (n, C, L)."""
        assert self.norm_extend is not None
        n = x_flat.shape[0]
        order = self.resolve_order(x_flat.shape)
        x_state = self.act(self.norm_state(x_flat))  # (n, C, L)
        proj = self._project(self.act(self.norm_proj(x_flat)))  # (n, N, L)
        nodes = self.interaction(x_state, proj, order)  # (n, S, N)
        relations = self.gcn(nodes)  # (n, S, N)
        # (n, S, N) x (n, N, L) -> (n, S, L): Y = Z B, then relu(BN(Y))
        extended = self.act(self.norm_extend(torch.bmm(relations, proj)))
        weight = self.conv_extend.weight.squeeze(-1).expand(n, -1, -1)  # (C, S) -> (n, C, S)
        if not add_input:
            # (n, C, S) x (n, S, L) -> (n, C, L)
            return torch.bmm(weight, extended)
        # x + (n, C, S) x (n, S, L) -> (n, C, L)
        return x_flat + torch.bmm(weight, extended)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (n, C, *spatial), any number >= 1 of spatial dims. Returns: the same shape."""
        check_feature_input(type(self).__name__, x, self.channels, self.conv_proj.weight.dtype)
        n, c = x.shape[:2]
        x_flat = x.flatten(2)  # (n, C, *spatial) -> (n, C, L); a view, also for channels_last input
        out = self._branch(x_flat, add_input=True)
        return out.reshape(n, c, *x.shape[2:])  # (n, C, L) -> (n, C, *spatial)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """What the unit adds to its input, ``BN(W_e Y)``, shaped like the input."""
        check_feature_input(type(self).__name__, x, self.channels, self.conv_proj.weight.dtype)
        return self._branch(x.flatten(2), add_input=False).reshape(x.shape)

    @torch.no_grad()
    def fuse(self) -> GloRe:
        """Fold the eval-mode output norm and the last state-wise GCN weight W_g into the extend conv.

        ``BN(W_e W_g R) = (diag(g) W_e W_g) R + (beta - g mu)`` with ``g = gamma / sqrt(var + eps)``: no
        nonlinearity separates W_g, W_e and an eval-mode BatchNorm, so one (C, S) matrix and a bias replace
        them and deployment skips S*S*N multiply-adds per sample (the unfused eval-mode unit already folds
        the norm on every call, so neither form makes a separate pass over the output). Inference only. With
        ``gcn_act="after"`` the ReLU follows W_g, so only the norm is folded.

        Returns:
            self, fused in place.

        Raises:
            RuntimeError: the unit is in training mode, its norm is not a BatchNorm with running statistics, or it
                is a pre-activation unit (no norm after W_e).
        """
        if self.fused:
            return self
        if self.training:
            raise RuntimeError("GloRe.fuse() folds eval-mode statistics: call model.eval() first")
        if self.preact:
            raise RuntimeError("GloRe.fuse(): a pre-activation unit (preact=True) has no output norm to fold")
        norm = self.norm
        if not isinstance(norm, nn.modules.batchnorm._BatchNorm) or norm.running_var is None:
            raise RuntimeError(
                f"GloRe.fuse() needs a BatchNorm with running statistics as norm, got {type(norm).__name__}"
            )
        scale = torch.rsqrt(norm.running_var + norm.eps)
        shift = -norm.running_mean * scale
        if norm.weight is not None:
            scale = scale * norm.weight
            shift = shift * norm.weight + norm.bias
        last = self.gcn[-1]
        weight = self.conv_extend.weight.squeeze(-1)  # (C, S)
        fold_wg = self.gcn_act == "between"  # with the nonlinearity after W_g, W_g cannot be folded
        if fold_wg:
            # (C, S) x (S, S) -> (C, S), rows scaled by the norm
            weight = weight @ last.state_conv.weight.squeeze(-1)
        fused = nn.Conv1d(self.num_state, self.channels, kernel_size=1, bias=True).to(weight)
        fused.weight.copy_((scale[:, None] * weight).unsqueeze(-1))
        fused.bias.copy_(shift)
        self.conv_extend = fused
        if fold_wg:
            last.state_conv = nn.Identity()
        self.norm = nn.Identity()
        self.fused = True
        return self


def fuse(model: nn.Module) -> nn.Module:
    """Fuse every GloRe unit of ``model`` for inference (see :meth:`GloRe.fuse`); the model must be in eval mode.

    Returns:
        ``model``, changed in place.
    """
    for module in model.modules():
        if isinstance(module, GloRe):
            module.fuse()
    return model


# Official GloRe_Unit keys (facebookresearch/GloRe, network/global_reasoning_unit.py) -> glore keys.
_OFFICIAL_KEYS = {
    "conv_state.": "conv_state.",
    "conv_proj.": "conv_proj.",
    "gcn.conv1.": "gcn.0.node_conv.",
    "gcn.conv2.": "gcn.0.state_conv.",
    "conv_extend.": "conv_extend.",
    "blocker.": "norm.",
}


def convert_official_state_dict(
    state_dict: Mapping[str, torch.Tensor], *, strict: bool = True
) -> dict[str, torch.Tensor]:
    """Convert the state dict of an official ``GloRe_Unit`` (1D, 2D or 3D) for ``GloRe(C, normalize=False)``.

    Keys ``conv_state``, ``conv_proj``, ``gcn.conv1``, ``gcn.conv2``, ``conv_extend`` and ``blocker`` are
    renamed, and the 1x1(x1) convolution kernels are reshaped to (out, in, 1). Keys with a prefix (a unit
    inside a network, ``layer3.1.glore.conv_state.weight``) keep it. The official unit has N = ``num_mid``
    nodes and S = 2 ``num_mid`` state channels: build ``GloRe(num_in, num_mid, 2 * num_mid, normalize=False)``.

    Args:
        state_dict: the official unit's (or a network's) state dict.
        strict: raise on a key that belongs to no official unit; with ``False`` such keys (the rest of a
            network) pass through unchanged.

    Returns:
        A new state dict with glore's names and shapes.

    Raises:
        KeyError: with ``strict``, a key belongs to no official unit.
    """
    converted: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        for official, ours in _OFFICIAL_KEYS.items():
            head, sep, tail = key.rpartition(official)
            if sep and (head == "" or head.endswith(".")):
                new_key = head + ours + tail
                break
        else:
            if not strict:
                converted[key] = value
                continue
            raise KeyError(
                f"state_dict key {key!r} is not a key of an official GloRe_Unit ({', '.join(_OFFICIAL_KEYS)})"
            )
        if tail == "weight" and ours != "norm." and value.dim() > 2:
            # (out, in, 1[, 1[, 1]]) -> (out, in, 1)
            value = value.reshape(value.shape[0], value.shape[1], 1)
        converted[new_key] = value
    return converted
