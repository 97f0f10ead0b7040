"""The packed lowbit file: a safetensors file whose data is exactly the accounted size.

Data (the tensors): per quantized layer the packed codes, float32 scales, float32 zero points
(asymmetric quantizers only), uint8 bit-widths (mixed slices only), the bias (float32, or packed
when quantized) and the float32 scale (+ zero point) of each input quantizer; then every other
float tensor needed at inference as float32 (``f:<state key>``). Everything else (shapes,
bit-widths, granularity, signedness, ranges, the architecture, which BNs were folded, a
SHA-256 over manifest + data) lives in the JSON header as the ``lowbit.manifest`` and
``lowbit.sha256`` metadata strings. Hence, exactly:

    file size - header size == lowbit.account(model, x, fold_bn=...).size_bytes_packed

Loading parses and checks everything and never executes code from the file.

>>> import torch, tempfile, os
>>> from lowbit import account, calibrate, prepare
>>> from lowbit.models import create_model
>>> model = prepare(create_model("mlp", hidden=16))
>>> calibrate(model, [torch.randn(8, 1, 28, 28)])
>>> path = os.path.join(tempfile.mkdtemp(), "mlp.lowbit")
>>> info = save_packed(model, path)
>>> info.payload_bytes == account(model, fold_bn=True).size_bytes_packed
True
>>> ex = load_packed(path)
>>> sorted(ex.quantized.layers)
['fc1', 'fc2']
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch

from .. import __version__
from ..errors import FormatError
from . import safetensors_io as st
from .manifest import FORMAT, MAX_DECODED_BYTES, VERSION, decode_manifest, encode_manifest
from .source import Exportable, exportable

MANIFEST_KEY, DIGEST_KEY = "lowbit.manifest", "lowbit.sha256"


@dataclass
class PackedInfo:
    """What :func:`save_packed` wrote."""

    path: Path
    file_bytes: int
    header_bytes: int       # 8-byte length + JSON header (incl. padding)
    payload_bytes: int      # tensor data == accounted packed size
    manifest: Dict[str, Any]


def _digest(manifest_text: str, arrays: Dict[str, np.ndarray], payload: bytes) -> str:
    index = json.dumps([[k, str(a.dtype), list(a.shape)] for k, a in arrays.items()])
    h = hashlib.sha256(manifest_text.encode("utf-8"))
    h.update(b"\0" + index.encode("utf-8") + b"\0")
    h.update(payload)
    return h.hexdigest()


def _ordered(arrays: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """4-byte tensors first so every float32 starts 4-byte aligned."""
    return dict(sorted(arrays.items(), key=lambda kv: -kv[1].dtype.itemsize))


def to_packed_bytes(ex: Exportable) -> Tuple[bytes, Dict[str, Any]]:
    """Serialise an Exportable; returns (file bytes, manifest)."""
    manifest, arrays = encode_manifest(ex, __version__)
    arrays = _ordered(arrays)
    text = json.dumps(manifest, separators=(",", ":"), sort_keys=True)
    payload = b"".join(np.asarray(a).tobytes(order="C") for a in arrays.values())
    blob = st.to_bytes(arrays, {MANIFEST_KEY: text, DIGEST_KEY: _digest(text, arrays, payload)})
    return blob, manifest


def save_packed(source, path, *, fold_bn: bool = True, example_input: Optional[torch.Tensor] = None,
                module_kwargs: Optional[Dict[str, Any]] = None,
                data: Optional[Dict[str, Any]] = None) -> PackedInfo:
    """Write a prepared+calibrated model (or QuantizedModel / Exportable) as a packed file.

    ``fold_bn``: fold BNs into the preceding layers (their scales and biases); ``data``:
    ``{"dataset": name, "image_size": n}`` stored for ``lowbit eval FILE``; ``module_kwargs``:
    constructor kwargs of your own model class, recorded so the file can rebuild it.
    """
    ex = exportable(source, fold_bn=fold_bn, example_input=example_input,
                    module_kwargs=module_kwargs, data=data)
    if data is not None:
        ex.data = dict(data)
    blob, manifest = to_packed_bytes(ex)
    st.write_file(path, blob)
    head = st.header_size(blob)
    return PackedInfo(Path(path), len(blob), head, len(blob) - head, manifest)


def from_packed_bytes(blob: bytes, verify: bool = True,
                      max_decoded_bytes: int = MAX_DECODED_BYTES) -> Exportable:
    """Parse and validate packed-file bytes (see :func:`load_packed`)."""
    meta, arrays = st.from_bytes(blob)
    text = meta.get(MANIFEST_KEY)
    if text is None:
        raise FormatError("not a lowbit packed file: the safetensors metadata has no "
                          f"{MANIFEST_KEY!r} entry (export with `lowbit export --format packed`)")
    if verify:
        payload = blob[st.header_size(blob):]
        if meta.get(DIGEST_KEY) != _digest(text, arrays, payload):
            raise FormatError("checksum mismatch: the file was modified or corrupted after export "
                              "(lowbit.sha256 does not match the manifest and data)")
    manifest = st.parse_json(text, "the lowbit manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise FormatError(f"not a lowbit packed file (manifest format must be {FORMAT!r})")
    if manifest.get("version") != VERSION:
        raise FormatError(f"packed format version {manifest.get('version')!r} is not supported by "
                          f"lowbit {__version__} (reads version {VERSION}); upgrade lowbit")
    return decode_manifest(manifest, arrays, max_decoded_bytes)


def load_packed(path, *, verify: bool = True, max_decoded_bytes: int = MAX_DECODED_BYTES) -> Exportable:
    """Read a packed file into an :class:`Exportable` (no code from the file runs).

    Every name, dtype, shape and byte count is checked against the manifest, codes against
    their ranges, floats for NaN/Inf, and (``verify``) the SHA-256 over manifest and data.
    Any problem is a :class:`~lowbit.errors.FormatError`. Run it with
    ``IntegerExecutor(ex)`` / ``FakeQuantExecutor(ex)`` or export it to ONNX.

    Untrusted files: the codes are unpacked only after all of that (and, for registry models,
    the shapes against the architecture) has been checked, into int8 (int16 above 8 bits),
    and at most ``max_decoded_bytes`` of them (default 1 GiB), so a small file cannot claim
    its way to gigabytes of memory.
    """
    return from_packed_bytes(st.read_file(path), verify=verify, max_decoded_bytes=max_decoded_bytes)
