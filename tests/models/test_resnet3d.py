"""The 3D ResNets of the GloRe video task: official structure, official checkpoints, 2D inflation, the contract.

The official network's layout (facebookresearch/GloRe, network/resnet{50,101}_3d_gcn_x5.py, read for its facts) is
restated here from issue 11 and docs/video.md: the official key set is built by hand from those facts and a reference
forward is written from the official math with torch.nn.functional, independently of glore's modules.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from glore.layers import GloRe, NonLocal
from glore.models import (
    ResNet,
    ResNet3D,
    convert_official_video_state_dict,
    create_model,
    inflate_2d_state_dict,
    inflate_pretrained,
)
from glore.models._spec import parse_glore_spec
from glore.models.resnet3d import official_video_glore_spec

R50_UNITS = {3: [1, 3], 4: [1, 3, 5]}
R101_UNITS = {3: [1, 3], 4: [6, 12, 18]}
EPS = 1e-4  # every official BatchNorm


# ----------------------------------------------------------------------------------------------------------------
# The official network, from its facts.


def official_kt(stage: int, block: int) -> int:
    """Temporal kernel of conv_m1: 3 in all res2 blocks, odd res3/res4 blocks, res5 block 2; 1 elsewhere."""
    if stage == 2 or (stage in (3, 4) and block % 2 == 1) or (stage == 5 and block == 2):
        return 3
    return 1


def official_state(
    depths: tuple[int, ...],
    units: dict[int, list[int]],
    *,
    widths: tuple[int, ...] = (64, 128, 256, 512),
    stem: int = 32,
    num_classes: int = 400,
    dims: int = 3,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """A random state dict with the official key names and shapes (dims=2: the official "lite" ImageNet layout)."""
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}

    def conv(key: str, out: int, inp: int, kt: int, k: int) -> None:
        shape = (out, inp, kt, k, k) if dims == 3 else (out, inp, k, k)
        state[key + ".weight"] = torch.randn(shape, generator=gen) * (2.0 / (inp * kt * k * k)) ** 0.5

    def bn(key: str, c: int) -> None:
        state[key + ".weight"] = 1 + 0.2 * torch.randn(c, generator=gen)
        state[key + ".bias"] = 0.2 * torch.randn(c, generator=gen)
        state[key + ".running_mean"] = 0.2 * torch.randn(c, generator=gen)
        state[key + ".running_var"] = torch.rand(c, generator=gen) + 0.5
        state[key + ".num_batches_tracked"] = torch.tensor(1234)

    conv("conv1.conv", stem, 3, 3, 5)
    bn("conv1.bn", stem)
    in_chs = stem
    for stage, depth, mid in zip((2, 3, 4, 5), depths, widths, strict=True):
        out = 4 * mid
        for b in range(1, depth + 1):
            p = f"conv{stage}.B{b:02d}"
            cin = in_chs if b == 1 else out
            bn(f"{p}.conv_m1.bn", cin)
            conv(f"{p}.conv_m1.conv", mid, cin, official_kt(stage, b), 1)
            bn(f"{p}.conv_m2.bn", mid)
            conv(f"{p}.conv_m2.conv", mid, mid, 1, 3)
            bn(f"{p}.conv_m3.bn", mid)
            conv(f"{p}.conv_m3.conv", out, mid, 1, 1)
            if b == 1:
                bn(f"{p}.conv_w1.bn", cin)
                conv(f"{p}.conv_w1.conv", out, cin, 1, 1)
            if b in units.get(stage, []):
                m = mid  # official num_mid: N = m = C/4 nodes, S = 2m = C/2 states
                q = f"{p}_extra"
                conv(f"{q}.conv_state", 2 * m, out, 1, 1)
                state[f"{q}.conv_state.bias"] = 0.1 * torch.randn(2 * m, generator=gen)
                conv(f"{q}.conv_proj", m, out, 1, 1)
                state[f"{q}.conv_proj.bias"] = 0.1 * torch.randn(m, generator=gen)
                state[f"{q}.gcn.conv1.weight"] = torch.randn(m, m, 1, generator=gen) / m**0.5
                state[f"{q}.gcn.conv1.bias"] = 0.1 * torch.randn(m, generator=gen)
                state[f"{q}.gcn.conv2.weight"] = torch.randn(2 * m, 2 * m, 1, generator=gen) / (2 * m) ** 0.5
                conv(f"{q}.conv_extend", out, 2 * m, 1, 1)
                bn(f"{q}.blocker", out)
        in_chs = out
    bn("tail.bn", in_chs)
    state["classifier.weight"] = torch.randn(num_classes, in_chs, generator=gen) / in_chs**0.5
    state["classifier.bias"] = 0.1 * torch.randn(num_classes, generator=gen)
    return state


def reference_forward(
    state: dict[str, torch.Tensor], x: torch.Tensor, *, calibrate: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The official network's eval-mode forward from its math: (features before pooling, logits).

    Works for the 3D network (x of shape (n, 3, T, H, W)) and the 2D "lite" one (x of shape (n, 3, H, W)). The
    official head is AvgPool3d((4, 7, 7)), the whole map at 8x224x224; here the mean over the whole map.
    ``calibrate`` first sets each unit's output-norm statistics to those of this input (as a trained network's
    would be): an unnormalised unit is cubic in its input, and random statistics would let it blow up.
    """
    dims = x.dim() - 2
    conv = F.conv3d if dims == 3 else F.conv2d

    def bn(h: torch.Tensor, p: str) -> torch.Tensor:
        s = state
        return F.batch_norm(
            h, s[p + ".running_mean"], s[p + ".running_var"], s[p + ".weight"], s[p + ".bias"], False, 0.0, EPS
        )

    def bn_ac_conv(h: torch.Tensor, p: str, stride: tuple[int, ...]) -> torch.Tensor:
        w = state[p + ".conv.weight"]
        return conv(F.relu(bn(h, p + ".bn")), w, stride=stride, padding=tuple(k // 2 for k in w.shape[2:]))

    def unit(h: torch.Tensor, p: str) -> torch.Tensor:
        n, c = h.shape[:2]
        flat = h.flatten(2)  # (n, C, L)
        ws = state[p + ".conv_state.weight"].flatten(1)  # (S, C)
        wb = state[p + ".conv_proj.weight"].flatten(1)  # (N, C)
        xs = torch.einsum("sc,ncl->nsl", ws, flat) + state[p + ".conv_state.bias"][:, None]
        xb = torch.einsum("kc,ncl->nkl", wb, flat) + state[p + ".conv_proj.bias"][:, None]
        v = torch.einsum("nsl,nkl->nsk", xs, xb)  # not normalised
        a = state[p + ".gcn.conv1.weight"][..., 0]  # (N, N): a 1D conv over the node dim
        hh = torch.einsum("jk,nsk->nsj", a, v) + state[p + ".gcn.conv1.bias"] + v
        z = torch.einsum("ts,nsk->ntk", state[p + ".gcn.conv2.weight"][..., 0], F.relu(hh))
        y = torch.einsum("nsk,nkl->nsl", z, xb)
        e = torch.einsum("cs,nsl->ncl", state[p + ".conv_extend.weight"].flatten(1), y)
        if calibrate:
            state[p + ".blocker.running_mean"] = e.mean((0, 2))
            state[p + ".blocker.running_var"] = e.var((0, 2))
        return h + bn(e, p + ".blocker").reshape(n, c, *h.shape[2:])

    stem_w = state["conv1.conv.weight"]
    h = conv(x, stem_w, stride=(1, 2, 2)[-dims:], padding=tuple(k // 2 for k in stem_w.shape[2:]))
    h = F.relu(bn(h, "conv1.bn"))
    h = F.max_pool3d(h, (1, 3, 3), (1, 2, 2), (0, 1, 1)) if dims == 3 else F.max_pool2d(h, 3, 2, 1)
    for stage in (2, 3, 4, 5):
        depth = sum(1 for k in state if re.fullmatch(rf"conv{stage}\.B\d+\.conv_m1\.conv\.weight", k))
        for b in range(1, depth + 1):
            p = f"conv{stage}.B{b:02d}"
            stride = (1, 1, 1)
            if b == 1 and stage > 2:
                stride = (2, 2, 2) if stage == 3 else (1, 2, 2)
            stride = stride[-dims:]
            r = bn_ac_conv(h, p + ".conv_m1", (1,) * dims)
            r = bn_ac_conv(r, p + ".conv_m2", stride)
            r = bn_ac_conv(r, p + ".conv_m3", (1,) * dims)
            h = r + (bn_ac_conv(h, p + ".conv_w1", stride) if b == 1 else h)
            if f"{p}_extra.conv_state.weight" in state:
                h = unit(h, p + "_extra")
    h = F.relu(bn(h, "tail.bn"))
    logits = F.linear(h.flatten(2).mean(-1), state["classifier.weight"], state["classifier.bias"])
    return h, logits


# ----------------------------------------------------------------------------------------------------------------
# Official checkpoints.


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "depths", "units", "glore"),
    [
        ("resnet50_3d", (3, 4, 6, 3), R50_UNITS, "res3:2,res4:3"),
        ("resnet101_3d", (3, 4, 23, 3), R101_UNITS, {"res3": [1, 3], "res4": [6, 12, 18]}),
    ],
)
def test_official_checkpoint_converts_loads_strictly_and_computes_the_same(name, depths, units, glore):
    state = official_state(depths, units)
    model = create_model(name, num_classes=400, glore=glore, glore_args={"normalize": False}).eval()
    released = {"epoch": 0, "state_dict": {f"module.{k}": v for k, v in state.items()}}  # the released form
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}  # PyTorch < 0.4.1 files
    converted = convert_official_video_state_dict(released)
    assert len(converted) == len(state) == len(model.state_dict())
    model.load_state_dict(converted, strict=True)
    assert official_video_glore_spec(released) == {f"res{s}": b for s, b in units.items()}
    for variant in (state, old):
        create_model(name, num_classes=400, glore=glore, glore_args={"normalize": False}).load_state_dict(
            convert_official_video_state_dict(variant), strict=True
        )
    # Float64: the unnormalised units are cubic in their input, which float32 rounding would show.
    state = {k: v.double() if v.is_floating_point() else v for k, v in state.items()}
    model.double()
    x = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        reference_forward(state, x, calibrate=True)
        model.load_state_dict(convert_official_video_state_dict(state), strict=True)  # the calibrated statistics
        features, logits = reference_forward(state, x)
        assert features.shape == (2, 2048, 2, 1, 1)
        torch.testing.assert_close(model.forward_features(x), features, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(model(x), logits, rtol=1e-9, atol=1e-9)
    # The units matter: the same weights without them give other logits.
    plain = create_model(name, num_classes=400).double().eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if ".glore" not in k}, strict=True)
    with torch.no_grad():
        assert not torch.allclose(plain(x), logits, rtol=1e-3, atol=1e-3)


