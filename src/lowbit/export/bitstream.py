"""Pack the integer codes of one quantized tensor into one bit stream, slice by slice.

A tensor is cut into its quantization slices (one per scale: the whole tensor, one channel
along ``axis``, or one group of ``group_size`` fan-in elements). Slice ``s`` holds ``n`` codes of
``bits[s]`` bits each. Codes are stored as unsigned offsets ``u = q - base`` with
``base = -2^(b-1)`` for signed slices and ``0`` for unsigned ones, LSB first, slice after slice,
value after value, padded with zero bits to a whole byte: ``ceil(sum_s bits_s * n / 8)`` bytes,
exactly what :func:`lowbit.accounting.tensor_storage_bytes` counts. For 1..8 bits the layout is
the one of :func:`lowbit.ops.packing.pack_rows`; this module also handles 9..16 bits.

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
from ..quantizers.granularity import Granularity

MAX_PACK_BITS = 16


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


def unpack_matrix(buf: np.ndarray, bits: np.ndarray, per_slice: int) -> np.ndarray:
    """Inverse of :func:`pack_matrix`: (S, per_slice) uint32 codes; checks the byte count."""
    bits = _check_bits(bits)
    buf = np.asarray(buf, dtype=np.uint8).reshape(-1)
    need = stream_nbytes(bits, per_slice)
    if buf.size != need:
        raise FormatError(f"packed codes hold {buf.size} bytes but {bits.size} slices of "
                          f"{per_slice} codes at bits {sorted(set(bits.tolist()))} need {need}; "
                          "the file is truncated or corrupt")
    if bits.size == 0 or per_slice == 0:
        return np.zeros((bits.size, per_slice), dtype=np.uint32)
    width = int(bits.max())
    total = int(bits.sum()) * per_slice
    stream = np.unpackbits(buf, bitorder="little")[:total]
    valid = np.arange(width)[None, None, :] < bits[:, None, None]
    planes = np.zeros((bits.size, per_slice, width), dtype=np.uint32)
    planes[np.broadcast_to(valid, planes.shape)] = stream
    return (planes << np.arange(width, dtype=np.uint32)).sum(axis=2, dtype=np.uint32)


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
                 shape: Sequence[int]) -> torch.Tensor:
    """Packed uint8 stream -> int32 codes of ``shape`` (inverse of :func:`pack_codes`)."""
    b = _check_bits(bits.reshape(-1).numpy())
    n = int(np.prod(shape, dtype=np.int64)) // max(b.size, 1)
    u = unpack_matrix(buf, b, n).astype(np.int64) + storage_base(b, signed)[:, None]
    return from_slices(torch.from_numpy(u.astype(np.int32)), gran, shape).contiguous()


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
