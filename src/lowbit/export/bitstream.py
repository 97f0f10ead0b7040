"""Pack the integer codes of one quantized tensor into one bit stream, slice by slice.

A tensor is cut into its quantization slices (one per scale: the whole tensor, one channel
along ``axis``, or one group of ``group_size`` fan-in elements). Slice ``s`` holds ``n`` codes of
``bits[s]`` bits each. Codes are stored as unsigned offsets ``u = q - base`` with
``base = -2^(b-1)`` for signed slices and ``0`` for unsigned ones, LSB first, slice after slice,
value after value, padded with zero bits to a whole byte: ``ceil(sum_s bits_s * n / 8)`` bytes,
exactly what :func:`lowbit.accounting.tensor_storage_bytes` counts, for 1..16 bits.

>>> import torch
>>> from lowbit.quantizers.granularity import Granularity
>>> q = torch.tensor([[-2, 1, 0], [3, -4, 2]], dtype=torch.int32)   # 2 channels, 3 values each
>>> bits = torch.tensor([2, 3])
>>> buf = pack_codes(q, bits, True, Granularity("channel", 0))
>>> len(buf)                                                          # (2*3 + 3*3) bits -> 2 bytes
2
>>> torch.equal(unpack_codes(buf, bits, True, Granularity("channel", 0), (2, 3)), q)
True
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
import torch

from ..errors import ConfigError, FormatError
from ..ops.axes import normalize_axis
from ..ops.ranges import MAX_BITS
from ..quantizers.granularity import Granularity

MAX_PACK_BITS = MAX_BITS  # every width a quantizer may have (ops.ranges.check_bits)


def stream_nbytes(bits: Sequence[int], per_slice: int) -> int:
    """Bytes of a stream of ``len(bits)`` slices of ``per_slice`` codes each."""
    return (int(sum(int(b) for b in bits)) * int(per_slice) + 7) // 8


def to_slices(x: torch.Tensor, gran: Granularity) -> torch.Tensor:
    """(num_slices, per_slice) view of ``x`` in stream order (see the module docstring)."""
    if gran.mode == "tensor":
        return x.reshape(1, -1)
    if gran.mode == "group":
        return x.reshape(-1, int(gran.group_size))
    axis = normalize_axis(gran.axis, x.dim())
    return x.movedim(axis, 0).reshape(x.shape[axis], -1)


def from_slices(s: torch.Tensor, gran: Granularity, shape: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`to_slices` for a tensor of ``shape``."""
    shape = tuple(int(d) for d in shape)
    if gran.mode != "channel":
        return s.reshape(shape)
    axis = normalize_axis(gran.axis, len(shape))
    moved = (shape[axis],) + shape[:axis] + shape[axis + 1:]
    return s.reshape(moved).movedim(0, axis)


def storage_base(bits: np.ndarray, signed: bool) -> np.ndarray:
    """Per-slice offset subtracted before packing: ``-2^(b-1)`` (signed) or 0."""
    bits = np.asarray(bits, dtype=np.int64)
    return -(1 << (bits - 1)) if signed else np.zeros_like(bits)


def _check_bits(bits: np.ndarray) -> np.ndarray:
    bits = np.asarray(bits, dtype=np.int64).reshape(-1)
    if bits.size and (bits.min() < 1 or bits.max() > MAX_PACK_BITS):
        raise ConfigError(f"the packed format stores 1..{MAX_PACK_BITS} bits per code, got "
                          f"{int(bits.min())}..{int(bits.max())}")
    return bits