def test_converted_names_follow_the_official_ones():
    state = official_state((1, 1, 2, 2), {3: [1], 4: [2]}, widths=(2, 4, 8, 16), stem=4, num_classes=3)
    out = convert_official_video_state_dict(state)
    assert torch.equal(out["conv1.weight"], state["conv1.conv.weight"])
    assert torch.equal(out["bn1.running_var"], state["conv1.bn.running_var"])
    assert torch.equal(out["layer3.1.bn1.weight"], state["conv4.B02.conv_m1.bn.weight"])
    assert torch.equal(out["layer3.1.conv3.weight"], state["conv4.B02.conv_m3.conv.weight"])
    assert torch.equal(out["layer2.0.downsample.norm.bias"], state["conv3.B01.conv_w1.bn.bias"])
    assert torch.equal(out["layer2.0.downsample.conv.weight"], state["conv3.B01.conv_w1.conv.weight"])
    assert torch.equal(out["layer3.glore1.gcn.0.node_conv.weight"], state["conv4.B02_extra.gcn.conv1.weight"])
    assert out["layer2.glore1.conv_state.weight"].shape == (8, 16, 1)  # (S, C, 1, 1, 1) -> (S, C, 1)
    assert torch.equal(out["layer3.glore1.norm.weight"], state["conv4.B02_extra.blocker.weight"])
    assert torch.equal(out["final_norm.bias"], state["tail.bn.bias"])
    assert torch.equal(out["fc.weight"], state["classifier.weight"])


