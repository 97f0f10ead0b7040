"""A small, strict reader and writer of the safetensors format (no pickle, no code).

Layout: an 8-byte little-endian header length ``N``, ``N`` bytes of UTF-8 JSON
(``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}``,
padded with spaces to a multiple of 8), then the tensor bytes back to back. Files written
here load with the ``safetensors`` package; the reader below trusts nothing: every length,
offset, dtype, shape and key is checked, duplicate JSON keys are refused, and the tensor bytes
must tile the buffer exactly (no holes, no overlaps, no trailing bytes).

>>> import numpy as np
>>> blob = to_bytes({"a": np.arange(3, dtype=np.float32)}, {"k": "v"})
>>> meta, tensors = from_bytes(blob)
>>> meta, tensors["a"].tolist(), header_size(blob)
({'k': 'v'}, [0.0, 1.0, 2.0], 88)
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple

import numpy as np

from ..errors import FormatError
from ..files import write_bytes

DTYPES = {"F32": np.dtype("<f4"), "U8": np.dtype("u1"), "I32": np.dtype("<i4")}
NAMES = {v: k for k, v in DTYPES.items()}
MAX_HEADER_BYTES = 2 << 20  # lowbit writes ~50 KB; parsing JSON costs up to ~20x its size in memory
MAX_DIMS = 8
MAX_ELEMENTS = 1 << 34


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise FormatError(f"duplicate JSON key {key!r} in the header; the file was tampered with")
        out[key] = value
    return out


def parse_json(text: str, what: str) -> Any:
    """``json.loads`` that turns every failure (syntax, depth, huge ints) into FormatError."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except FormatError:
        raise
    except (ValueError, RecursionError, TypeError) as exc:
        raise FormatError(f"{what} is not valid JSON: {str(exc)[:200]}") from None


def to_bytes(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> bytes:
    """Serialise tensors (in the given order) and string metadata to safetensors bytes."""
    header: Dict[str, Any] = {"__metadata__": dict(metadata)}
    chunks, offset = [], 0
    for name, arr in tensors.items():
        arr = np.asarray(arr).copy(order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        if arr.dtype not in NAMES:
            raise FormatError(f"tensor {name!r}: dtype {arr.dtype} is not storable here")
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": NAMES[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def write_file(path, blob: bytes) -> None:
    """Write ``blob`` atomically (temporary file + rename, see :mod:`lowbit.files`)."""
    write_bytes(path, blob)


def header_size(blob: bytes) -> int:
    """Bytes before the tensor data: 8 + the JSON header length."""
    if len(blob) < 8:
        raise FormatError(f"{len(blob)} bytes is too short for a safetensors file (8-byte length first)")
    return 8 + struct.unpack("<Q", blob[:8])[0]


def _header(blob: bytes) -> Tuple[Dict[str, Any], int]:
    n = header_size(blob) - 8
    if n > MAX_HEADER_BYTES or n > len(blob) - 8:
        raise FormatError(f"the header claims {n} bytes but the file has {len(blob) - 8} after the "
                          "length field; the file is truncated or not a safetensors file")
    try:
        text = blob[8:8 + n].decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("the header is not UTF-8 text; not a safetensors file") from None
    header = parse_json(text, "the safetensors header")
    if not isinstance(header, dict):
        raise FormatError("the safetensors header must be a JSON object")
    return header, 8 + n


def _check_entry(name: str, entry: Any) -> Tuple[np.dtype, Tuple[int, ...], int, int]:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise FormatError(f"tensor {name!r}: header entry must have exactly dtype, shape, data_offsets")
    dtype = DTYPES.get(entry["dtype"]) if isinstance(entry["dtype"], str) else None
    if dtype is None:
        raise FormatError(f"tensor {name!r}: dtype {entry['dtype']!r} is not one lowbit writes "
                          f"({', '.join(DTYPES)})")
    shape, offs = entry["shape"], entry["data_offsets"]
    if (not isinstance(shape, list) or len(shape) > MAX_DIMS
            or not all(type(d) is int and 0 <= d < 2**32 for d in shape)):
        raise FormatError(f"tensor {name!r}: bad shape {str(shape)[:80]}")
    if not isinstance(offs, list) or len(offs) != 2 or not all(type(o) is int for o in offs):
        raise FormatError(f"tensor {name!r}: data_offsets must be two integers")
    count = int(np.prod(shape, dtype=np.float64))
    if count > MAX_ELEMENTS or offs[1] - offs[0] != count * dtype.itemsize or offs[0] < 0:
        raise FormatError(f"tensor {name!r}: data_offsets {offs} do not hold a {dtype} tensor "
                          f"of shape {shape}")
    return dtype, tuple(shape), offs[0], offs[1]


def from_bytes(blob: bytes) -> Tuple[Dict[str, str], Dict[str, np.ndarray]]:
    """Parse and validate safetensors bytes -> (metadata, {name: array copy})."""
    header, start = _header(blob)
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise FormatError("__metadata__ must map strings to strings")
    entries = sorted(((_check_entry(k, v), k) for k, v in header.items()), key=lambda e: e[0][2])
    pos, tensors = 0, {}
    for (dtype, shape, begin, end), name in entries:
        if begin != pos:
            raise FormatError(f"tensor {name!r} starts at byte {begin}, expected {pos}: the data "
                              "has holes or overlaps")
        if start + end > len(blob):
            raise FormatError(f"tensor {name!r} ends at byte {start + end} but the file has only "
                              f"{len(blob)}; the file is truncated")
        tensors[name] = np.frombuffer(blob, dtype=dtype, count=(end - begin) // dtype.itemsize,
                                      offset=start + begin).reshape(shape).copy()
        pos = end
    if start + pos != len(blob):
        raise FormatError(f"the tensors cover {pos} bytes but the file holds {len(blob) - start} "
                          "after the header; truncated or trailing data")
    return meta, tensors


def read_file(path, max_bytes: int = 4 << 30) -> bytes:
    """The whole file, refusing anything larger than ``max_bytes``."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"no file at {path}")
    size = path.stat().st_size
    if size > max_bytes:
        raise FormatError(f"{path} is {size} bytes, more than the {max_bytes} this loader accepts")
    return path.read_bytes()
