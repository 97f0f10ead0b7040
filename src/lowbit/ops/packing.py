"""Bit packing of unsigned integer codes, 1..8 bits per value, LSB first.

Value ``i`` occupies bits ``[i*b, (i+1)*b)`` of a little-endian bit stream; the stream is padded
with zero bits to a whole byte. Rows with different bit-widths (per-channel mixed precision)
are packed back to back into one stream with :func:`pack_rows`, so a layer costs exactly
``ceil(sum_c bits_c * n_c / 8)`` bytes.

>>> import numpy as np
>>> q = np.array([1, 2, 3, 0, 3], dtype=np.uint8)
>>> packed = pack_bits(q, 2)
>>> len(packed), unpack_bits(packed, 2, 5).tolist()
(2, [1, 2, 3, 0, 3])
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ConfigError, FormatError


def _check_pack_bits(bits: int) -> int:
    if isinstance(bits, bool) or int(bits) != bits or not 1 <= int(bits) <= 8:
        raise ConfigError(f"packing supports 1..8 bits per value, got {bits!r}")
    return int(bits)


def packed_nbytes(count: int, bits: int) -> int:
    """Bytes that ``count`` values of ``bits`` bits occupy when packed."""
    return (int(count) * int(bits) + 7) // 8


def _to_bit_matrix(codes: np.ndarray, bits: int) -> np.ndarray:
    """(n,) codes -> (n, bits) array of 0/1, least significant bit first."""
    shifts = np.arange(bits, dtype=np.uint8)
    return ((codes[:, None] >> shifts) & 1).astype(np.uint8)


def pack_bits(codes, bits: int) -> np.ndarray:
    """Pack unsigned codes (each < 2**bits) into a uint8 array of ``ceil(n*bits/8)`` bytes."""
    bits = _check_pack_bits(bits)
    codes = np.asarray(codes).reshape(-1)
    if codes.size and (codes.min() < 0 or codes.max() >= (1 << bits)):
        raise ConfigError(
            f"codes must lie in 0..{(1 << bits) - 1} to pack into {bits} bits, "
            f"got range {codes.min()}..{codes.max()}; offset signed values by -qmin first"
        )
    if bits == 8:
        return codes.astype(np.uint8)
    return np.packbits(_to_bit_matrix(codes.astype(np.uint8), bits).reshape(-1), bitorder="little")


def unpack_bits(packed, bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: the first ``count`` codes as uint8."""
    bits = _check_pack_bits(bits)
    packed = np.asarray(packed, dtype=np.uint8).reshape(-1)
    if packed.size < packed_nbytes(count, bits):
        raise FormatError(
            f"packed data holds {packed.size} bytes but {count} values of {bits} bits need "
            f"{packed_nbytes(count, bits)}; the file is truncated or corrupt"
        )
    if bits == 8:
        return packed[:count].copy()
    flat = np.unpackbits(packed, bitorder="little")[: count * bits].reshape(count, bits)
    weights = (1 << np.arange(bits, dtype=np.uint16)).astype(np.uint16)
    return (flat.astype(np.uint16) @ weights).astype(np.uint8)


def pack_rows(rows: Sequence[np.ndarray], bits: Sequence[int]) -> np.ndarray:
    """Pack rows with per-row bit-widths back to back into one byte stream."""
    if len(rows) != len(bits):
        raise ConfigError(f"got {len(rows)} rows but {len(bits)} bit-widths")
    for r, b in zip(rows, bits):
        r = np.asarray(r)
        if r.size and (r.min() < 0 or r.max() >= (1 << _check_pack_bits(b))):
            raise ConfigError(f"a row's codes exceed its {b}-bit range 0..{(1 << int(b)) - 1}")
    streams = [_to_bit_matrix(np.asarray(r).reshape(-1).astype(np.uint8), int(b)).reshape(-1)
               for r, b in zip(rows, bits)]
    stream = np.concatenate(streams) if streams else np.zeros(0, np.uint8)
    return np.packbits(stream, bitorder="little")


def unpack_rows(packed, bits: Sequence[int], row_size: int) -> np.ndarray:
    """Inverse of :func:`pack_rows` for rows of equal length: (len(bits), row_size) uint8."""
    packed = np.asarray(packed, dtype=np.uint8).reshape(-1)
    total = int(sum(int(b) for b in bits)) * row_size
    if packed.size < (total + 7) // 8:
        raise FormatError(
            f"packed data holds {packed.size} bytes but the rows need {(total + 7) // 8}; "
            "the file is truncated or corrupt"
        )
    stream = np.unpackbits(packed, bitorder="little")[:total]
    out = np.empty((len(bits), row_size), dtype=np.uint8)
    pos = 0
    for i, b in enumerate(bits):
        b = _check_pack_bits(b)
        chunk = stream[pos : pos + b * row_size].reshape(row_size, b).astype(np.uint16)
        out[i] = chunk @ (1 << np.arange(b, dtype=np.uint16))
        pos += b * row_size
    return out