def test_convert_rejects_what_is_not_an_official_checkpoint():
    with pytest.raises(ValueError, match=r"not keys of the official GloRe video network.*layer1\.0\.conv1\.weight"):
        convert_official_video_state_dict({"layer1.0.conv1.weight": torch.zeros(1)})
    with pytest.raises(TypeError, match="must be a dict"):
        convert_official_video_state_dict([1, 2])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="values must be tensors"):
        convert_official_video_state_dict({"conv1.conv.weight": [0.0]})


# ----------------------------------------------------------------------------------------------------------------
# Structure.


def _expected_blocks(depths: tuple[int, ...]) -> list[tuple[str, int, tuple, tuple, tuple]]:
    """(stage module, block index, conv1 kernel, conv2 stride, shortcut stride or ()) per block, from the facts."""
    rows = []
    for s, (module, depth) in enumerate(zip(("layer1", "layer2", "layer3", "layer4"), depths, strict=True)):
        for i in range(depth):
            stride = ((1, 1, 1), (2, 2, 2), (1, 2, 2), (1, 2, 2))[s] if i == 0 else (1, 1, 1)
            rows.append((module, i, (official_kt(s + 2, i + 1), 1, 1), stride, stride if i == 0 else ()))
    return rows


def test_structure_of_r50_is_the_official_one():
    model = create_model("resnet50_3d", num_classes=400, glore="res3:2,res4:3", glore_args={"normalize": False})
    # Literal pins of the temporal kernels, then every block against the facts.
    kernels = [[b.conv1.kernel_size[0] for b in getattr(model, f"layer{i}").blocks] for i in range(1, 5)]
    assert kernels == [[3, 3, 3], [3, 1, 3, 1], [3, 1, 3, 1, 3, 1], [1, 3, 1]]
    _check_structure(model, (3, 4, 6, 3))
    assert [n for n, _ in model.layer2.named_children()] == ["0", "glore1", "1", "2", "glore2", "3"]
    assert [n for n, _ in model.layer3.named_children()] == ["0", "glore1", "1", "2", "glore2", "3", "4", "glore3", "5"]
    assert model.glore_spec() == {"res3": (1, 3), "res4": (1, 3, 5)}


