"""Rounding gradient estimators against the formulas of Schaefer et al., section 3.2.

With ``e = u - round(u)`` and the upstream gradient ``g``, the estimators scale ``g`` by

* STE: 1;  PBGS: ``1 + delta |e|``;  EWGS: ``1 + delta sign(g) e``;
* Acos: ``1 + delta sin(pi e)``;  Tanh: ``1 + delta sign(g) tanh(alpha e)``;
* InvTanh: ``1 + delta sign(g) artanh(alpha e)``.

The formulas are written out again here in numpy (float64) rather than imported.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lowbit.errors import ConfigError
from lowbit.ops import ESTIMATORS, check_estimator, fake_quantize, round_with
from lowbit.ops.rounding import discretize
from lowbit.quantizers import QuantizerConfig

SETTINGS = settings(max_examples=50, deadline=None)


def reference_scale(name, e, g, delta, alpha):
    """Schaefer et al., section 3.2, in float64."""
    e, g = np.asarray(e, np.float64), np.asarray(g, np.float64)
    if name == "ste":
        return np.ones_like(e)
    if name == "pbgs":
        return 1 + delta * np.abs(e)
    if name == "ewgs":
        return 1 + delta * np.sign(g) * e
    if name == "acos":
        return 1 + delta * np.sin(np.pi * e)
    if name == "tanh":
        return 1 + delta * np.sign(g) * np.tanh(alpha * e)
    if name == "invtanh":
        return 1 + delta * np.sign(g) * np.arctanh(alpha * e)
    raise AssertionError(name)


NAMES = ["ste", "pbgs", "ewgs", "acos", "tanh", "invtanh"]
values = st.floats(-100, 100, allow_nan=False, width=32, allow_subnormal=False)


def test_registry_has_the_six_estimators():
    assert ESTIMATORS.names() == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(u=arrays(np.float32, st.integers(1, 40), elements=values),
       g=arrays(np.float32, st.integers(1, 40), elements=values),
       delta=st.sampled_from([0.0, 0.005, 0.1, 0.5, 1.0]),
       alpha=st.sampled_from([0.5, 1.0, 1.5, 1.99]))
def test_gradient_equals_the_seed_formula(name, u, g, delta, alpha):
    n = min(len(u), len(g))
    u_t = torch.from_numpy(u[:n].copy()).requires_grad_()
    g_t = torch.from_numpy(g[:n].copy())
    out = round_with(u_t, name, delta, alpha)
    assert torch.equal(out, torch.round(u_t.detach()))  # forward is always round (half to even)
    out.backward(g_t)
    e = u[:n].astype(np.float64) - np.round(u[:n].astype(np.float64))
    expected = g[:n] * reference_scale(name, e, g[:n], delta, alpha)
    np.testing.assert_allclose(u_t.grad.numpy(), expected, rtol=2e-5, atol=1e-5)
    assert torch.isfinite(u_t.grad).all()


def test_known_values_by_hand():
    """A few scales worked out by hand (delta = 0.5, alpha = 1, g = +1)."""
    u = torch.tensor([0.2, 1.7, -0.25], requires_grad=True)  # e = 0.2, -0.3, -0.25
    round_with(u, "pbgs", 0.5).sum().backward()
    assert torch.allclose(u.grad, torch.tensor([1.1, 1.15, 1.125]))
    u.grad = None
    round_with(u, "ewgs", 0.5).sum().backward()
    assert torch.allclose(u.grad, torch.tensor([1.1, 0.85, 0.875]))
    u.grad = None
    round_with(u, "acos", 0.5).sum().backward()
    assert torch.allclose(u.grad, torch.tensor([1 + 0.5 * math.sin(0.2 * math.pi),
                                                1 - 0.5 * math.sin(0.3 * math.pi),
                                                1 - 0.5 * math.sin(0.25 * math.pi)]))


def test_sign_of_the_gradient_matters_for_ewgs_tanh_invtanh():
    u = torch.tensor([0.3, 0.3], requires_grad=True)
    for name in ("ewgs", "tanh", "invtanh"):
        u.grad = None
        round_with(u, name, 0.5).backward(torch.tensor([1.0, -1.0]))
        scale_pos, scale_neg = float(u.grad[0]), -float(u.grad[1])
        assert scale_pos > 1 > scale_neg, name
    u.grad = None
    round_with(u, "pbgs", 0.5).backward(torch.tensor([1.0, -1.0]))
    assert float(u.grad[0]) == pytest.approx(-float(u.grad[1]))


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.9, 1.999])
def test_invtanh_is_finite_for_every_input(alpha):
    # residuals at the extremes e = +-1/2, where artanh(alpha e) is largest
    u = torch.tensor([0.5, -0.5, 2.5, -7.5, 0.4999999, 1e6 + 0.5, 0.0, 3.0], requires_grad=True)
    round_with(u, "invtanh", 1.0, alpha).backward(torch.tensor([1.0, -1, 1, 1, -1, 1, 1, -1]))
    assert torch.isfinite(u.grad).all()


@pytest.mark.parametrize("alpha", [2, 2.0, 3.0, 100.0])
def test_invtanh_alpha_at_least_two_is_rejected(alpha):
    with pytest.raises(ConfigError, match="alpha < 2"):
        check_estimator("invtanh", 0.1, alpha)
    with pytest.raises(ConfigError, match="alpha < 2"):
        QuantizerConfig(estimator="invtanh", grad_alpha=alpha)


def test_tanh_accepts_alpha_above_two():
    check_estimator("tanh", 0.1, 5.0)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "0.1"])
def test_bad_delta_rejected(bad):
    with pytest.raises(ConfigError, match="delta"):
        check_estimator("ewgs", bad, 1.0)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
def test_bad_alpha_rejected(bad):
    with pytest.raises(ConfigError, match="alpha"):
        check_estimator("tanh", 0.1, bad)


def test_unknown_estimator_lists_valid_names():
    with pytest.raises(ConfigError) as info:
        round_with(torch.zeros(2), "stee")
    msg = str(info.value)
    assert "'stee'" in msg and "did you mean 'ste'" in msg
    for name in NAMES:
        assert name in msg
    with pytest.raises(ConfigError, match="valid: acos, ewgs, invtanh, pbgs, ste, tanh"):
        QuantizerConfig(estimator="linear")


def test_floor_with_non_ste_estimator_is_refused():
    with pytest.raises(ConfigError, match="floor"):
        discretize(torch.zeros(2), "floor", "ewgs")
    with pytest.raises(ConfigError, match="floor rounding supports only the 'ste' estimator"):
        QuantizerConfig(kind="uniform", rounding="floor", estimator="tanh")
    QuantizerConfig(kind="uniform", rounding="floor", estimator="ste")  # fine


# ----- the estimators inside fake_quantize: clip range ----------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_ste_gradient_is_identity_inside_and_zero_outside(name):
    """x gets g * scale(e) inside [qmin, qmax] (scale = 1 for STE) and exactly 0 outside."""
    s, z = torch.tensor(0.5), torch.tensor(0.0)
    # codes round(x / 0.5): -20, -9, -8, -3, 0, 1, 7, 7, 8, 100; the grid is -8..7
    x = torch.tensor([-10.0, -4.3, -4.2, -1.3, 0.0, 0.7, 3.4, 3.74, 3.76, 50.0], requires_grad=True)
    qmin, qmax = -8, 7
    g = torch.linspace(-1, 1, 10)
    fake_quantize(x, s, z, qmin, qmax, estimator=name, delta=0.3).backward(g)
    inside = torch.tensor([False, False, True, True, True, True, True, True, False, False])
    r = torch.round(x.detach() / s)
    assert torch.equal(inside, (r >= qmin) & (r <= qmax))
    assert torch.equal(x.grad[~inside], torch.zeros(int((~inside).sum())))
    if name == "ste":
        assert torch.allclose(x.grad[inside], g[inside], atol=1e-7)
    else:
        u = (x.detach() / s).double()
        e = (u - torch.round(u)).numpy()
        ref = g.double().numpy() * reference_scale(name, e, g.numpy(), 0.3, 1.0)
        np.testing.assert_allclose(x.grad[inside].numpy(), ref[inside.numpy()], rtol=1e-5, atol=1e-6)


@SETTINGS
@given(arrays(np.float32, st.integers(1, 64), elements=values),
       st.floats(0.01, 10), st.integers(2, 8))
def test_ste_through_fake_quantize_property(x, scale, bits):
    x_t = torch.from_numpy(x).requires_grad_()
    s = torch.tensor(float(np.float32(scale)))
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    fake_quantize(x_t, s, torch.tensor(0.0), qmin, qmax).sum().backward()
    r = torch.round(x_t.detach() / s)
    inside = (r >= qmin) & (r <= qmax)
    assert torch.allclose(x_t.grad, inside.float(), atol=1e-6)


@given(st.integers(min_value=1, max_value=2 ** 15), st.floats(min_value=-0.49, max_value=0.49, allow_subnormal=False))
def test_fill_levels_keeps_the_bit_width_and_fills_it(n, jitter):
    from lowbit.ops import fill_levels_ste
    from lowbit.quantizers.learned_range import bits_from_levels

    x = torch.tensor([n + jitter], dtype=torch.float32, requires_grad=True)
    full = fill_levels_ste(x)
    for signed in (True, False):
        assert torch.equal(bits_from_levels(full.detach(), signed), bits_from_levels(torch.tensor([float(n)]), signed))
    assert float(full.detach()) >= n and torch.equal(fill_levels_ste(full.detach()), full.detach())
    assert int(full.detach()) + 1 == 2 ** int(bits_from_levels(torch.tensor([float(n)]), False))
    full.sum().backward()
    assert float(x.grad) == 1.0
