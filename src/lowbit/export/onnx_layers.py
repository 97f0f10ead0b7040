"""Export-friendly replacements of quantized layers (QDQ and QONNX flavours).

Each module runs the fake-quant computation in PyTorch and, traced by ``torch.onnx.export``,
emits the quantization nodes of :mod:`lowbit.export.onnx_ops`. Integer tensors are persistent
buffers, so they become initializers named ``<layer>.<buffer>``; ``opts.conversions`` lists
those to retype after tracing (int4/uint4/uint16, which torch tensors cannot carry into ONNX).

Containers (QDQ): weights use the smallest of int4/uint4 (opset 21), int8/uint8, int16/uint16
(opset 21) holding their codes; activations use int8/uint8 with a Clip to narrower ranges, and
int4/uint4 for exactly 4-bit ranges only when asked (``int4_acts``): onnxruntime's graph
optimiser moves Q/DQ pairs through MaxPool, which has no 4-bit kernel (the session then fails
to load), and its integer kernels (QLinearConv) take 8-bit activations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from ..errors import ConfigError
from ..nn.convert import QuantizedLayer
from ..ops.axes import normalize_axis
from ..quantizers.base import QParams
from .onnx_ops import DQ, QDQ, QonnxQuant
from .layer_base import RuntimeLayer
from .qtensor import std_range

# name, lo, hi, dtype used while tracing, smallest opset
CONTAINERS = (("INT4", -8, 7, torch.int8, 21), ("UINT4", 0, 15, torch.uint8, 21),
              ("INT8", -128, 127, torch.int8, 13), ("UINT8", 0, 255, torch.uint8, 13),
              ("INT16", -32768, 32767, torch.int16, 21), ("UINT16", 0, 65535, torch.int32, 21))
RETYPED = ("INT4", "UINT4", "UINT16")


@dataclass
class OnnxOptions:
    fmt: str = "qdq"              # qdq | qonnx
    opset: int = 21
    int4: bool = True
    int32_bias: bool = False
    int4_acts: bool = False
    conversions: Dict[str, str] = field(default_factory=dict)


def container(lo: int, hi: int, opts: OnnxOptions, exact4: bool = False,
              allow4: Optional[bool] = None) -> Tuple:
    """Smallest container holding [lo, hi], unsigned first for ranges >= 0 (``exact4``: int4
    only if the range is all of it; ``allow4``: int4 allowed, default ``opts.int4``)."""
    allow4 = opts.int4 if allow4 is None else allow4
    order = sorted(CONTAINERS, key=lambda c: (c[2] - c[1], (c[1] < 0) == (lo >= 0)))
    for c in order:
        name, clo, chi, _, min_opset = c
        if opts.opset < min_opset or (name in ("INT4", "UINT4") and not allow4):
            continue
        if name in ("INT4", "UINT4") and exact4 and (lo, hi) != (clo, chi):
            continue
        if clo <= lo and hi <= chi:
            return c
    raise ConfigError(f"integers in [{lo}, {hi}] fit no ONNX container at opset {opts.opset} "
                      "(int16 needs opset 21)")


def _affine_act(qp: QParams, where: str, fmt: str) -> None:
    if qp.kind != "affine":
        raise ConfigError(f"{where}: {qp.kind} activations have no ONNX Q/DQ form; quantize "
                          "activations with an affine quantizer (uniform/lsq/...) to export")
    if fmt == "qdq" and qp.rounding != "round":
        raise ConfigError(f"{where}: floor-rounded activations cannot be QuantizeLinear "
                          "(round half to even); export with --format qonnx instead")


def _clip_bounds(qmin: int, qmax: int, z: float, scale: torch.Tensor):
    lo = (torch.tensor(float(qmin) - z) * scale.float()).item()  # float32 like DequantizeLinear
    hi = (torch.tensor(float(qmax) - z) * scale.float()).item()
    return lo, hi


class OnnxAct(nn.Module):
    """One activation quantizer as QDQ or QONNX Quant (per tensor)."""

    def __init__(self, qp: QParams, opts: OnnxOptions, prefix: str):
        super().__init__()
        _affine_act(qp, prefix, opts.fmt)
        self.fmt, self.qmin, self.qmax = opts.fmt, int(qp.qmin.min()), int(qp.qmax.max())
        z, bits = float(qp.zero_point), int(qp.bits.max())
        self.register_buffer("scale", qp.scale.float().reshape(()).clone())
        if opts.fmt == "qdq":
            name, lo, hi, dtype, _ = container(min(self.qmin, int(z)), max(self.qmax, int(z)), opts,
                                               True, opts.int4 and opts.int4_acts)
            self.register_buffer("zp", torch.tensor(int(z), dtype=dtype))
            if name in RETYPED:
                opts.conversions[f"{prefix}.zp"] = name
            full = (lo, hi) == (self.qmin, self.qmax)
        else:
            self.signed, self.rounding = int(qp.signed), qp.rounding.upper()
            bits = max(bits, 2) if qp.signed else bits  # QONNX turns signed 1-bit into bipolar
            self.narrow = int(qp.signed and (self.qmin, self.qmax) == tuple(
                int(v) for v in std_range(bits, True, True)))
            self.register_buffer("zp", torch.tensor(z))
            self.register_buffer("bitwidth", torch.tensor(float(bits)))
            lo, hi = (int(v) for v in std_range(bits, qp.signed, bool(self.narrow)))
            full = (lo, hi) == (self.qmin, self.qmax)
        self.lo, self.hi = (None, None) if full else _clip_bounds(self.qmin, self.qmax, z, qp.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fmt == "qdq":
            return QDQ.apply(x, self.scale, self.zp, self.qmin, self.qmax, self.lo, self.hi)
        return QonnxQuant.apply(x, self.scale, self.zp, self.bitwidth, self.signed, self.narrow,
                                self.rounding, self.lo, self.hi)


def _weight_layout(codes: torch.Tensor, qp: QParams):
    """(codes view, scale, zero point, axis) matching DequantizeLinear's per-axis form."""
    gran, scale, zp = qp.granularity, qp.scale.float(), qp.zero_point.float()
    if gran.mode == "group":
        return codes.reshape(-1, gran.group_size), scale.reshape(-1), zp.reshape(-1), 0
    if gran.mode == "tensor":
        return codes, scale.reshape(()), zp.reshape(()), 0
    return codes, scale, zp, normalize_axis(gran.axis, codes.dim())


