"""The TDN model family: shapes, each module against a direct reference of its equation,
the split used by the streaming cache, BN folding, precision, and MAC counts."""
import pytest
import torch
import torch.nn.functional as F

from official_fixture import official_fixture  # noqa: F401 (pytest fixture)
from random_weights import randomise_bn
from tdn.api import load_model
from tdn.info import model_info
from tdn.inference import FusedGateLongTermTDM, fold_batchnorm, prepare_for_inference
from tdn.meta import ModelMeta
from tdn.model import (ARCHS, MODELS, VARIANTS, LongTermTDM, TDNConfig, TemporalConv, create_model, fuse_upsampled,
                       half_resolution)

torch.manual_seed(0)


def _clip(n=1, t=8, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, t, 5, 3, size, size, generator=g)


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_shapes_every_arch_and_variant(arch, variant):
    model = create_model(arch, num_segments=8, num_classes=7, variant=variant).eval()
    with torch.no_grad():
        out = model(_clip(n=2, t=8, size=64))
    assert out.shape == (2, 7) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    has_stdm, has_ltdm, has_tconv = VARIANTS[variant]
    names = {type(m).__name__ for m in model.modules()}
    assert ("ShortTermTDM" in names) == has_stdm
    assert ("LongTermTDM" in names) == has_ltdm
    assert ("TemporalConv" in names) == has_tconv


