"""Bit packing of quantized tensors: unpack(pack(codes)) == codes, sizes equal a hand count."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit.errors import ConfigError, FormatError
from lowbit.export.bitstream import (from_slices, pack_codes, pack_matrix, slice_layout,
                                     stream_nbytes, to_slices, unpack_codes, unpack_matrix)
from lowbit.quantizers.granularity import Granularity


@st.composite
def slices(draw, max_bits: int = 16):
    s = draw(st.integers(1, 6))
    n = draw(st.integers(0, 17))
    bits = np.array(draw(st.lists(st.integers(1, max_bits), min_size=s, max_size=s)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    u = (rng.integers(0, 2**31, size=(s, n)) % (1 << bits[:, None])).astype(np.uint32)
    return u, bits


@settings(max_examples=150, deadline=None)
@given(slices())
def test_unpack_inverts_pack_and_size_is_exact(data):
    u, bits = data
    buf = pack_matrix(u, bits)
    assert buf.size == stream_nbytes(bits, u.shape[1]) == (int(bits.sum()) * u.shape[1] + 7) // 8
    assert np.array_equal(unpack_matrix(buf, bits, u.shape[1]), u)


def test_layout_is_lsb_first_slice_after_slice():
    """2-bit codes 1, 2, 3, 0 -> bits 10 01 11 00 (LSB first) -> byte 0b00111001; slices of other
    widths follow on in the same stream, padded once at the end."""
    assert pack_matrix(np.array([[1, 2, 3, 0]]), np.array([2])).tolist() == [0b00111001]
    assert pack_matrix(np.array([[1, 0, 1]]), np.array([1])).tolist() == [0b101]
    assert pack_matrix(np.array([[5, 255]]), np.array([8])).tolist() == [5, 255]
    assert pack_matrix(np.array([[3, 3, 3], [1, 0, 1]]), np.array([2, 1])).tolist() == [0b01111111, 0b1]
    assert pack_matrix(np.array([[1, 2, 3, 0], [1, 0, 1, 1]]), np.array([2, 1])).tolist() == [0b00111001, 0b1101]


@pytest.mark.parametrize("gran,shape", [
    (Granularity("tensor"), (4, 3, 2)), (Granularity("channel", 0), (4, 3, 2)),
    (Granularity("channel", 1), (4, 3, 2)), (Granularity("channel", -1), (4, 3, 2)),
    (Granularity("group", group_size=3), (4, 6)), (Granularity("group", group_size=2), (2, 3, 2, 2))])
def test_slices_round_trip(gran, shape):
    x = torch.arange(int(np.prod(shape))).reshape(shape)
    s = to_slices(x, gran)
    assert s.shape == slice_layout(shape, gran)
    assert torch.equal(from_slices(s, gran, shape), x)


@pytest.mark.parametrize("signed", [True, False])
def test_signed_codes_with_per_channel_bits(signed):
    bits = torch.tensor([1, 2, 3, 8, 16])
    lo = -(1 << (bits - 1)) if signed else torch.zeros_like(bits)
    hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    g = torch.Generator().manual_seed(0)
    codes = torch.stack([torch.randint(int(a), int(b) + 1, (7,), generator=g) for a, b in zip(lo, hi)])
    codes[:, 0], codes[:, 1] = lo, hi  # both ends of every range
    gran = Granularity("channel", 0)
    buf = pack_codes(codes, bits, signed, gran)
    assert len(buf) == (int(bits.sum()) * 7 + 7) // 8
    assert torch.equal(unpack_codes(buf, bits, signed, gran, codes.shape), codes.int())


def test_errors():
    with pytest.raises(ConfigError, match="1..16"):
        pack_matrix(np.zeros((1, 2), np.uint32), np.array([17]))
    with pytest.raises(ConfigError, match="does not fit"):
        pack_matrix(np.array([[4]], np.uint32), np.array([2]))
    with pytest.raises(ConfigError, match="below"):
        pack_codes(torch.tensor([[-3]]), torch.tensor([2]), True, Granularity("channel", 0))
    with pytest.raises(FormatError, match="truncated"):
        unpack_matrix(np.zeros(1, np.uint8), np.array([4]), 4)
