"""DoReFa (Zhuang et al., eq. 1-3), power-of-two scales and log2 values."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lowbit.ops import dorefa_weight, dorefa_weight_normalize, log2_quantize_values, pow2_scale
from lowbit.quantizers import QuantizerConfig, make_quantizer

SETTINGS = settings(max_examples=50, deadline=None)
weights = arrays(np.float32, st.integers(1, 80),
                 elements=st.floats(-5, 5, width=32, allow_subnormal=False)).map(torch.from_numpy)


def Q_k(z, k):
    """Zhuang et al., eq. 1: ``Q_k(z) = round((2^k - 1) z) / (2^k - 1)`` for z in [0, 1]."""
    n = 2**k - 1
    return torch.round(n * z) / n


def eq2_weights(w, k):
    """Zhuang et al., eq. 2 as printed: ``2 Q_k(tanh(w) / (2 max|tanh(w)|) + 1/2) - 1``."""
    t = torch.tanh(w)
    return 2 * Q_k(t / (2 * t.abs().max()) + 0.5, k) - 1


def eq3_acts(x, k):
    """Zhuang et al., eq. 3: ``Q_k(clip(x, 0, 1))``."""
    return Q_k(torch.clamp(x, 0, 1), k)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 8])
@SETTINGS
@given(w=weights)
def test_dorefa_weights_match_eq2(k, w):
    if float(w.abs().max()) == 0:
        w = w + 0.5  # eq. 2 divides by max|tanh(w)|: skip the all-zero tensor here
    n = 2**k - 1
    got = dorefa_weight(w, k)
    # the integer level is exactly the seed's round((2^k - 1) z) ...
    t = torch.tanh(w)
    z = t / (2 * t.abs().max()) + 0.5
    assert torch.equal(torch.round((got + 1) * n / 2), torch.round(n * z))
    # ... and the value equals eq. 2 up to float32 rounding of the last multiply (1 ulp at 1.0)
    assert torch.allclose(got, eq2_weights(w, k), rtol=0, atol=2.5e-7)
    assert len(torch.unique(got)) <= 2**k and float(got.min()) >= -1 and float(got.max()) <= 1


@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_dorefa_weight_quantizer_matches_eq2(k):
    torch.manual_seed(k)
    w = torch.randn(6, 5, 3, 3)
    q = make_quantizer(QuantizerConfig(kind="dorefa", bits=k), "weight", w.shape)
    assert torch.allclose(q(w), eq2_weights(w, k), rtol=0, atol=2.5e-7)
    # per-channel: the max runs over each output channel
    qc = make_quantizer(QuantizerConfig(kind="dorefa", bits=k, granularity="channel"), "weight", w.shape)
    ref = torch.stack([eq2_weights(w[c], k) for c in range(6)])
    assert torch.allclose(qc(w), ref, rtol=0, atol=2.5e-7)


@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_dorefa_activation_quantizer_matches_eq3(k):
    x = torch.linspace(-1, 2, 3001)
    q = make_quantizer(QuantizerConfig(kind="dorefa", bits=k), "act")
    out = q(x)
    n = 2**k - 1
    assert torch.equal(q.quantize(x).float(), torch.round(n * torch.clamp(x, 0, 1)))  # exact codes
    assert torch.allclose(out, eq3_acts(x, k), rtol=0, atol=1.5e-7)  # values to float32 rounding
    assert torch.equal(q.dequantize(q.quantize(x)), out)


def test_dorefa_gradients_are_straight_through():
    x = torch.tensor([-0.5, 0.2, 0.7, 1.5], requires_grad=True)
    q = make_quantizer(QuantizerConfig(kind="dorefa", bits=2), "act")
    q(x).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([0.0, 1.0, 1.0, 0.0]))  # STE inside the clip
    w = torch.tensor([0.3, -1.2, 0.8], requires_grad=True)
    dorefa_weight(w, 2).backward(torch.tensor([1.0, 0.0, 0.0]))
    w2 = w.detach().clone().requires_grad_()  # reference: d/dw of 2 * normalize(w) - 1
    (2 * dorefa_weight_normalize(w2) - 1).backward(torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(w.grad, w2.grad)


def test_dorefa_all_zero_weights_are_finite():
    w = torch.zeros(4, 3, requires_grad=True)
    out = dorefa_weight(w, 2)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(w.grad).all()


# ----- power of two ----------------------------------------------------------------------------
@SETTINGS
@given(st.floats(1e-6, 1e6))
def test_pow2_scale_is_nearest_power_in_log_space(s):
    st_ = torch.tensor(s, dtype=torch.float32)
    p = float(pow2_scale(st_))
    e = round(float(np.log2(np.float32(s))))
    assert p == 2.0**e


def test_pow2_scale_gradient_is_ste_in_log_space():
    s = torch.tensor([0.3, 5.0], requires_grad=True)
    p = pow2_scale(s)
    p.sum().backward()
    # d/ds 2^round(log2 s) with d round = 1:  2^r * ln2 * 1/(s ln2) = 2^r / s
    assert torch.allclose(s.grad, p.detach() / s.detach())


# ----- log2 values -------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [2, 3, 4, 5])
def test_log2_levels(bits):
    L = 2 ** (bits - 1) - 1
    max_exp = torch.tensor(1.0)
    exps = torch.arange(1 - L + 1, 2, dtype=torch.float32)          # every level
    grid = torch.cat([2.0**exps, -(2.0**exps), torch.zeros(1)])
    assert torch.equal(log2_quantize_values(grid, max_exp, bits), grid)
    x = torch.linspace(-10, 10, 4001)
    out = log2_quantize_values(x, max_exp, bits)
    allowed = set(grid.tolist())
    assert set(out.unique().tolist()) <= allowed
    smallest = 2.0 ** (1 - L + 1)
    assert torch.equal(out[x.abs() < smallest / 2], torch.zeros(int((x.abs() < smallest / 2).sum())))
    assert float(out.abs().max()) == 2.0  # clipped at 2^max_exp
