"""Autograd functions whose ONNX symbolic emits the quantization nodes we want.

In PyTorch they compute the fake-quantized values (so tracing sees real shapes and values);
``torch.onnx.export(..., dynamo=False)`` turns each call into:

* :class:`QDQ`: ``[Clip] -> QuantizeLinear -> DequantizeLinear`` (activations);
* :class:`DQ`: ``DequantizeLinear`` of integer codes stored as an initializer (weights, biases);
* :class:`QonnxQuant`: ``[Clip] -> qonnx.custom_op.general::Quant`` (activations and weights).

The optional Clip (float bounds ``(qmin - z) * s`` and ``(qmax - z) * s``) narrows an int8
container to a 2..7-bit range; it is exact because rounding ``bound / s`` gives back the bound's
integer.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch.autograd import Function

from ..errors import ConfigError
from ..ops.affine import fake_quantize

QONNX_DOMAIN = "qonnx.custom_op.general"


def require_onnx():
    """The ``onnx`` module, or a ConfigError that says how to install it."""
    try:
        import onnx  # optional (the onnx extra): only ONNX export and evaluation need it
    except ImportError:
        raise ConfigError("ONNX export and evaluation need the onnx package: "
                          "pip install 'lowbit[onnx]'") from None
    return onnx


def _const(g, value: float):
    return g.op("Constant", value_t=torch.tensor(value, dtype=torch.float32))


def _clip(g, x, lo: Optional[float], hi: Optional[float]):
    return x if lo is None else g.op("Clip", x, _const(g, lo), _const(g, hi))


class QDQ(Function):
    """Fake-quantize ``x`` per tensor; exported as [Clip] + QuantizeLinear + DequantizeLinear."""

    @staticmethod
    def forward(ctx, x, scale, zp, qmin: int, qmax: int, lo: Optional[float], hi: Optional[float]):
        return fake_quantize(x, scale, zp.float(), qmin, qmax)

    @staticmethod
    def symbolic(g, x, scale, zp, qmin, qmax, lo, hi):
        q = g.op("QuantizeLinear", _clip(g, x, lo, hi), scale, zp)
        return g.op("DequantizeLinear", q, scale, zp)


def _broadcast(t: torch.Tensor, ndim: int, axis: int) -> torch.Tensor:
    if t.dim() == 0:
        return t
    shape = [1] * ndim
    shape[axis] = -1
    return t.reshape(shape)


class DQ(Function):
    """``(codes - zp) * scale`` along ``axis``; exported as DequantizeLinear."""

    @staticmethod
    def forward(ctx, codes, scale, zp, axis: int):
        z = 0.0 if zp is None else _broadcast(zp.float(), codes.dim(), axis)
        return (codes.float() - z) * _broadcast(scale, codes.dim(), axis)

    @staticmethod
    def symbolic(g, codes, scale, zp, axis):
        args = (codes, scale) if zp is None else (codes, scale, zp)
        return g.op("DequantizeLinear", *args, axis_i=axis)


class QonnxQuant(Function):
    """QONNX ``Quant``: ``(clip(round(x / s + z), min, max) - z) * s`` for a bit-width."""

    @staticmethod
    def forward(ctx, x, scale, zp, bitwidth, signed: int, narrow: int, rounding: str,
                lo: Optional[float], hi: Optional[float]):
        if lo is not None:
            x = torch.clamp(x, lo, hi)
        b = int(bitwidth)
        qmin = (-(1 << (b - 1)) + narrow) if signed else 0
        qmax = (1 << (b - 1)) - 1 if signed else (1 << b) - 1 - narrow
        u = x / scale + zp
        r = torch.floor(u) if rounding == "FLOOR" else torch.round(u)
        return (torch.clamp(r, qmin, qmax) - zp) * scale

    @staticmethod
    def symbolic(g, x, scale, zp, bitwidth, signed, narrow, rounding, lo, hi):
        out = g.op(f"{QONNX_DOMAIN}::Quant", _clip(g, x, lo, hi), scale, zp, bitwidth,
                   signed_i=signed, narrow_i=narrow, rounding_mode_s=rounding)
        out.setType(x.type())  # a custom op: tell the tracer its output looks like its input
        return out
