"""Mutations of packed files for fuzzing the loader (tests and ``benchmarks/fuzz_packed.py``).

Every mutated file must either load (and run) or raise the documented
:class:`~lowbit.errors.FormatError` / :class:`~lowbit.errors.ConfigError`; anything else is a bug.

Mutations: ``bitflip`` (1-8 random bits anywhere), ``truncate``, ``extend`` (trailing bytes),
``header`` (random bytes written into the JSON header), ``length`` (a wrong header length), and
``manifest`` (one JSON value of the manifest changed, then the checksum recomputed, so the edit
reaches the validation behind the checksum).

>>> import numpy as np
>>> kind, blob = mutate(b"0" * 64, np.random.default_rng(0), kinds=("truncate",))
>>> kind, len(blob) < 64
('truncate', True)
"""

from __future__ import annotations

import json
import struct
from typing import Any, List, Sequence, Tuple

import numpy as np
import torch

from ..errors import ConfigError, FormatError
from . import safetensors_io as sio

KINDS = ("bitflip", "truncate", "extend", "header", "length", "manifest")
EXPECTED = (FormatError, ConfigError)


def _bitflip(blob: bytes, rng) -> bytes:
    b = bytearray(blob)
    for _ in range(int(rng.integers(1, 9))):
        i = int(rng.integers(0, len(b)))
        b[i] ^= 1 << int(rng.integers(0, 8))
    return bytes(b)


def _header(blob: bytes, rng) -> bytes:
    end = min(sio.header_size(blob), len(blob))
    b = bytearray(blob)
    start = int(rng.integers(8, max(end, 9)))
    span = rng.integers(0, 256, size=int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
    b[start:start + len(span)] = span
    return bytes(b[:len(blob)])


def _leaves(obj: Any, path: Tuple = ()) -> List[Tuple]:
    if isinstance(obj, dict):
        return [leaf for k, v in obj.items() for leaf in _leaves(v, path + (k,))] or [path]
    if isinstance(obj, list):
        return [leaf for i, v in enumerate(obj) for leaf in _leaves(v, path + (i,))] or [path]
    return [path]


def _new_value(old: Any, rng) -> Any:
    choices = [None, -1, 0, 1, 2**40, 1e300, "", "x", [], {}, True]
    if type(old) is int:
        choices += [old + 1, old - 1, -old, old * 2]
    if isinstance(old, str):
        choices += [old + "x", old[:-1], old.upper()]
    if isinstance(old, list):
        choices += [old[:-1], old + old[-1:]]
    return choices[int(rng.integers(0, len(choices)))]


def _manifest(blob: bytes, rng) -> bytes:
    from .packed import DIGEST_KEY, MANIFEST_KEY, _digest

    meta, arrays = sio.from_bytes(blob)
    manifest = json.loads(meta[MANIFEST_KEY])
    leaves = [p for p in _leaves(manifest) if p]
    path = leaves[int(rng.integers(0, len(leaves)))]
    target = manifest
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = _new_value(target[path[-1]], rng)
    text = json.dumps(manifest)
    payload = b"".join(a.tobytes() for a in arrays.values())
    return sio.to_bytes(arrays, {MANIFEST_KEY: text, DIGEST_KEY: _digest(text, arrays, payload)})


def mutate(blob: bytes, rng, kinds: Sequence[str] = KINDS) -> Tuple[str, bytes]:
    """(kind, mutated bytes) for a random kind of ``kinds``."""
    kind = kinds[int(rng.integers(0, len(kinds)))]
    if kind == "bitflip":
        return kind, _bitflip(blob, rng)
    if kind == "truncate":
        return kind, blob[:int(rng.integers(0, len(blob)))]
    if kind == "extend":
        return kind, blob + rng.integers(0, 256, size=int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
    if kind == "header":
        return kind, _header(blob, rng)
    if kind == "length":
        return kind, struct.pack("<Q", int(rng.integers(0, 2**63))) + blob[8:]
    return kind, _manifest(blob, rng)


def check(blob: bytes, verify: bool, x: torch.Tensor) -> str:
    """Load (and if it loads, run) ``blob``: ``ok`` or the expected error class name.

    Any other exception propagates: that is a loader bug.
    """
    from .executor import FakeQuantExecutor, IntegerExecutor
    from .packed import from_packed_bytes

    try:
        ex = from_packed_bytes(blob, verify=verify)
        for runner in (FakeQuantExecutor, IntegerExecutor):
            runner(ex)(x)
    except EXPECTED as exc:
        return type(exc).__name__
    return "ok"
