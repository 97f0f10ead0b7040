"""The nested floor quantizer (Chinbat, section 3.1) against its formulas, written out in numpy.

``P_q = floor(P / s)``, ``P_rec = P_q s``; ``dL/dP = dL/dP_rec`` (STE);
``dL/ds = sum over the slice of g_s * m`` with ``r = |dL/dP_rec| / max(eps, |P_rec|)``,
``g_s = -tanh(lambda - r)`` if ``r < lambda`` else 0, ``m = max |P_q|`` over the slice.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit.ops import nested_quantize
from lowbit.ops.nested import nested_codes, slice_dims

SETTINGS = settings(max_examples=40, deadline=None)


def reference(P, s, g, lam, eps, dims, rounding="floor"):
    """Chinbat's thesis, section 3.1, in float64 (P, g: arrays; s broadcasts; dims: the slice);
    ``rounding="round"``: the same with codes round(P / s) (numpy and torch both round half to even)."""
    P, s, g = (np.asarray(a, np.float64) for a in (P, s, g))
    pq = np.floor(P / s) if rounding == "floor" else np.round(P / s)
    p_rec = pq * s
    r = np.abs(g) / np.maximum(eps, np.abs(p_rec))
    g_s = np.where(r < lam, -np.tanh(lam - r), 0.0)
    m = np.abs(pq).max(axis=dims, keepdims=True) if dims else np.abs(pq)
    grad_s = (g_s * m).sum(axis=dims, keepdims=True) if dims else g_s * m
    return p_rec, grad_s.reshape(s.shape)


GRANULARITIES = {"scalar": (), "row": (4, 1), "column": (1, 6)}


@pytest.mark.parametrize("rounding", ["floor", "round"])
@pytest.mark.parametrize("gran", sorted(GRANULARITIES))
@SETTINGS
@given(seed=st.integers(0, 10_000), lam=st.sampled_from([1e-3, 0.1, 1.0, 5.0]),
       gscale=st.sampled_from([1e-6, 1e-2, 1.0, 100.0]))
def test_scale_gradient_equals_the_seed_formula(gran, rounding, seed, lam, gscale):
    gen = torch.Generator().manual_seed(seed)
    P = torch.randn(4, 6, generator=gen)
    s_shape = GRANULARITIES[gran]
    s = (torch.rand(s_shape, generator=gen) * 0.3 + 0.05).requires_grad_()
    P_ = P.clone().requires_grad_()
    g = torch.randn(4, 6, generator=gen) * gscale
    out = nested_quantize(P_, s, lam, rounding=rounding)
    out.backward(g)
    dims = slice_dims(P.shape, s.shape)
    rec, grad_s = reference(P.numpy(), s.detach().numpy(), g.numpy(), lam, 1e-8, dims, rounding)
    np.testing.assert_allclose(out.detach().numpy(), rec, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(s.grad.numpy(), grad_s, rtol=1e-4, atol=1e-5)
    assert torch.equal(P_.grad, g)  # straight through, unclipped
    assert bool((s.grad <= 0).all())  # votes only ever push s up (or abstain)


def test_slice_dims():
    assert slice_dims(torch.Size([4, 6]), torch.Size([])) == (0, 1)
    assert slice_dims(torch.Size([4, 6]), torch.Size([4, 1])) == (1,)
    assert slice_dims(torch.Size([4, 6]), torch.Size([1, 6])) == (0,)
    assert slice_dims(torch.Size([8, 3, 3, 3]), torch.Size([8, 1, 1, 1])) == (1, 2, 3)


def test_zero_parameters_resist_quantization():
    """P_rec = 0 makes r = |g| / eps large, so it votes 0 even for a small gradient."""
    P = torch.tensor([0.0, 0.01, 2.0])
    s = torch.tensor(0.5, requires_grad=True)
    nested_quantize(P, s, lam=1.0).backward(torch.tensor([1e-3, 0.0, 0.0]))
    # element 0: P_rec = 0 -> r = 1e-3 / 1e-8 = 1e5 >= 1: vote 0; element 1: P_rec = 0, g = 0 ->
    # r = 0 < 1: votes -tanh(1); element 2: P_rec = 2, g = 0 -> votes -tanh(1). m = 4.
    assert float(s.grad) == pytest.approx(2 * -np.tanh(1.0) * 4, rel=1e-6)


def test_clipped_codes_stop_the_parameter_gradient():
    P = torch.tensor([-3.0, -1.0, 0.4, 0.9, 5.0], requires_grad=True)
    s = torch.tensor(0.25)
    out = nested_quantize(P, s, lam=1e-3, qmin=-8, qmax=7)
    assert out.tolist() == [-2.0, -1.0, 0.25 * 1, 0.75, 1.75]
    out.sum().backward()
    assert P.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


@SETTINGS
@given(seed=st.integers(0, 10_000))
def test_round_codes_are_the_floor_codes_or_one_more_and_err_by_half_a_step(seed):
    gen = torch.Generator().manual_seed(seed)
    P = torch.randn(64, generator=gen) * 3
    s = torch.rand((), generator=gen) * 0.5 + 0.01
    floor, nearest = nested_codes(P, s), nested_codes(P, s, "round")
    assert bool(((nearest - floor == 0) | (nearest - floor == 1)).all())
    assert bool(((P - floor * s >= 0) & (P - floor * s < s * (1 + 1e-6))).all())  # floor: [0, s)
    assert bool(((P - nearest * s).abs() <= s / 2 * (1 + 1e-6)).all())  # round: within s/2
    with pytest.raises(ValueError, match="floor' or 'round"):
        nested_codes(P, s, "ceil")