def pack_matrix(u: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Pack a (S, n) matrix of unsigned codes, row ``s`` at ``bits[s]`` bits, into uint8."""
    bits = _check_bits(bits)
    u = np.asarray(u, dtype=np.uint32)  # (S, n)
    if u.size == 0:
        return np.zeros(0, dtype=np.uint8)
    if (u >> bits[:, None].astype(np.uint32)).any():
        raise ConfigError("a code does not fit its slice's bit-width; the quantizer produced "
                          "codes outside its range")
    width = int(bits.max())
    planes = (u[:, :, None] >> np.arange(width, dtype=np.uint32)) & 1  # (S, n, B) LSB first
    valid = np.arange(width)[None, None, :] < bits[:, None, None]  # (S, 1, B)
    stream = planes[np.broadcast_to(valid, planes.shape)].astype(np.uint8)
    return np.packbits(stream, bitorder="little")


CHUNK_BITS = 1 << 23  # bits unpacked at a time: bounds the temporary memory of decoding


def unsigned_container(width: int) -> np.dtype:
    """The smallest unsigned dtype holding ``width``-bit stored offsets."""
    return np.dtype(np.uint8) if width <= 8 else np.dtype(np.uint16)


def code_dtype(width: int, signed: bool) -> np.dtype:
    """The smallest signed dtype holding every code of slices up to ``width`` bits.

    >>> [str(code_dtype(b, s)) for b, s in ((8, True), (8, False), (16, True), (16, False))]
    ['int8', 'int16', 'int16', 'int32']
    """
    limit = width if signed else width + 1  # an unsigned b-bit code needs b + 1 signed bits
    return np.dtype(np.int8) if limit <= 8 else np.dtype(np.int16) if limit <= 16 else np.dtype(np.int32)


def _unpack_run(buf: np.ndarray, bit_offset: int, count: int, bits: int, out: np.ndarray) -> None:
    """Decode ``count`` codes of ``bits`` bits from bit ``bit_offset`` into ``out`` (1-D), a
    chunk at a time (never more than CHUNK_BITS unpacked bits in memory)."""
    step = max(8, CHUNK_BITS // bits // 8 * 8)
    for start in range(0, count, step):
        n = min(step, count - start)
        lo = bit_offset + start * bits
        raw = np.unpackbits(buf[lo // 8:(lo + n * bits + 7) // 8], bitorder="little")
        planes = raw[lo % 8:lo % 8 + n * bits].reshape(n, bits)  # (n, bits) LSB first
        acc = planes[:, 0].astype(out.dtype)
        for i in range(1, bits):
            acc |= planes[:, i].astype(out.dtype) << i
        out[start:start + n] = acc


def _unpack_group(buf, bit_offset: int, bits: np.ndarray, per_slice: int, out: np.ndarray) -> None:
    """Decode consecutive small slices of different bit-widths at once: (g, per_slice) ``out``."""
    width = int(bits.max())
    total = int(bits.sum()) * per_slice
    raw = np.unpackbits(buf[bit_offset // 8:(bit_offset + total + 7) // 8], bitorder="little")
    stream = raw[bit_offset % 8:bit_offset % 8 + total]
    planes = np.zeros((bits.size, per_slice, width), dtype=np.uint8)
    valid = np.arange(width)[None, None, :] < bits[:, None, None]
    planes[np.broadcast_to(valid, planes.shape)] = stream
    acc = planes[:, :, 0].astype(out.dtype)
    for i in range(1, width):
        acc |= planes[:, :, i].astype(out.dtype) << i
    out[...] = acc


def unpack_matrix(buf: np.ndarray, bits: np.ndarray, per_slice: int) -> np.ndarray:
    """Inverse of :func:`pack_matrix`: (S, per_slice) stored offsets in the smallest unsigned
    dtype (uint8 up to 8 bits); checks the byte count first. Memory: the result plus a
    bounded chunk, whatever the tensor size."""
    bits = _check_bits(bits)
    buf = np.asarray(buf, dtype=np.uint8).reshape(-1)
    need = stream_nbytes(bits, per_slice)
    if buf.size != need:
        raise FormatError(f"packed codes hold {buf.size} bytes but {bits.size} slices of "
                          f"{per_slice} codes at bits {sorted(set(bits.tolist()))} need {need}; "
                          "the file is truncated or corrupt")
    out = np.zeros((bits.size, per_slice), dtype=unsigned_container(int(bits.max(initial=1))))
    if bits.size == 0 or per_slice == 0:
        return out
    if bool((bits == bits[0]).all()):  # one run of equal-width codes
        _unpack_run(buf, 0, bits.size * per_slice, int(bits[0]), out.reshape(-1))
        return out
    offsets = np.concatenate([[0], np.cumsum(bits * per_slice)])
    width, s = int(bits.max()), 0
    per_group = max(1, CHUNK_BITS // (8 * per_slice * width))  # planes cost 8 bits per bit
    while s < bits.size:
        if per_slice * width * 8 > CHUNK_BITS:  # big slices: one equal-width run each
            _unpack_run(buf, int(offsets[s]), per_slice, int(bits[s]), out[s])
            s += 1
            continue
        e = min(bits.size, s + per_group)
        _unpack_group(buf, int(offsets[s]), bits[s:e], per_slice, out[s:e])
        s = e
    return out


def pack_codes(codes: torch.Tensor, bits: torch.Tensor, signed: bool, gran: Granularity) -> np.ndarray:
    """Integer codes (any int dtype, tensor shape) -> packed uint8 stream."""
    rows = to_slices(codes.to(torch.int64), gran).numpy()  # (S, n)
    b = _check_bits(bits.reshape(-1).numpy())
    if rows.shape[0] != b.size:
        raise ConfigError(f"{rows.shape[0]} slices but {b.size} bit-widths")
    u = rows - storage_base(b, signed)[:, None]
    if (u < 0).any():
        raise ConfigError("a code lies below its slice's range; cannot pack it")
    return pack_matrix(u, b)


def unpack_codes(buf: np.ndarray, bits: torch.Tensor, signed: bool, gran: Granularity,
                 shape: Sequence[int], qmin=None, qmax=None) -> torch.Tensor:
    """Packed uint8 stream -> codes of ``shape`` in the smallest signed dtype (:func:`code_dtype`;
    int8 up to 8 signed bits), the inverse of :func:`pack_codes`. With per-slice ``qmin`` /
    ``qmax``, codes outside them are a FormatError (checked per slice, without temporaries)."""
    b = _check_bits(bits.reshape(-1).numpy())
    n = int(np.prod(shape, dtype=np.int64)) // max(b.size, 1)
    u = unpack_matrix(buf, b, n)  # (S, n) unsigned offsets
    dtype = code_dtype(int(b.max(initial=1)), signed)
    if signed:  # q = u - 2^(b-1): wrap-around arithmetic in the container, then its signed view
        u -= (1 << (b - 1)).astype(u.dtype)[:, None]
        codes = u.view(np.int8 if u.dtype == np.uint8 else np.int16)
    else:
        codes = u.view(dtype) if dtype.itemsize == u.dtype.itemsize else u.astype(dtype)
    if qmin is not None and codes.size:
        lo, hi = np.asarray(qmin).reshape(-1), np.asarray(qmax).reshape(-1)
        if bool((codes.min(axis=1) < lo).any() or (codes.max(axis=1) > hi).any()):
            raise FormatError("decoded codes fall outside [qmin, qmax]; the file is corrupt")
    return from_slices(torch.from_numpy(codes), gran, shape).contiguous()


def slice_layout(shape: Sequence[int], gran: Granularity) -> Tuple[int, int]:
    """(number of slices, codes per slice) of a tensor of ``shape``; ConfigError if invalid."""
    n = int(np.prod([int(d) for d in shape], dtype=np.int64))
    if gran.mode == "tensor":
        return 1, n
    if gran.mode == "group":
        if len(shape) < 2 or not gran.group_size or (n // max(int(shape[0]), 1)) % gran.group_size:
            raise ConfigError(f"group size {gran.group_size} does not divide the fan-in of {tuple(shape)}")
        return n // gran.group_size, int(gran.group_size)
    axis = normalize_axis(gran.axis, len(shape))
    count = int(shape[axis])
    return count, (n // count if count else 0)
