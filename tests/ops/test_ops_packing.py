"""Bit packing round trips (1..8 bits, mixed per-row bit-widths) and bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit.errors import ConfigError, FormatError
from lowbit.ops import pack_bits, pack_rows, packed_nbytes, unpack_bits, unpack_rows

SETTINGS = settings(max_examples=80, deadline=None)


@st.composite
def codes_and_bits(draw):
    bits = draw(st.integers(1, 8))
    codes = draw(st.lists(st.integers(0, 2**bits - 1), min_size=0, max_size=200))
    return np.array(codes, dtype=np.uint8), bits


@SETTINGS
@given(codes_and_bits())
def test_pack_unpack_round_trip(cb):
    codes, bits = cb
    packed = pack_bits(codes, bits)
    assert packed.dtype == np.uint8
    assert packed.size == packed_nbytes(codes.size, bits) == (codes.size * bits + 7) // 8
    assert np.array_equal(unpack_bits(packed, bits, codes.size), codes)


@SETTINGS
@given(st.lists(st.integers(1, 8), min_size=1, max_size=12), st.integers(1, 30), st.data())
def test_pack_rows_mixed_bits_round_trip(bits, row_size, data):
    rows = [np.array(data.draw(st.lists(st.integers(0, 2**b - 1), min_size=row_size,
                                        max_size=row_size)), dtype=np.uint8) for b in bits]
    packed = pack_rows(rows, bits)
    assert packed.size == (sum(bits) * row_size + 7) // 8  # one stream, padded once
    out = unpack_rows(packed, bits, row_size)
    assert out.shape == (len(bits), row_size)
    assert np.array_equal(out, np.stack(rows))


def test_layout_is_lsb_first():
    # 2-bit codes 1, 2, 3, 0 -> bits 10 01 11 00 (LSB first) -> byte 0b00111001
    assert pack_bits(np.array([1, 2, 3, 0]), 2).tolist() == [0b00111001]
    assert pack_bits(np.array([1, 0, 1]), 1).tolist() == [0b101]
    assert pack_bits(np.array([5, 255]), 8).tolist() == [5, 255]


def test_packed_size_by_hand():
    assert packed_nbytes(10, 3) == 4   # 30 bits
    assert packed_nbytes(8, 1) == 1
    assert packed_nbytes(0, 4) == 0
    assert pack_rows([np.array([3, 3, 3]), np.array([1, 0, 1])], [2, 1]).size == 2  # 9 bits


@pytest.mark.parametrize("bits", [0, 9, 2.5, True])
def test_bad_bits_rejected(bits):
    with pytest.raises(ConfigError, match="1..8 bits"):
        pack_bits(np.array([0, 1]), bits)


def test_codes_out_of_range_rejected_with_advice():
    with pytest.raises(ConfigError, match="offset signed values"):
        pack_bits(np.array([0, 4]), 2)
    with pytest.raises(ConfigError, match="offset signed values"):
        pack_bits(np.array([-1, 1]), 2)
    with pytest.raises(ConfigError, match="2-bit range"):
        pack_rows([np.array([4])], [2])
    with pytest.raises(ConfigError, match="2 rows but 1 bit-widths"):
        pack_rows([np.array([1]), np.array([1])], [2])


def test_truncated_data_is_a_format_error():
    packed = pack_bits(np.arange(16) % 8, 3)
    with pytest.raises(FormatError, match="truncated"):
        unpack_bits(packed[:-1], 3, 16)
    packed = pack_rows([np.array([1, 2]), np.array([3, 0])], [2, 4])
    with pytest.raises(FormatError, match="truncated"):
        unpack_rows(packed[:0], [2, 4], 2)
