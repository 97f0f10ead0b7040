"""Every quantizer kind and granularity: dequantize(quantize(x)) == forward(x) bit for bit,
codes inside the stored range, grid values unchanged, qparams/storage consistent."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lowbit.quantizers import QUANTIZERS, QuantizerConfig, make_quantizer
from lowbit.quantizers.base import dequantize_codes

SETTINGS = settings(max_examples=25, deadline=None)

KINDS = ["uniform", "lsq", "learned_range", "nested", "dorefa", "pow2", "log2"]
GRANULARITIES = {
    "tensor": dict(granularity="tensor"),
    "channel0": dict(granularity="channel", axis=0),
    "channel1": dict(granularity="channel", axis=1),
    "group": dict(granularity="group", group_size=3),
}
NO_GROUP = {"dorefa", "log2"}
COMBOS = [(k, g) for k in KINDS for g in GRANULARITIES if not (g == "group" and k in NO_GROUP)]


def test_every_kind_is_registered():
    assert QUANTIZERS.names() == sorted(KINDS)


def make(kind, gran, shape, bits=4, **extra):
    cfg = QuantizerConfig(kind=kind, bits=bits, **GRANULARITIES[gran], **extra)
    return make_quantizer(cfg, "weight", shape)


def perturb_learned(q, seed):
    """Move learned parameters off their calibrated values (training changes them freely)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in q.named_parameters():
            p.mul_(torch.exp(torch.randn(p.shape, generator=gen) * 0.3))
            if name == "zero_point":
                p.add_(torch.randn(p.shape, generator=gen))
    q.project_()


def check_roundtrip(q, w):
    y = q(w)
    codes = q.quantize(w)
    assert codes.dtype == torch.int32 and codes.shape == w.shape
    assert torch.equal(q.dequantize(codes), y)
    qp = q.qparams(w)
    assert torch.equal(dequantize_codes(codes, qp), y)
    # codes inside [qmin, qmax] of their slice
    g = qp.granularity
    cv = g.view(codes.float())
    assert bool((cv >= g.expand(qp.qmin.float(), cv)).all())
    assert bool((cv <= g.expand(qp.qmax.float(), cv)).all())
    assert torch.isfinite(y).all()
    return y, codes, qp


weights_2d = arrays(np.float32, (4, 6),
                    elements=st.floats(-8, 8, width=32, allow_subnormal=False)).map(torch.from_numpy)


@pytest.mark.parametrize("kind,gran", COMBOS)
@SETTINGS
@given(w=weights_2d, seed=st.integers(0, 1000), symmetric=st.booleans())
def test_dequantize_quantize_is_forward_bitwise(kind, gran, w, seed, symmetric):
    if not symmetric and kind not in ("uniform", "lsq", "pow2"):
        symmetric = True
    q = make(kind, gran, w.shape, symmetric=symmetric)
    q.init_from_tensor(w)
    check_roundtrip(q, w)
    perturb_learned(q, seed)
    check_roundtrip(q, w)


@pytest.mark.parametrize("kind,gran", COMBOS)
def test_conv_weight_roundtrip(kind, gran):
    torch.manual_seed(0)
    w = torch.randn(8, 6, 3, 3)  # fan-in 54, divisible by 3
    q = make(kind, gran, w.shape)
    q.init_from_tensor(w)
    y, codes, qp = check_roundtrip(q, w)
    expected = {"tensor": (), "channel0": (8,), "channel1": (6,), "group": (8, 18)}[gran]
    assert tuple(qp.scale.shape) == expected
    bits, _ = q.storage(w)
    assert tuple(bits.shape) == expected


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "dorefa"])
@pytest.mark.parametrize("gran", ["tensor", "channel0", "channel1"])
def test_grid_values_come_back_unchanged(kind, gran):
    """forward(dequantize(c)) == dequantize(c) and quantize gives back c, for in-range codes c.

    (DoReFa weights are excluded: their normalisation depends on the tensor itself.)
    """
    torch.manual_seed(1)
    w = torch.randn(5, 7) * 2
    q = make(kind, gran, w.shape)
    q.init_from_tensor(w)
    perturb_learned(q, 3)
    qp = q.qparams(w)
    g = qp.granularity
    gen = torch.Generator().manual_seed(2)
    lo = g.expand(qp.qmin.float(), w)
    hi = g.expand(qp.qmax.float(), w)
    codes = torch.floor(lo + (hi - lo + 1) * torch.rand(w.shape, generator=gen)).clamp(max=hi)
    if kind == "log2":  # code 0 is zero; others are +-j, all valid
        codes = codes.round()
    grid = dequantize_codes(codes.int(), qp)
    assert torch.equal(q(grid), grid)
    assert torch.equal(q.quantize(grid), codes.int())


