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
from typing import Any, Callable, List, Sequence, Tuple

import numpy as np
import torch

from ..errors import ConfigError, FormatError
from ..models import create_model
from ..nn.prepare import prepare
from ..nn.spec import QuantSpec
from ..quantizers.config import QuantizerConfig
from . import safetensors_io as sio
from .evaluate import ort_predictor, qonnx_predictor
from .executor import FakeQuantExecutor, IntegerExecutor
from .onnx_ops import require_onnx
from .packed import DIGEST_KEY, MANIFEST_KEY, _digest, from_packed_bytes, to_packed_bytes
from .source import exportable

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


def resign(blob: bytes, edit: Callable[[dict], None]) -> bytes:
    """``blob`` with ``edit(manifest)`` applied in place and a valid checksum again, so that the
    edit reaches the checks behind the checksum (a tampered file made by someone who knows
    the format)."""
    meta, arrays = sio.from_bytes(blob)
    manifest = json.loads(meta[MANIFEST_KEY])
    edit(manifest)
    text = json.dumps(manifest)
    payload = b"".join(a.tobytes() for a in arrays.values())
    return sio.to_bytes(arrays, {MANIFEST_KEY: text, DIGEST_KEY: _digest(text, arrays, payload)})


def _manifest(blob: bytes, rng) -> bytes:
    def edit(manifest):
        leaves = [p for p in _leaves(manifest) if p]
        path = leaves[int(rng.integers(0, len(leaves)))]
        target = manifest
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = _new_value(target[path[-1]], rng)

    return resign(blob, edit)


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
    try:
        ex = from_packed_bytes(blob, verify=verify)
        for runner in (FakeQuantExecutor, IntegerExecutor):
            runner(ex)(x)
    except EXPECTED as exc:
        return type(exc).__name__
    return "ok"


# ----- size bombs: small files that claim a lot of memory --------------------------------------
BOMB_KINDS = ("bomb_arch", "bomb_cap", "bomb_valid", "bomb_header")


def one_bit_mlp(hidden: int) -> bytes:
    """A valid packed registry MLP with 1-bit weights: ``784 * hidden`` codes in ``98 * hidden``
    bytes, the largest decoded/stored ratio the format allows (8x at int8 codes)."""
    torch.manual_seed(0)
    spec = QuantSpec(weight=QuantizerConfig(kind="uniform", bits=1, granularity="channel"), act=None)
    model = prepare(create_model("mlp", hidden=hidden), spec).eval()
    return to_packed_bytes(exportable(model))[0]


def size_bomb(kind: str, base: bytes, rng) -> bytes:
    """A file of ``kind`` (BOMB_KINDS) made from ``base`` (:func:`one_bit_mlp`):

    * ``bomb_arch``: the stored 1-bit tensors do not fit the architecture the file names
      (re-signed), which the loader must find before it decodes them;
    * ``bomb_cap`` / ``bomb_valid``: the file itself (loaded with a cap below / above its
      decoded size);
    * ``bomb_header``: a valid file whose header is padded with up to 1.5 MB of nested empty
      JSON lists, the costliest JSON per byte.
    """
    if kind in ("bomb_cap", "bomb_valid"):
        return base

    def edit(manifest):
        if kind == "bomb_arch":
            kwargs = manifest["model"]["arch"].setdefault("kwargs", {})
            kwargs["hidden"] = int(rng.integers(1, 64))
        else:
            count = int(rng.integers(1 << 16, sio.MAX_HEADER_BYTES * 3 // 16))  # 4 bytes each
            manifest["quant_spec"] = {"padding": [[]] * count}

    return resign(base, edit)


# ----- files that name code: nothing may be imported without the permission flag ------------
IMPORT_KINDS = ("import_module", "import_registry", "import_qonnx", "import_onnx")
CANARY = "lowbit_fuzz_canary"


def import_file(kind: str, packed: bytes, onnx_bytes: bytes) -> bytes:
    """A file that names module :data:`CANARY`: as the model class of a packed file, as a
    registry model name, or as the operator domain of a node in a QONNX/ONNX file."""
    if kind == "import_module":
        return resign(packed, lambda m: m.update(model={"source": "module", "class": f"{CANARY}:Net",
                                                        "kwargs": {}}))
    if kind == "import_registry":
        return resign(packed, lambda m: m["model"]["arch"].update(name=CANARY))
    onnx = require_onnx()
    proto = onnx.load_from_string(onnx_bytes)
    graph, out = proto.graph, proto.graph.output[0].name
    graph.node[-1].output[0] = out + "_pre"
    graph.node.append(onnx.helper.make_node("Canary", [out + "_pre"], [out], domain=CANARY))
    proto.opset_import.append(onnx.helper.make_opsetid(CANARY, 1))
    return proto.SerializeToString()


def check_import(kind: str, blob: bytes, path, x: torch.Tensor) -> str:
    """Load and run an :func:`import_file` the way ``lowbit eval`` does (without
    ``allow_import``): the expected error class name or ``ok``; the caller checks that
    :data:`CANARY` was not imported."""
    try:
        if kind in ("import_qonnx", "import_onnx"):
            with open(path, "wb") as f:
                f.write(blob)
            (qonnx_predictor if kind == "import_qonnx" else ort_predictor)(path)(x)
        else:
            return check(blob, False, x)
    except EXPECTED as exc:
        return type(exc).__name__
    return "ok"
