"""Affine quantization math: ranges, grid values, clipping, quantize/dequantize/fake_quantize."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lowbit.errors import ConfigError
from lowbit.ops import (check_bits, dequantize, fake_quantize, fake_quantize_bias, int_dtype, qrange,
                        quantize)
from lowbit.ops.ranges import bits_for_levels

SETTINGS = settings(max_examples=60, deadline=None)

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, allow_subnormal=False,
                   width=32)
tensors = arrays(np.float32, st.integers(1, 64), elements=finite).map(torch.from_numpy)


@st.composite
def affine_params(draw):
    """(bits, signed, narrow, scale, zero point) of a valid affine format."""
    bits = draw(st.integers(2, 16))
    signed = draw(st.booleans())
    narrow = draw(st.booleans()) and signed
    qmin, qmax = qrange(bits, signed, narrow)
    scale = float(np.float32(draw(st.floats(1e-4, 1e2))))
    zp = draw(st.integers(qmin, qmax)) if draw(st.booleans()) else 0
    return bits, qmin, qmax, torch.tensor(scale), torch.tensor(float(zp))


# ----- ranges -------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", range(1, 17))
def test_qrange_counts_levels(bits):
    lo, hi = qrange(bits, signed=False)
    assert (lo, hi) == (0, 2**bits - 1)
    lo, hi = qrange(bits, signed=True)
    assert (lo, hi) == (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if bits >= 2:
        assert qrange(bits, signed=True, narrow=True) == (-(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1)


def test_narrow_one_bit_refused():
    with pytest.raises(ConfigError, match="at least 2 bits"):
        qrange(1, signed=True, narrow=True)


@pytest.mark.parametrize("bad", [0, 17, -3, 2.5, "4", None, True, float("nan")])
def test_check_bits_rejects_bad_values(bad):
    with pytest.raises(ConfigError, match=r"1\.\.16"):
        check_bits(bad)


def test_check_bits_accepts_integral_floats():
    assert check_bits(4.0) == 4 and isinstance(check_bits(4.0), int)


@pytest.mark.parametrize("n", range(0, 300))
def test_bits_for_levels_is_smallest_fitting_width(n):
    for signed in (True, False):
        b = bits_for_levels(n, signed)
        lo, hi = qrange(b, signed, narrow=signed and b >= 2)
        assert hi >= n and (not signed or lo <= -n)
        if b > 1 and not (signed and b == 2):  # one bit fewer does not hold n
            assert qrange(b - 1, signed, narrow=signed and b - 1 >= 2)[1] < n


def test_int_dtype_is_smallest():
    assert int_dtype(-8, 7) == torch.int8
    assert int_dtype(0, 255) == torch.uint8
    assert int_dtype(-32768, 32767) == torch.int16
    assert int_dtype(0, 65535) == torch.int32
    assert int_dtype(torch.tensor([-3, -100]), torch.tensor([3, 100])) == torch.int8


# ----- properties of the affine maps ------------------------------------------------------------
@SETTINGS
@given(affine_params(), st.data(), st.sampled_from(["round", "floor"]))
def test_grid_values_come_back_unchanged(params, data, rounding):
    bits, qmin, qmax, scale, zp = params
    codes = torch.tensor(data.draw(st.lists(st.integers(qmin, qmax), min_size=1, max_size=64)),
                         dtype=torch.float32)
    x = dequantize(codes, scale, zp)
    assert torch.equal(fake_quantize(x, scale, zp, qmin, qmax, rounding), x)
    assert torch.equal(quantize(x, scale, zp, qmin, qmax, rounding).float(), codes)


@SETTINGS
@given(affine_params(), tensors)
def test_outputs_lie_in_the_range(params, x):
    bits, qmin, qmax, scale, zp = params
    q = quantize(x, scale, zp, qmin, qmax)
    assert int(q.min()) >= qmin and int(q.max()) <= qmax
    y = fake_quantize(x, scale, zp, qmin, qmax)
    lo, hi = (qmin - zp) * scale, (qmax - zp) * scale
    assert bool((y >= lo).all()) and bool((y <= hi).all())
    # inside the range the error is at most half a step
    inside = (x >= lo) & (x <= hi)
    assert bool(((y - x).abs()[inside] <= scale * (0.5 + 1e-3)).all())


@SETTINGS
@given(affine_params(), tensors, st.sampled_from(["round", "floor"]))
def test_dequantize_quantize_equals_fake_quantize_bitwise(params, x, rounding):
    bits, qmin, qmax, scale, zp = params
    q = quantize(x, scale, zp, qmin, qmax, rounding)
    assert q.dtype == int_dtype(qmin, qmax)
    assert torch.equal(dequantize(q, scale, zp), fake_quantize(x, scale, zp, qmin, qmax, rounding))


@SETTINGS
@given(tensors, st.integers(2, 8), st.sampled_from([0, 1]))
def test_per_channel_and_tensor_bounds_match_per_channel_loop(x, bits, axis):
    """A broadcast (C, 1) scale with tensor bounds equals quantizing each row on its own."""
    x = x.reshape(1, -1).repeat(3, 1) * torch.tensor([[1.0], [0.1], [10.0]])
    if axis == 1:
        x = x.t().contiguous()
    C = x.shape[axis]
    shape = (C, 1) if axis == 0 else (1, C)
    scale = torch.linspace(0.05, 2.0, C).reshape(shape)
    zp = torch.zeros(shape)
    qmin, qmax = qrange(bits, True)
    qmin_t = torch.full(shape, float(qmin))
    qmax_t = torch.full(shape, float(qmax))
    full = fake_quantize(x, scale, zp, qmin_t, qmax_t)
    for c in range(C):
        xs = x.select(axis, c)
        ref = fake_quantize(xs, scale.reshape(-1)[c], zp.reshape(-1)[c], qmin, qmax)
        assert torch.equal(full.select(axis, c), ref)


def test_half_values_round_to_even():
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5])
    out = fake_quantize(x, torch.tensor(1.0), torch.tensor(0.0), -8, 7)
    assert out.tolist() == [0.0, 2.0, 2.0, -0.0, -2.0]


def test_asymmetric_zero_point_maps_zero_exactly():
    scale, zp = torch.tensor(0.1), torch.tensor(-3.0)
    assert fake_quantize(torch.zeros(3), scale, zp, -8, 7).tolist() == [0.0, 0.0, 0.0]


def test_floor_rounding_value():
    y = fake_quantize(torch.tensor([0.99, -0.01, 1.0]), torch.tensor(1.0), torch.tensor(0.0), -8, 7,
                      rounding="floor")
    assert y.tolist() == [0.0, -1.0, 1.0]


def test_unknown_rounding_refused():
    with pytest.raises(ConfigError, match="'round' or 'floor'"):
        fake_quantize(torch.ones(2), torch.tensor(1.0), torch.tensor(0.0), -8, 7, rounding="ceil")


def test_constant_and_zero_inputs_are_finite():
    for x in (torch.zeros(10), torch.full((10,), 3.0)):
        x = x.clone().requires_grad_()
        s = torch.tensor(1e-8, requires_grad=True)
        y = fake_quantize(x, s, torch.tensor(0.0), -8, 7)
        y.sum().backward()
        assert torch.isfinite(y).all() and torch.isfinite(x.grad).all() and math.isfinite(float(s.grad))


# ----- biases on the int32 accumulator grid ----------------------------------------------------
@SETTINGS
@given(tensors, st.floats(1e-3, 1e-1))  # |b| / acc < 2^24: codes exact in float32
def test_bias_lands_on_the_accumulator_grid_and_grid_values_stay(b, acc):
    acc = torch.full_like(b, float(np.float32(acc)))
    out = fake_quantize_bias(b, acc)
    # an integer runtime recovers the int32 code k = round(b / acc) from the float bias
    assert torch.equal(torch.round(out / acc), torch.round(b / acc))
    assert torch.all((out - b).abs() <= acc / 2 + b.abs() * 2.0**-22)  # nearest grid point
    assert torch.equal(fake_quantize_bias(out, acc), out)  # on the grid: unchanged


def test_bias_gradient_is_straight_through_and_scale_is_constant():
    b = torch.tensor([0.3, -0.07, 1.26], requires_grad=True)
    acc = torch.tensor([0.25, 0.05, 0.1], requires_grad=True)
    fake_quantize_bias(b, acc).sum().backward()
    assert torch.equal(b.grad, torch.ones(3))
    assert acc.grad is None