def test_structure_of_r101_is_the_official_one():
    model = create_model("resnet101_3d", glore={"res3": [1, 3], "res4": [6, 12, 18]}, glore_args={"normalize": False})
    kernels = [b.conv1.kernel_size[0] for b in model.layer3.blocks]
    assert kernels == [3, 1] * 11 + [3]
    _check_structure(model, (3, 4, 23, 3))
    assert model.glore_spec() == {"res3": (1, 3), "res4": (6, 12, 18)}
    names = [n for n, _ in model.layer3.named_children()]
    assert [names[names.index(f"glore{k}") - 1] for k in (1, 2, 3)] == ["5", "11", "17"]  # after blocks 6, 12, 18


def _check_structure(model: ResNet3D, depths: tuple[int, ...]) -> None:
    assert (model.conv1.kernel_size, model.conv1.stride, model.conv1.padding) == ((3, 5, 5), (1, 2, 2), (1, 2, 2))
    assert model.conv1.out_channels == 32 and model.bn1.eps == EPS
    pool = model.maxpool
    assert (pool.kernel_size, pool.stride, pool.padding) == ((1, 3, 3), (1, 2, 2), (0, 1, 1))
    for module, i, kernel, stride, short in _expected_blocks(depths):
        block = getattr(model, module)[i]
        assert block.conv1.kernel_size == kernel and block.conv1.padding == (kernel[0] // 2, 0, 0), (module, i)
        assert block.conv1.stride == (1, 1, 1) and block.conv3.kernel_size == (1, 1, 1), (module, i)
        assert (block.conv2.kernel_size, block.conv2.stride, block.conv2.padding) == ((1, 3, 3), stride, (0, 1, 1))
        if short:
            assert block.downsample.conv.stride == short and block.downsample.conv.kernel_size == (1, 1, 1)
            assert block.downsample.norm.num_features == block.bn1.num_features  # its own BN on the block input
        else:
            assert block.downsample is None
        assert {block.bn1.eps, block.bn2.eps, block.bn3.eps} == {EPS}
    widths = [
        (getattr(model, f"layer{i}")[0].conv2.out_channels, model.feature_info[i - 1]["num_chs"]) for i in range(1, 5)
    ]
    assert widths == [(64, 256), (128, 512), (256, 1024), (512, 2048)]
    assert model.final_norm.eps == EPS and model.drop_rate == 0.5
    for unit in (m for m in model.modules() if isinstance(m, GloRe)):
        assert (unit.num_nodes, unit.num_state, unit.normalize) == (unit.channels // 4, unit.channels // 2, False)
    with torch.device("meta"):  # shapes only: the official 8x224x224 clip
        features = create_model(**model.model_config).forward_features(torch.empty(1, 3, 8, 224, 224))
    assert features.shape == (1, 2048, 4, 7, 7)  # the official AvgPool3d((4, 7, 7)) covers it


def test_insertion_specs_give_the_official_positions():
    # ceil((k - 1/2) D / m): 2 units in 4 blocks after 1, 3; 3 in 6 after 1, 3, 5 (the official R50).
    assert parse_glore_spec("res3:2,res4:3", {"res3": 4, "res4": 6}) == {"res3": (1, 3), "res4": (1, 3, 5)}
    # R101's units after res4 blocks 6, 12, 18 are not the even spread of 3 in 23 (4, 12, 20): given explicitly.
    assert parse_glore_spec("res4:3", {"res4": 23}) == {"res4": (4, 12, 20)}
    assert parse_glore_spec({"res3": [1, 3], "res4": [6, 12, 18]}, {"res3": 4, "res4": 23})["res4"] == (6, 12, 18)


def test_nonlocal_blocks_go_at_the_same_positions():
    glore = create_model("resnet_small_3d", depths=(1, 4, 6, 1), glore="res3:2,res4:3")
    nonlocal_ = create_model(
        "resnet_small_3d", depths=(1, 4, 6, 1), glore="res3:2,res4:3", glore_args={"block": "nonlocal"}
    )
    assert nonlocal_.glore_spec() == glore.glore_spec() == {"res3": (1, 3), "res4": (1, 3, 5)}
    for stage in ("layer2", "layer3"):
        names = [n for n, _ in getattr(nonlocal_, stage).named_children()]
        assert names == [n for n, _ in getattr(glore, stage).named_children()]
        units = [m for n, m in getattr(nonlocal_, stage).named_children() if n.startswith("glore")]
        assert units and all(isinstance(u, NonLocal) for u in units)
    assert not any(isinstance(m, GloRe) for m in nonlocal_.modules())
    nonlocal_.eval()
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        for unit in (m for m in nonlocal_.modules() if isinstance(m, NonLocal)):
            torch.nn.init.normal_(unit.norm.weight)  # active blocks, so the 3-D attention really runs
        assert nonlocal_(x).shape == (1, 400)  # num_classes not given: the video network's default


# ----------------------------------------------------------------------------------------------------------------
# Inflation.


def _identical_frames(image: torch.Tensor, frames: int) -> torch.Tensor:
    return image.unsqueeze(2).expand(-1, -1, frames, -1, -1).contiguous()  # (n, C, H, W) -> (n, C, T, H, W)


# With zero temporal padding, output frame t of a (3, 1, 1) convolution equals the 2D response only where all three
# taps fall inside the clip; every such convolution widens the band of inexact frames by one (two input frames per
# step after res3's temporal stride 2). For one block per stage (kt = 3 in the stem, res2, res3, res4; 1 in res5),
# output frame j reads input frames 2j - 5 .. 2j + 5: with 12 frames only j = 3 is free of the clip's boundary,
# while j = 0 (which reads padding) must differ. That is the comparison the math supports.
SMALL = dict(depths=(1, 1, 1, 1), widths=(4, 8, 16, 32), stem_width=8)
FRAMES, EXACT, BOUNDARY = 12, 3, 0


def test_inflated_torchvision_weights_give_the_2d_features_on_identical_frames():
    net2d = ResNet(block="bottleneck", **SMALL, num_classes=5).double().eval()
    for m in net2d.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial eval statistics
            torch.nn.init.uniform_(m.running_mean, -0.2, 0.2)
            torch.nn.init.uniform_(m.running_var, 0.5, 1.5)
            torch.nn.init.uniform_(m.bias, -0.2, 0.2)
    state2d = net2d.state_dict()
    image = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        feat2d = net2d.forward_features(image)
        # 1) The official temporal kernels: exact on the frame the boundary does not reach.
        net3d = ResNet3D(**SMALL, num_classes=5, preact=False, stem_kernel=(3, 7, 7)).double().eval()
        inflate_pretrained(net3d, state2d)
        assert torch.equal(net3d.layer1[0].conv1.weight[:, :, 1], state2d["layer1.0.conv1.weight"] / 3)
        feat3d = net3d.forward_features(_identical_frames(image, FRAMES))
        assert feat3d.shape == (2, 32 * 4, FRAMES // 2, 1, 1)
        torch.testing.assert_close(feat3d[:, :, EXACT], feat2d, rtol=1e-10, atol=1e-10)
        assert not torch.allclose(feat3d[:, :, BOUNDARY], feat2d, rtol=1e-3, atol=1e-3)
        # 2) Temporal kernels of 1 everywhere: every frame, so the pooled features and logits, equal the 2D ones.
        flat = dict(temporal_kernels=((1,), (1,), (1,), (1,)), stem_kernel=(1, 7, 7))
        net3d = ResNet3D(**SMALL, **flat, num_classes=5, preact=False).double().eval()
        inflate_pretrained(net3d, state2d)
        clip = _identical_frames(image, 5)
        torch.testing.assert_close(
            net3d.forward_head(net3d.forward_features(clip), pre_logits=True),
            net2d.forward_head(feat2d, pre_logits=True),
            rtol=1e-10,
            atol=1e-10,
        )
        torch.testing.assert_close(net3d(clip), net2d(image), rtol=1e-10, atol=1e-10)


def test_inflated_lite_weights_give_the_official_2d_network_features_on_identical_frames():
    lite = {
        k: v.double()
        for k, v in official_state((1, 1, 1, 1), {}, widths=(4, 8, 16, 32), stem=8, num_classes=1000, dims=2).items()
    }
    net3d = ResNet3D(**SMALL, num_classes=6).double().eval()
    with pytest.warns(UserWarning, match="another number of classes"):  # 1000 ImageNet classes, 6 here
        inflate_pretrained(net3d, {"state_dict": lite})
    assert torch.equal(net3d.conv1.weight.sum(2), lite["conv1.conv.weight"])  # (32, 3, 3, 5, 5): w / 3 three times
    image = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        feat2d, _ = reference_forward(lite, image)
        feat3d = net3d.forward_features(_identical_frames(image, FRAMES))
    torch.testing.assert_close(feat3d[:, :, EXACT], feat2d, rtol=1e-10, atol=1e-10)
    assert not torch.allclose(feat3d[:, :, BOUNDARY], feat2d, rtol=1e-3, atol=1e-3)


def test_a_torchvision_resnet50_inflates_into_the_post_activation_r50_3d():
    # torchvision's ResNet-50 key set and shapes (the fixture the 2D weight tests use), random values.
    shapes = json.loads((Path(__file__).parent / "torchvision_resnet_keys.json").read_text())["resnet50"]
    gen = torch.Generator().manual_seed(0)
    state = {k: torch.randn(s, generator=gen) for k, s in shapes.items() if not k.endswith("num_batches_tracked")}
    model = create_model("resnet50_3d", num_classes=400, preact=False, stem_width=64, stem_kernel=(3, 7, 7))
    with pytest.warns(UserWarning, match="another number of classes"):
        inflate_pretrained(model, state)
    own = model.state_dict()
    for key, value in state.items():
        if key.startswith("fc."):
            continue
        kernel = own[key].sum(2) if own[key].dim() == 5 else own[key]  # T slices of w / T sum back to w
        torch.testing.assert_close(kernel, value, rtol=1e-6, atol=1e-6, msg=key)
    assert own["layer2.0.conv1.weight"].shape[2] == 3 and own["layer2.1.conv1.weight"].shape[2] == 1


def test_inflation_names_the_layout_that_fits():
    tv = ResNet(block="bottleneck", **SMALL).state_dict()
    with pytest.raises(ValueError, match=r"torchvision 2D weights do not fit ResNet3D.*preact=False"):
        inflate_2d_state_dict(tv, ResNet3D(**SMALL))  # the pre-activation network has no bn3 after conv3 ...
    lite = official_state((1, 1, 1, 1), {}, widths=(4, 8, 16, 32), stem=8, dims=2)
    with pytest.raises(ValueError, match=r"official lite 2D weights do not fit.*pre-activation"):
        inflate_2d_state_dict(lite, ResNet3D(**SMALL, preact=False))


# ----------------------------------------------------------------------------------------------------------------
# Any clip, and the model contract.


@pytest.mark.parametrize("frames", [1, 2, 3, 5, 8])
def test_any_number_of_frames_and_any_size(frames):
    model = create_model("resnet_small_3d", num_classes=7, glore="res3:1,res4:1").eval()
    for unit in (m for m in model.modules() if isinstance(m, GloRe)):
        torch.nn.init.normal_(unit.norm.weight)
    x = torch.randn(2, 3, frames, 36, 44)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape == (2, 256, (frames + 1) // 2, 2, 2)
        assert model(x).shape == (2, 7)


def test_model_contract_and_round_trips(tmp_path):
    kwargs = dict(temporal_kernels=[[3], [1], [3], [1]], preact=False, drop_rate=0.2)
    model = create_model("resnet_small_3d", num_classes=4, glore="res4:1", glore_args={"normalize": False}, **kwargs)
    config = model.model_config
    assert config == {
        "name": "resnet_small_3d",
        "num_classes": 4,
        "glore": {"res4": [1]},
        "glore_args": {"normalize": False},
        **kwargs,
    }
    again = create_model(**config)
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    assert [i["stage"] for i in model.feature_info] == ["res2", "res3", "res4", "res5"]
    assert [(i["num_chs"], i["reduction"], i["temporal_reduction"]) for i in model.feature_info] == [
        (32, 4, 1),
        (64, 8, 2),
        (128, 16, 2),
        (256, 32, 2),
    ]
    model.eval()
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        pooled = model.forward_head(model.forward_features(x), pre_logits=True)
        assert pooled.shape == (1, model.num_features)
        logits = model(x)
    model.save_pretrained(tmp_path / "m")
    loaded = create_model(pretrained=tmp_path / "m").eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), logits)
    model.reset_classifier(9)
    assert model(x).shape == (1, 9) and model.model_config["num_classes"] == 9
    model.reset_classifier(0)
    assert model(x).shape == (1, model.num_features)


def test_bad_input_is_named():
    model = create_model("resnet_small_3d")
    with pytest.raises(ValueError, match=r"clip batch \(n, C, T, H, W\).*4-d"):
        model(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="temporal_kernels must give one odd kernel per block"):
        ResNet3D(depths=(1, 1, 1, 1), temporal_kernels=[[3], [3], [3]])
    with pytest.raises(ValueError, match="temporal kernels must be odd"):
        ResNet3D(depths=(1, 1, 1, 1), temporal_kernels=[[2], [3], [3], [1]])
    with pytest.raises(ValueError, match="stem_kernel must be"):
        ResNet3D(stem_kernel=(3, 5))
    with pytest.raises(TypeError, match="did you mean 'drop_rate'"):
        create_model("resnet50_3d", dropout=0.5)


# ----------------------------------------------------------------------------------------------------------------
# glore profile on the video networks.


def test_profile_counts_the_video_network_and_its_units(capsys):
    from glore.cli import main
    from glore.layers import glore_macs
    from glore.tools.profile import profile

    size = (4, 64, 64)
    prof = profile("resnet_small_3d", glore="res3:1,res4:1", glore_args={"order": "direct"}, input_size=size)
    # An independent count: every Conv3d and Linear from its real output shape, plus each unit's direct-order
    # products from glore_macs on the unit's real input shape.
    model = create_model("resnet_small_3d", glore="res3:1,res4:1", glore_args={"order": "direct"}).eval()
    total = 0

    def conv_hook(module, args, out):
        nonlocal total
        if isinstance(module, torch.nn.Conv3d):
            # (Cout, Cin/g, kt, kh, kw) weights applied at each output position
            total += out.numel() * module.weight[0].numel()
        else:
            total += out.numel() * module.in_features

    def unit_hook(module, args, out):
        nonlocal total
        total += glore_macs(args[0].shape, module.num_nodes, module.num_state)["direct"]

    for m in model.modules():
        if isinstance(m, torch.nn.Conv3d | torch.nn.Linear):
            m.register_forward_hook(conv_hook)
        elif isinstance(m, GloRe):
            m.register_forward_hook(unit_hook)
    with torch.no_grad():
        model(torch.zeros(1, 3, *size))
    assert prof.total_macs == total and prof.input_size == size
    assert prof.total_params == sum(p.numel() for p in model.parameters())
    # The command of the issue, on the small network: the same count, the clip size printed.
    argv = ["profile", "resnet_small_3d", "--glore", "res3:1,res4:1", "--order", "direct", "--input-size", "4", "64"]
    assert main([*argv, "64", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total_macs"] == total and data["input_size"] == list(size)
    assert main([*argv, "64"]) == 0
    assert "resnet_small_3d, input 4x64x64" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"input_size must be a side or \(T, H, W\)"):
        profile("resnet_small_3d", input_size=(64, 64))