class OnnxLayer(RuntimeLayer):
    """A Conv/Linear whose input and weight carry Q/DQ (or QONNX Quant) nodes: the replaced
    layer's own forward traced with ``weight`` / ``bias`` read from those nodes (see
    :class:`~lowbit.export.layer_base.RuntimeLayer`)."""

    _own_names = ("act", "wshape", "wkind", "axis", "signed", "narrow", "bkind", "w_codes",
                  "w_scale", "w_zp", "w_float", "w_bits", "b_codes", "b_scale", "b_float")

    def __init__(self, layer: QuantizedLayer, opts: OnnxOptions, *, module: Optional[nn.Module] = None):
        self._adopt(layer, module)
        qp = layer.input_qparams[0] if layer.input_qparams else None
        self.act = OnnxAct(qp, opts, f"{layer.name}.act") if qp is not None else None
        w = layer.weight_codes if layer.weight_codes is not None else layer.weight_float
        self.wshape, self.wkind, self.axis = tuple(w.shape), "float", 0
        if layer.weight_codes is not None and layer.weight_qparams.kind == "affine":
            (self._weight_qdq if opts.fmt == "qdq" else self._weight_qonnx)(layer, opts)
        else:  # float weights, or log2 (powers of two have no affine Q/DQ form)
            self.register_buffer("w_float", layer.dequantized_weight().float().clone())
        self._bias(layer, opts)

    def _weight_qdq(self, layer: QuantizedLayer, opts: OnnxOptions) -> None:
        codes, scale, zp, self.axis = _weight_layout(layer.weight_codes.long(), layer.weight_qparams)
        if bool((zp != torch.round(zp)).any()):  # DoReFa half-integer zero point
            zview = zp.reshape([-1 if d == self.axis else 1 for d in range(codes.dim())]) if zp.dim() else zp
            codes, scale, zp = (2 * codes - (2 * zview).long()), scale / 2, torch.zeros_like(zp)
        lo, hi = min(int(codes.min()), int(zp.min())), max(int(codes.max()), int(zp.max()))
        name, _, _, dtype, _ = container(lo, hi, opts)
        self.register_buffer("w_codes", codes.to(dtype))
        self.register_buffer("w_scale", scale.clone())
        self.register_buffer("w_zp", zp.round().to(dtype))
        if name in RETYPED:
            opts.conversions[f"{self.name}.w_codes"] = opts.conversions[f"{self.name}.w_zp"] = name
        self.wkind = "dq"

    def _weight_qonnx(self, layer: QuantizedLayer, opts: OnnxOptions) -> None:
        qp, w = layer.weight_qparams, layer.dequantized_weight().float()
        gran, bshape = qp.granularity, [1] * w.dim()
        if gran.mode == "group":
            w, bshape = w.reshape(w.shape[0], -1, gran.group_size), [w.shape[0], -1, 1]
        elif gran.mode == "channel":
            bshape[normalize_axis(gran.axis, w.dim())] = -1
        bits = max(int(qp.bits.max()), 2 if qp.signed else 1)  # QONNX: signed 1-bit is bipolar
        self.signed = int(qp.signed)
        self.narrow = int(qp.signed and int(qp.qmin.min()) > -(1 << (bits - 1)))
        scale = qp.scale.float()
        scale = torch.where(scale == 0, torch.ones_like(scale), scale)  # BN gamma 0: w is 0 anyway
        self.register_buffer("w_float", w.clone())
        self.register_buffer("w_scale", scale.reshape(bshape).clone())
        self.register_buffer("w_zp", qp.zero_point.float().reshape(bshape).clone())
        self.register_buffer("w_bits", torch.tensor(float(bits)))
        self.wkind = "quant"

    def _bias(self, layer: QuantizedLayer, opts: OnnxOptions) -> None:
        bias = layer.dequantized_bias()
        self.bkind = "none" if bias is None else "float"
        if bias is None:
            return
        rows = self.wkind == "dq" and self.axis == 0 and self.w_scale.numel() in (1, self.wshape[0]) \
            and layer.weight_qparams.granularity.mode != "group"
        if opts.fmt == "qdq" and opts.int32_bias and self.act is not None and rows:
            s = (self.act.scale * self.w_scale.reshape(-1)).expand(self.wshape[0]).float()
            codes = torch.round(bias.double() / s.double())
            if bool((s != 0).all()) and float(codes.abs().max()) < 2**31 - 1:
                self.register_buffer("b_codes", codes.to(torch.int32))
                self.register_buffer("b_scale", s.clone())
                self.bkind = "dq"
                return
        self.register_buffer("b_float", bias.float().clone())

    def _runtime_tensor(self, name: str) -> Optional[torch.Tensor]:
        override = self.__dict__.get("_runtime_override")
        if override is not None:
            return override[name]
        return self._weight() if name == "weight" else self._bias_value()

    def _weight(self) -> torch.Tensor:
        if self.wkind == "dq":
            w = DQ.apply(self.w_codes, self.w_scale, self.w_zp, self.axis)
        elif self.wkind == "quant":
            w = QonnxQuant.apply(self.w_float, self.w_scale, self.w_zp, self.w_bits, self.signed,
                                 self.narrow, "ROUND", None, None)
        else:
            return self.w_float
        # only grouped weights need a Reshape: DQ -> Conv must stay adjacent for QDQ fusion
        return w if tuple(w.shape) == self.wshape else w.reshape(self.wshape)

    def _bias_value(self) -> Optional[torch.Tensor]:
        if self.bkind == "dq":
            return DQ.apply(self.b_codes, self.b_scale, None, 0)
        return self.b_float if self.bkind == "float" else None

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if self.act is not None:
            x = self.act(x)
        return self.float_forward(x, *args, **kwargs)


class OnnxAdd(nn.Module):
    """Residual add of two quantized inputs."""

    def __init__(self, layer: QuantizedLayer, opts: OnnxOptions):
        super().__init__()
        self.acts = nn.ModuleList([
            OnnxAct(qp, opts, f"{layer.name}.acts.{i}") if qp is not None else nn.Identity()
            for i, qp in enumerate(layer.input_qparams)])

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.acts[0](a) + self.acts[1](b)


def make_onnx(opts: OnnxOptions):
    """``make(layer, module)`` for :func:`lowbit.export.rebuild.build_runtime`."""
    return lambda layer, module=None: (OnnxAdd(layer, opts) if layer.op == "add"
                                       else OnnxLayer(layer, opts, module=module))
