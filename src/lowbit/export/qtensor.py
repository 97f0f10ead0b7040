"""Quantized tensors and activation quantizers <-> (manifest entry, stored arrays).

A quantized weight (or bias) ``P`` is stored as

* ``P.codes``  uint8: the packed bit stream (:mod:`lowbit.export.bitstream`);
* ``P.scale``  float32, one per slice (log2 tensors store ``min_exp`` here instead);
* ``P.zero_point`` float32, one per slice, only when the quantizer stores one (asymmetric);
* ``P.bits``   uint8, one per slice, only when slices differ in bit-width;

and described in the manifest by ``{"shape", "kind", "signed", "granularity", "bits",
"zero_point", "range", "transform"}``. An activation quantizer stores ``A.scale`` (and
``A.zero_point`` when asymmetric) and is described by ``{"kind", "signed", "bits", "qmin",
"qmax", "zero_point", "rounding", "transform"}``. These are exactly the bytes
:mod:`lowbit.accounting` counts.

>>> import torch
>>> from lowbit.quantizers import QParams, Granularity
>>> qp = QParams(torch.tensor([0.5, 0.25]), torch.zeros(2), torch.full((2,), -8, dtype=torch.int32),
...              torch.full((2,), 7, dtype=torch.int32), torch.full((2,), 4, dtype=torch.int32),
...              True, Granularity("channel", 0))
>>> codes = torch.tensor([[1, -8], [7, 0]], dtype=torch.int32)
>>> desc, arrays = encode_qtensor("fc.weight", codes, qp)
>>> sorted(arrays), desc["bits"], desc["zero_point"]
(['fc.weight.codes', 'fc.weight.scale'], 4, 'none')
>>> codes2, qp2 = decode_qtensor("fc.weight", desc, arrays, set())
>>> torch.equal(codes2, codes), torch.equal(qp2.scale, qp.scale)
(True, True)
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Set, Tuple

import numpy as np
import torch

from ..errors import ConfigError, FormatError
from ..quantizers.base import QParams
from ..quantizers.granularity import Granularity
from . import checks as C
from .bitstream import MAX_PACK_BITS, code_dtype, pack_codes, slice_layout, stream_nbytes, unpack_codes

Arrays = Dict[str, np.ndarray]


def std_range(bits: np.ndarray, signed: bool, narrow: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """(qmin, qmax) of ``bits``-bit integers per slice (narrow: symmetric signed range)."""
    bits = np.asarray(bits, dtype=np.int64)
    if not signed:
        return np.zeros_like(bits), (1 << bits) - 1
    half = 1 << (bits - 1)
    return (-half + 1 if narrow else -half), half - 1


def zero_point_mode(qp: QParams) -> str:
    """How the zero point is kept: ``stored`` (float32 per slice), ``dorefa`` (implied
    ``(2^b - 1) / 2``) or ``none`` (zero). ``qp.stored_zero_point`` (set by
    :func:`lowbit.convert` from ``Quantizer.has_zero_point()``) decides; where it is None, zero
    points are stored when any is non-zero."""
    zp = qp.zero_point.detach().float()
    if qp.kind == "log2":
        return "none"
    if qp.extra.get("transform") == "dorefa":
        implied = ((2.0 ** qp.bits.float()) - 1) / 2
        if not torch.equal(zp.expand_as(implied), implied):
            raise ConfigError("DoReFa zero points differ from (2^bits - 1) / 2")
        return "dorefa"
    stored = qp.stored_zero_point
    if stored is None:
        stored = bool((zp != 0).any())
    if not stored and bool((zp != 0).any()):
        raise ConfigError("a quantizer without stored zero points has a non-zero zero point")
    return "stored" if stored else "none"


def _range_desc(qp: QParams) -> Any:
    bits = qp.bits.reshape(-1).numpy()
    qmin, qmax = qp.qmin.reshape(-1).numpy(), qp.qmax.reshape(-1).numpy()
    for name, narrow in (("full", False), ("narrow", True)):
        lo, hi = std_range(bits, qp.signed, narrow)
        if np.array_equal(lo, qmin) and np.array_equal(hi, qmax):
            return name
    return {"qmin": [int(v) for v in qmin], "qmax": [int(v) for v in qmax]}


def _first_slot(qp: QParams) -> torch.Tensor:
    """What the per-slice float32 ``scale`` array holds: the scale, or min_exp for log2."""
    return qp.extra["min_exp"] if qp.kind == "log2" else qp.scale


def encode_qtensor(prefix: str, codes: torch.Tensor, qp: QParams) -> Tuple[Dict[str, Any], Arrays]:
    """Manifest entry and arrays of a quantized tensor (see the module docstring)."""
    bits = qp.bits.to(torch.int64)
    if int(bits.max()) > MAX_PACK_BITS or int(bits.min()) < 1:
        raise ConfigError(f"{prefix}: bit-widths {int(bits.min())}..{int(bits.max())} are outside "
                          f"1..{MAX_PACK_BITS}, which the packed format stores")
    gran = qp.granularity
    mixed = bool((bits != bits.reshape(-1)[0]).any())
    zmode = zero_point_mode(qp)
    desc = {"shape": list(codes.shape), "kind": qp.kind, "signed": bool(qp.signed),
            "granularity": {"mode": gran.mode, "axis": int(gran.axis), "group_size": gran.group_size},
            "bits": "mixed" if mixed else int(bits.reshape(-1)[0]), "zero_point": zmode,
            "range": _range_desc(qp), "transform": qp.extra.get("transform")}
    arrays = {f"{prefix}.scale": _first_slot(qp).detach().float().numpy().astype("<f4")}
    if zmode == "stored":
        arrays[f"{prefix}.zero_point"] = qp.zero_point.detach().float().numpy().astype("<f4")
    if mixed:
        arrays[f"{prefix}.bits"] = bits.numpy().astype(np.uint8)
    arrays[f"{prefix}.codes"] = pack_codes(codes, bits, qp.signed, gran)
    return desc, arrays


def _granularity(d: Any, shape, what: str) -> Granularity:
    g = C.get_dict(d, "granularity", what)
    mode = C.get_str(g, "mode", what, ("tensor", "channel", "group"))
    axis = C.get_int(g, "axis", what, -len(shape), max(len(shape) - 1, 0))
    size = g.get("group_size")
    C.need(size is None or (type(size) is int and size >= 1), f"{what}: bad group_size")
    C.need(mode != "group" or size is not None, f"{what}: group granularity needs group_size")
    gran = Granularity(mode, axis, size)
    try:
        slice_layout(shape, gran)
    except ConfigError as exc:
        raise FormatError(f"{what}: {exc}") from None
    return gran


def _bits(prefix: str, d: Dict[str, Any], pshape, arrays: Arrays, used: Set[str]) -> np.ndarray:
    what = f"{prefix} description"
    if d.get("bits") == "mixed":
        b = C.array(arrays, f"{prefix}.bits", "uint8", pshape, used).astype(np.int64)
        C.need(bool(((b >= 1) & (b <= MAX_PACK_BITS)).all()), f"{prefix}.bits: values outside 1..{MAX_PACK_BITS}")
        return b
    return np.full(pshape, C.get_int(d, "bits", what, 1, MAX_PACK_BITS), dtype=np.int64)


def _qrange(prefix: str, d: Dict[str, Any], bits: np.ndarray, signed: bool) -> Tuple[np.ndarray, np.ndarray]:
    r = d.get("range")
    if r in ("full", "narrow"):
        C.need(not (r == "narrow" and signed and (bits < 2).any()), f"{prefix}: narrow 1-bit range")
        return std_range(bits, signed, r == "narrow")
    C.need(isinstance(r, dict) and set(r) == {"qmin", "qmax"}, f"{prefix}: bad 'range'")
    lo = np.array(C.int_list(r["qmin"], f"{prefix} qmin", bits.size), dtype=np.int64).reshape(bits.shape)
    hi = np.array(C.int_list(r["qmax"], f"{prefix} qmax", bits.size), dtype=np.int64).reshape(bits.shape)
    clo, chi = std_range(bits, signed)
    C.need(bool(((clo <= lo) & (lo <= hi) & (hi <= chi)).all()),
           f"{prefix}: qmin/qmax do not fit their bit-widths")
    return lo, hi


def _zero_point(prefix: str, mode: str, bits: np.ndarray, pshape, arrays: Arrays, used: Set[str]):
    if mode == "stored":
        return C.finite(C.array(arrays, f"{prefix}.zero_point", "float32", pshape, used),
                        f"{prefix}.zero_point", integral=True)
    if mode == "dorefa":
        return (((2.0 ** bits) - 1) / 2).astype(np.float32)
    return np.zeros(pshape, dtype=np.float32)


def decode_qtensor(prefix: str, d: Any, arrays: Arrays, used: Set[str]) -> Tuple[torch.Tensor, QParams]:
    """Validate a manifest entry against the arrays and rebuild (codes, QParams); codes come in
    the smallest integer dtype that holds them (int8 up to 8 signed bits)."""
    placeholder, qp, decode = plan_qtensor(prefix, d, arrays, used)
    return decode(), qp


def plan_qtensor(prefix: str, d: Any, arrays: Arrays,
                 used: Set[str]) -> Tuple[torch.Tensor, QParams, Callable[[], torch.Tensor]]:
    """Everything of :func:`decode_qtensor` except unpacking the codes: (a ``meta`` tensor with
    the codes' shape and dtype, QParams, a function that decodes them). A loader checks shapes
    and the decoded size of the whole file with the placeholders before decoding anything."""
    what = f"{prefix} description"
    C.need(isinstance(d, dict), f"{what} must be a JSON object")
    shape = C.shape_of(d.get("shape"), prefix)
    kind = C.get_str(d, "kind", what, ("affine", "log2"))
    signed = C.get_bool(d, "signed", what)
    gran = _granularity(d, shape, what)
    pshape = gran.param_shape(shape)
    bits = _bits(prefix, d, pshape, arrays, used)
    zmode = C.get_str(d, "zero_point", what, ("none", "stored", "dorefa"))
    qmin, qmax = _qrange(prefix, d, bits, signed)
    # folding a BN multiplies weight scales by gamma / sigma: any finite sign is valid
    first = C.finite(C.array(arrays, f"{prefix}.scale", "float32", pshape, used), f"{prefix}.scale",
                     integral=kind == "log2")
    zp = _zero_point(prefix, zmode, bits, pshape, arrays, used)
    nslices, per = slice_layout(shape, gran)
    buf = C.array(arrays, f"{prefix}.codes", "uint8", [stream_nbytes(bits.reshape(-1), per)], used)
    extra: Dict[str, Any] = {}
    if isinstance(d.get("transform"), str):
        extra["transform"] = C.get_str(d, "transform", what, ("dorefa", "clip01"))
    if kind == "log2":
        C.need(signed and zmode == "none", f"{what}: log2 tensors are signed with no zero point")
        extra["min_exp"] = _t(first, np.float32)
        first = np.ones(pshape, dtype=np.float32)
    qp = QParams(_t(first, np.float32), _t(zp, np.float32), _t(qmin, np.int32), _t(qmax, np.int32),
                 _t(bits, np.int32), signed, gran, kind, extra, stored_zero_point=zmode == "stored")
    dtype = torch.from_numpy(np.zeros(0, code_dtype(int(bits.max(initial=1)), signed))).dtype

    def decode() -> torch.Tensor:
        try:
            return unpack_codes(buf, torch.from_numpy(bits), signed, gran, shape, qmin, qmax)
        except FormatError as exc:
            raise FormatError(f"{prefix}: {exc}") from None

    return torch.empty(shape, dtype=dtype, device="meta"), qp, decode


def _t(a, dtype) -> torch.Tensor:
    """A tensor copy of ``a`` (numpy scalars from 0-d arithmetic included)."""
    return torch.from_numpy(np.array(a, dtype=dtype))


# ----- activation quantizers (per tensor) ----------------------------------------------------
def encode_act(prefix: str, qp: QParams) -> Tuple[Dict[str, Any], Arrays]:
    """Manifest entry and arrays of a per-tensor activation quantizer."""
    if qp.scale.numel() != 1:
        raise ConfigError(f"{prefix}: activation quantizers must be per-tensor")
    zmode = zero_point_mode(qp)
    if zmode == "dorefa":
        raise ConfigError(f"{prefix}: implied zero points are for weights only")
    desc = {"kind": qp.kind, "signed": bool(qp.signed), "bits": int(qp.bits.max()),
            "qmin": int(qp.qmin.min()), "qmax": int(qp.qmax.max()), "zero_point": zmode,
            "rounding": qp.rounding, "transform": qp.extra.get("transform")}
    arrays = {f"{prefix}.scale": _first_slot(qp).detach().float().reshape(()).numpy().astype("<f4")}
    if zmode == "stored":
        arrays[f"{prefix}.zero_point"] = qp.zero_point.detach().float().reshape(()).numpy().astype("<f4")
    return desc, arrays


def decode_act(prefix: str, d: Any, arrays: Arrays, used: Set[str]) -> QParams:
    """Validate an activation entry and rebuild its (per-tensor) QParams."""
    what = f"{prefix} description"
    C.need(isinstance(d, dict), f"{what} must be a JSON object")
    kind = C.get_str(d, "kind", what, ("affine", "log2"))
    signed = C.get_bool(d, "signed", what)
    bits = C.get_int(d, "bits", what, 1, MAX_PACK_BITS)
    lo_c, hi_c = (int(v) for v in std_range(np.array(bits), signed))
    qmin, qmax = C.get_int(d, "qmin", what, lo_c, hi_c), C.get_int(d, "qmax", what, lo_c, hi_c)
    C.need(qmin <= qmax, f"{what}: qmin > qmax")
    zmode = C.get_str(d, "zero_point", what, ("none", "stored"))
    rounding = C.get_str(d, "rounding", what, ("round", "floor"))
    first = C.finite(C.array(arrays, f"{prefix}.scale", "float32", (), used), f"{prefix}.scale",
                     positive=kind == "affine", integral=kind == "log2")
    zp = np.zeros((), np.float32)
    if zmode == "stored":
        zp = C.finite(C.array(arrays, f"{prefix}.zero_point", "float32", (), used),
                      f"{prefix}.zero_point", integral=True)
    extra: Dict[str, Any] = {}
    if isinstance(d.get("transform"), str):
        extra["transform"] = C.get_str(d, "transform", what, ("dorefa", "clip01"))
    if kind == "log2":
        C.need(signed and zmode == "none" and qmin == -qmax, f"{what}: bad log2 activation")
        extra["min_exp"] = _t(first, np.float32)
        first = np.ones((), np.float32)
    full = lambda v: torch.tensor(v, dtype=torch.int32)  # noqa: E731
    return QParams(_t(first, np.float32), _t(zp, np.float32), full(qmin), full(qmax),
                   full(bits), signed, Granularity("tensor"), kind, extra, rounding, zmode == "stored")