@pytest.mark.parametrize("t", [8, 16])
def test_segment_counts(t):
    model = create_model("resnet18", num_segments=t, num_classes=5).eval()
    with torch.no_grad():
        assert model(_clip(t=t)).shape == (1, 5)
    assert model.cfg.fusion == ((0.5, 0.5) if t == 8 else (0.75, 0.25))
    with pytest.raises(ValueError, match="built for T=%d" % t):
        model(_clip(t=t // 2))


def test_bad_input_shapes_name_the_expected_layout():
    model = create_model("resnet18", num_segments=4, num_classes=3).eval()
    with pytest.raises(ValueError, match=r"\(N, T, L, 3, H, W\)"):
        model(torch.zeros(1, 4 * 15, 32, 32))
    with pytest.raises(ValueError, match="5 frames per segment"):
        model(torch.zeros(1, 4, 3, 3, 32, 32))
    with pytest.raises(ValueError, match="unknown arch"):
        TDNConfig(arch="resnet3")


def test_builders_are_registered_by_arch_and_keyword_only():
    assert set(MODELS) == set(ARCHS)
    with torch.device("meta"):
        model = create_model("resnet34", num_segments=4, num_classes=3, variant="tsm", meta=ModelMeta(labels=list("abc")))
        with pytest.raises(TypeError):
            MODELS["resnet18"](4)  # keyword-only
    assert (model.cfg.arch, model.cfg.num_segments, model.cfg.variant) == ("resnet34", 4, "tsm")
    assert model.meta.labels == ["a", "b", "c"]  # declared with the model, not attached later
    with pytest.raises(ValueError, match="unknown arch 'resnet3'; expected one of resnet18"):
        create_model("resnet3")


def test_temporal_conv_equals_depthwise_conv1d_over_time():
    n, t, c, h, w = 2, 8, 16, 3, 5
    module = TemporalConv(c, t)
    module.weight.data.normal_()
    x = torch.randn(n * t, c, h, w)
    # Reference: permute to (N*H*W, C, T) and run nn.functional.conv1d with zero padding.
    xt = x.view(n, t, c, h, w).permute(0, 3, 4, 2, 1).reshape(n * h * w, c, t)
    ref = F.conv1d(xt, module.weight, padding=1, groups=c)
    ref = ref.view(n, h, w, c, t).permute(0, 4, 3, 1, 2).reshape(n * t, c, h, w)
    torch.testing.assert_close(module(x), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(module(x.contiguous(memory_format=torch.channels_last)), ref, rtol=1e-5, atol=1e-5)
    # the form ONNX exports run: neighbours along N*T, zeroed across the two windows' edge
    torch.testing.assert_close(module._forward_by_shifts(x), ref, rtol=1e-5, atol=1e-5)
    x[t - 1] = float("inf")  # the first window's last segment overflows: the second window is untouched
    assert module._forward_by_shifts(x)[t:].isfinite().all()


def test_temporal_conv_starts_as_a_shift():
    t, c = 4, 16
    module = TemporalConv(c, t, fold_div=8)
    x = torch.arange(t, dtype=torch.float32).view(t, 1, 1, 1).expand(t, c, 1, 1).contiguous()
    y = module(x).view(t, c)
    assert torch.equal(y[:-1, 0], x.view(t, c)[1:, 0])  # first fold reads the next segment
    assert y[-1, 0] == 0
    assert torch.equal(y[1:, 2], x.view(t, c)[:-1, 2])  # second fold reads the previous one
    assert torch.equal(y[:, 5], x.view(t, c)[:, 5])  # the rest stay


def _ltdm_reference(m: LongTermTDM, x: torch.Tensor) -> torch.Tensor:
    """Direct, loop-over-time reading of the L-TDM equations."""
    t = m.num_segments
    red = m.reduce_bn(m.reduce(x))
    conv = m.conv_next(red)
    n = x.shape[0] // t
    out = []
    for b in range(n):
        for i in range(t):
            k = b * t + i
            d_f = conv[k + 1] - red[k] if i < t - 1 else torch.zeros_like(red[k])
            d_b = conv[k - 1] - red[k] if i > 0 else torch.zeros_like(red[k])
            gates = []
            for d in (d_f, d_b):
                d = d[None]
                pooled = m.scale2_bn(m.scale2_conv(F.avg_pool2d(d, 2)))
                up = F.interpolate(pooled, size=d.shape[-2:], mode="nearest")
                full = m.scale1_bn(m.scale1_conv(d))
                gates.append(torch.sigmoid(m.expand_bn(m.expand(d / 3 + up / 3 + full / 3))) - 0.5)
            y = 0.5 * gates[0] + 0.5 * gates[1]
            out.append(x[k][None] + x[k][None] * y)
    return torch.cat(out)


@pytest.mark.parametrize("size", [(6, 6), (7, 5)])
@pytest.mark.parametrize("folded", [False, True], ids=["plain", "folded-fused"])
def test_long_term_module_against_direct_reference(size, folded):
    """Folded, in its inference form, the gate is one fused convolution + sigmoid per direction (CPU)."""
    t, c = 4, 32
    m = LongTermTDM(c, t, reduction=8)
    randomise_bn(m)
    for p in m.parameters():
        p.data.normal_(0, 0.3)
    m.eval()
    x = torch.randn(2 * t, c, *size)
    with torch.no_grad():
        expected = _ltdm_reference(m, x)
        if folded:
            m = fold_batchnorm(FusedGateLongTermTDM.from_module(m))
            x = x.contiguous(memory_format=torch.channels_last)
        got = m(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert got.is_contiguous(memory_format=torch.channels_last) == folded


@pytest.mark.parametrize("size, fusion", [(32, None), (36, None), (35, None), (32, (1.0, 0.5))])
def test_short_term_module_against_direct_reference(size, fusion):
    """Even sizes fuse by broadcasting 2x2 blocks, 36 px takes the interpolation path (18 -> 9 vs 5), odd
    35 px checks the stem's floor (17 px of 2x2 means)."""
    model = create_model("resnet18", num_segments=2, num_classes=3, variant="stdm", fusion=fusion)
    randomise_bn(model)
    model.eval()
    seg = torch.randn(2, 5, 3, size, size)
    a, b = model.cfg.fusion
    with torch.no_grad():
        # Reference: explicit differences, explicit fusion after the stem and after stage 1.
        diffs = torch.cat([seg[:, i + 1] - seg[:, i] for i in range(4)], dim=1)
        d = F.max_pool2d(F.relu(model.stdm.bn(model.stdm.conv(F.avg_pool2d(diffs, 2)))), 3, 2, 1)
        x = F.max_pool2d(F.relu(model.bn1(model.conv1(seg[:, 2]))), 3, 2, 1)
        x = a * x + b * F.interpolate(d, size=x.shape[-2:])
        x = a * model.layer1(x) + b * F.interpolate(model.stdm.layer1(d), size=x.shape[-2:])
        got, response = model.forward_segments_with_response(seg)
    torch.testing.assert_close(got, x, rtol=1e-5, atol=1e-5)
    assert response.shape == (2, *x.shape[-2:]) and (response >= 0).all()


@pytest.mark.parametrize("size", [(8, 8), (7, 10), (224, 224)])
def test_half_resolution_is_two_by_two_mean(size):
    x = torch.randn(3, 4, *size)
    torch.testing.assert_close(half_resolution(x), F.avg_pool2d(x, 2), rtol=0, atol=1e-6)


def test_fusion_keeps_channels_last():
    rgb = torch.randn(2, 8, 6, 4).contiguous(memory_format=torch.channels_last)
    diff = torch.randn(2, 8, 3, 2).contiguous(memory_format=torch.channels_last)
    out = fuse_upsampled(rgb, diff, (0.5, 0.5))
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, 0.5 * rgb + 0.5 * F.interpolate(diff, size=(6, 4)))


def test_segment_split_equals_full_forward():
    """Per-segment features computed one at a time reproduce the batched forward (the cache's premise)."""
    model = create_model("resnet18", num_segments=4, num_classes=6)
    randomise_bn(model)
    model.eval()
    x = _clip(n=2, t=4, size=64, seed=3)
    with torch.no_grad():
        full = model(x)
        feats = torch.stack([torch.stack([model.forward_segments(x[i, j : j + 1])[0] for j in range(4)])
                             for i in range(2)])
        split = model.forward_temporal(feats)
    torch.testing.assert_close(split, full, rtol=0, atol=1e-5)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_inference_form_keeps_outputs(variant):
    """Every BatchNorm is found and folded (none is left), L-TDM takes its fused form on CPU, and the
    outputs stay those of the model as defined."""
    model = create_model("resnet18", num_segments=4, num_classes=6, variant=variant)
    randomise_bn(model, seed=1)
    model.eval()
    x = _clip(n=1, t=4, size=64, seed=4)
    with torch.no_grad():
        ref = model(x)
        prepare_for_inference(model, device=torch.device("cpu"), precision="fp32")
        got = model(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert not any(type(m) is LongTermTDM for m in model.modules())  # all in their fused form
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)


def test_bf16_agrees_with_fp32_on_top1(official_fixture):
    """Top-1 of the bf16 fast path agrees with fp32 on >= 99% of a fixed random batch set."""
    fp32 = load_model(official_fixture["checkpoint"], num_segments=8, precision="fp32")
    bf16 = load_model(official_fixture["checkpoint"], num_segments=8, precision="bf16")
    agree = total = 0
    with torch.no_grad():
        for seed in range(4):
            x = _clip(n=32, t=8, size=64, seed=100 + seed)
            a, b = fp32(x), bf16(x)
            assert b.dtype == torch.float32
            agree += (a.argmax(1) == b.argmax(1)).sum().item()
            total += len(x)
    assert agree / total >= 0.99, f"bf16 top-1 agreed on {agree}/{total}"


# Paper, Table (FLOPs as multiply-adds at 224x224): TDN-R50 8f 36G, 16f 72G; TDN-R101 8f 66G, 16f 132G; TSN-R50 8f 33G.
@pytest.mark.parametrize("arch,t,variant,paper", [
    ("resnet50", 8, "tdn", 36), ("resnet50", 16, "tdn", 72), ("resnet101", 8, "tdn", 66),
    ("resnet101", 16, "tdn", 132), ("resnet50", 8, "tsn", 33),
])
def test_macs_match_the_paper(arch, t, variant, paper):
    """A real counter (PyTorch's FLOP counter) against the published figures."""
    info = model_info(arch, t, variant)
    assert abs(info["gmacs"] - paper) / paper <= 0.03, info
