"""The strict safetensors reader/writer: round trip, compatibility, and refusal of bad files."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from safetensors.numpy import load as st_load

from lowbit.errors import FormatError
from lowbit.export.safetensors_io import from_bytes, header_size, to_bytes

ARRAYS = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "s": np.array(2.5, np.float32),
          "c": np.arange(5, dtype=np.uint8)}


def test_round_trip_and_official_reader():
    blob = to_bytes(ARRAYS, {"k": "v"})
    meta, arrays = from_bytes(blob)
    assert meta == {"k": "v"} and list(arrays) == list(ARRAYS)
    for k, v in ARRAYS.items():
        assert arrays[k].shape == v.shape and np.array_equal(arrays[k], v)
    official = st_load(blob)
    assert all(np.array_equal(official[k], v) for k, v in ARRAYS.items())
    assert len(blob) - header_size(blob) == sum(a.nbytes for a in ARRAYS.values())
    assert header_size(blob) % 8 == 0


def _with_header(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


@pytest.mark.parametrize("blob,match", [
    (b"", "too short"),
    (struct.pack("<Q", 1 << 40) + b"{}", "truncated"),
    (struct.pack("<Q", 2) + b"\xff\xfe", "UTF-8"),
    (struct.pack("<Q", 4) + b"[1,2", "JSON"),
    (struct.pack("<Q", 2) + b"[]", "JSON object"),
    (_with_header({"a": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}}, b"0" * 8), "dtype"),
    (_with_header({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"0" * 4), "data_offsets"),
    (_with_header({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}}, b"0" * 3), "trailing"),
    (_with_header({"a": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]}}, b"0" * 3), "holes"),
    (_with_header({"a": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 1]}}, b"0"), "shape"),
    (_with_header({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1], "x": 1}}, b"0"), "exactly"),
    (_with_header({"__metadata__": {"k": 1}}, b""), "strings"),
    (struct.pack("<Q", 15) + b'{"a":1, "a":2 }', "duplicate"),
    (struct.pack("<Q", 2001) + b"[" * 2000 + b"]", "JSON"),
])
def test_bad_files(blob, match):
    with pytest.raises(FormatError, match=match):
        from_bytes(blob)