@pytest.mark.parametrize("kind", KINDS)
def test_activation_quantizers_roundtrip(kind):
    torch.manual_seed(2)
    cfg = QuantizerConfig(kind=kind, bits=4)
    for x in (torch.randn(4, 3, 5, 5), torch.rand(4, 10) * 6):  # signed, then unsigned data
        q = make_quantizer(cfg, "act")
        q.init_from_tensor(x)
        y = q(x)
        assert torch.equal(q.dequantize(q.quantize(x)), y)
        assert torch.isfinite(y).all()
        if kind not in ("dorefa",):
            assert q.signed == bool((x < 0).any())


@pytest.mark.parametrize("kind", ["uniform", "lsq", "pow2"])
def test_asymmetric_uses_the_whole_grid(kind):
    x = torch.linspace(1.0, 5.0, 101)  # all positive, far from 0: asymmetric covers [0, 5]
    q = make_quantizer(QuantizerConfig(kind=kind, bits=4, symmetric=False, signed=True), "weight", x.shape)
    q.init_from_tensor(x)
    codes = q.quantize(x)
    assert int(codes.min()) >= -8 and int(codes.max()) <= 7
    if kind != "pow2":
        assert int(codes.max()) == 7  # hi maps to qmax
    # no clipping: every value within half a step (pow2 rounds the step up to 2^k)
    step = float(q.effective_scale().detach())
    assert float((q(x) - x).detach().abs().max()) <= step / 2 + 1e-6
    assert q.has_zero_point() and q.storage(x)[1]
    assert torch.equal(q.dequantize(codes), q(x))


@pytest.mark.parametrize("kind", KINDS)
def test_disabled_quantizer_passes_through(kind):
    x = torch.randn(3, 4)
    q = make_quantizer(QuantizerConfig(kind=kind, bits=4), "weight", x.shape)
    q.init_from_tensor(x)
    assert q.disable()(x) is x
    assert not torch.equal(q.enable()(x), x)


@pytest.mark.parametrize("kind", ["uniform", "lsq", "pow2", "log2", "nested", "learned_range"])
def test_state_dict_round_trip(kind):
    torch.manual_seed(3)
    w = torch.randn(6, 4)
    q = make(kind, "channel0", w.shape)
    q.init_from_tensor(w)
    perturb_learned(q, 1)
    q.freeze()
    q2 = make(kind, "channel0", w.shape)
    q2.load_state_dict(q.state_dict())
    assert q2.frozen and bool(q2.initialized)
    assert torch.equal(q2(w), q(w))
    assert all(not p.requires_grad for p in q2.parameters())


@pytest.mark.parametrize("gran", sorted(GRANULARITIES))
@SETTINGS
@given(w=weights_2d, seed=st.integers(0, 1000))
def test_nested_round_codes_roundtrip_on_the_floor_codes_grid(gran, w, seed):
    """``codes: round``: the floor quantizer's grid (same scales), codes at most one above its
    codes, error within half a step, grid values unchanged."""
    q = make("nested", gran, w.shape, bits=None, codes="round")
    q.init_from_tensor(w)
    perturb_learned(q, seed)
    y, codes, qp = check_roundtrip(q, w)
    floor = make("nested", gran, w.shape, bits=None)
    floor.load_state_dict(q.state_dict())
    assert q.rounding == "round" and floor.rounding == "floor" and qp.rounding == "round"
    assert bool(((codes - floor.quantize(w) == 0) | (codes - floor.quantize(w) == 1)).all())
    g = qp.granularity
    step = g.expand(qp.scale, g.view(w))
    assert bool(((g.view(y) - g.view(w)).abs() <= step / 2 * (1 + 1e-5)).all())
    assert torch.equal(q(y), y)
