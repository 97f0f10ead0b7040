"""Inference modules that replace quantized layers: fake-quant (float) and integer flavours.

* :class:`ActQuant`: a per-tensor activation quantizer rebuilt from QParams; ``fake(x)`` is
  bit-identical to the training-time quantizer, ``integer(x)`` returns (codes - zero point) as
  whole numbers in float64 and the scale.
* :class:`DequantLayer`: fake-quantized input, dequantized weight, the float op: the same
  float operations as the fake-quant model, so unfolded models give bit-identical logits.
* :class:`IntegerLayer`: integer input x integer weight accumulated exactly, then one rescale
  per output channel ``acc * (s_x * s_w) + bias`` in float64. The whole numbers are held in a
  float type whose integers are exact for the layer's worst case
  ``bound = max_out sum_in |w_int| * max |x_int|``: float32 when bound < 2^24, float64 when
  bound < 2^53 (every partial sum of a direct or GEMM convolution is then an exactly
  representable integer, whatever the summation order).
* :class:`RuntimeAdd`: residual add of the (fake-)quantized inputs, in float as in the model.

>>> import torch
>>> from lowbit.quantizers import QParams, Granularity
>>> i32 = lambda v: torch.tensor(v, dtype=torch.int32)
>>> act = ActQuant(QParams(torch.tensor(0.5), torch.tensor(0.0), i32(-8), i32(7), i32(4), True,
...                        Granularity()))
>>> act.fake(torch.tensor([0.3, 9.0])), act.integer(torch.tensor([0.3, 9.0]))[0]
(tensor([0.5000, 3.5000]), tensor([1., 7.], dtype=torch.float64))
"""

from __future__ import annotations

import warnings
from typing import Optional, Tuple

import torch
from torch import nn

from ..nn.convert import QuantizedLayer
from ..nn.linearity import linear_probe
from ..ops.affine import fake_quantize, quantize
from ..ops.axes import normalize_axis
from ..ops.transforms import log2_quantize_values
from ..quantizers.base import QParams
from .layer_base import RuntimeLayer

EXACT_LIMIT = 2.0 ** 53  # float64 holds every integer below this exactly
FAST_LIMIT = 2.0 ** 24  # float32 too: layers whose sums stay below it accumulate in float32


class ActQuant(nn.Module):
    """Per-tensor activation quantizer (affine or log2) from QParams."""

    def __init__(self, qp: QParams):
        super().__init__()
        self.kind, self.rounding = qp.kind, qp.rounding
        self.qmin, self.qmax, self.bits = int(qp.qmin.min()), int(qp.qmax.max()), int(qp.bits.max())
        self.register_buffer("scale", qp.scale.float().reshape(()), persistent=False)
        self.register_buffer("zero_point", qp.zero_point.float().reshape(()), persistent=False)
        if self.kind == "log2":
            min_exp = qp.extra["min_exp"].float().reshape(())
            self.register_buffer("max_exp", min_exp + (self.qmax - 1), persistent=False)
            self.register_buffer("unit", torch.exp2(min_exp).double(), persistent=False)

    def fake(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "log2":
            return log2_quantize_values(x, self.max_exp, self.bits)
        return fake_quantize(x, self.scale, self.zero_point, self.qmin, self.qmax, self.rounding)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Integer codes (as floats) of an affine quantizer: ``lowbit.ops.quantize``."""
        return quantize(x, self.scale, self.zero_point, self.qmin, self.qmax, self.rounding).float()

    def integer(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(whole numbers in float64, float64 scale) with ``fake(x) == ints * scale``."""
        if self.kind == "log2":
            return self.fake(x).double() / self.unit, self.unit
        return (self.codes(x) - self.zero_point).double(), self.scale.double()

    def max_int(self) -> float:
        """Largest |integer| :meth:`integer` can return."""
        if self.kind == "log2":
            return 2.0 ** (self.qmax - 1)
        z = float(self.zero_point)
        return max(abs(self.qmin - z), abs(self.qmax - z))


def integer_weight(codes: torch.Tensor, qp: QParams) -> Tuple[torch.Tensor, torch.Tensor, bool]:
    """(whole-number weights float64, scale per output channel float64, row_scaled).

    Weight = ints * scale[out]. Half-integer zero points (DoReFa) double the ints and halve the
    scale; log2 codes j become sign(j) * 2^(|j|-1) with scale 2^min_exp. Slices that are not
    whole output rows (column or group granularity) cannot be rescaled after accumulation: the
    returned "ints" are then the float64 dequantized weights with scale 1 (``row_scaled`` False).
    """
    gran, q = qp.granularity, codes.double()
    view = gran.view(q)
    if qp.kind == "log2":
        ints = torch.sign(view) * torch.exp2(view.abs() - 1) * (view != 0)
        scale = torch.exp2(qp.extra["min_exp"].double())
    else:
        zp, scale = qp.zero_point.double(), qp.scale.double()
        ints = view - gran.expand(zp, view)
        if bool((zp != torch.round(zp)).any()):  # DoReFa: (2^k - 1) / 2
            ints, scale = ints * 2, scale / 2
    out = codes.shape[0]
    rows = gran.mode == "tensor" or (gran.mode == "channel" and normalize_axis(gran.axis, codes.dim()) == 0)
    rows = rows and bool((ints == torch.round(ints)).all())
    if not rows:
        w = gran.restore(ints * gran.expand(scale, ints), codes.shape)
        return w, torch.ones(out, dtype=torch.float64), False
    return gran.restore(ints, codes.shape), scale.reshape(-1).expand(out).clone(), True


class DequantLayer(RuntimeLayer):
    """Fake-quant reconstruction of one Conv/Linear: fake-quantized input, dequantized weight,
    then the layer's own forward: the same float operations as the fake-quant model."""

    _own_names = ("act",)

    def __init__(self, layer: QuantizedLayer, *, module: Optional[nn.Module] = None):
        self._adopt(layer, module)
        qp = layer.input_qparams[0] if layer.input_qparams else None
        self.act = ActQuant(qp) if qp is not None else None
        # contiguous like an nn.Parameter: conv kernels (and their rounding) depend on strides
        self._runtime_buffer("weight", layer.dequantized_weight().float().contiguous())
        bias = layer.dequantized_bias()
        self._runtime_buffer("bias", None if bias is None else bias.float())

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if self.act is not None:
            x = self.act.fake(x)
        return self.float_forward(x, *args, **kwargs)


class IntegerLayer(RuntimeLayer):
    """Integer x integer accumulation, rescaled once per output channel (see module docstring).

    ``mode`` tells how exact it is: ``integer`` (both operands whole numbers, exact
    accumulation), ``float-input`` / ``float-weight`` (one operand float, float64 math),
    ``scaled-slices`` (column/group scales applied before accumulation, float64), ``inexact``
    (|acc| could reach 2^53; float64 math with a warning), ``float-forward`` (the layer's own
    forward is not linear in its input and weight, e.g. a weight-standardized convolution: it
    runs in float64 on the dequantized weight). A layer with its own forward is checked with
    :func:`lowbit.nn.linearity.linear_probe` on its first input; until then its mode ends in
    ``?``.
    """

    _own_names = ("act", "w", "w_scale", "mode", "bound", "acc_dtype")

    def __init__(self, layer: QuantizedLayer, *, module: Optional[nn.Module] = None):
        self._adopt(layer, module)
        qp = layer.input_qparams[0] if layer.input_qparams else None
        self.act = ActQuant(qp) if qp is not None else None
        if layer.weight_codes is not None:
            w, scale, rows = integer_weight(layer.weight_codes, layer.weight_qparams)
        else:
            w, rows = layer.weight_float.double(), False
            scale = torch.ones(w.shape[0], dtype=torch.float64)
        self.mode = self._mode(layer, w, rows)
        if self.mode == "inexact":
            warnings.warn(f"IntegerExecutor: layer {self.name} could accumulate beyond 2^53; "
                          "running it in float64 (not exact)")
        # an own forward may use the weight more than once: its sums get float64's headroom
        fast = self.mode == "integer" and self.bound < FAST_LIMIT and not self.own_forward
        self.acc_dtype = torch.float32 if fast else torch.float64
        if self.own_forward:
            self.mode += "?"
        self.register_buffer("w", w.to(self.acc_dtype), persistent=False)  # whole numbers if integer
        self.register_buffer("w_scale", scale, persistent=False)  # (out,)
        bias = layer.dequantized_bias()
        self._runtime_buffer("bias", bias)  # added in float64 after the rescale
        self._runtime_buffer("weight", layer.dequantized_weight().float().contiguous())

    def _mode(self, layer: QuantizedLayer, w: torch.Tensor, rows: bool) -> str:
        self.bound = float("inf")
        if self.act is None:
            return "float-input"
        if layer.weight_codes is None:
            return "float-weight"
        if not rows:
            return "scaled-slices"
        self.bound = float(w.abs().reshape(w.shape[0], -1).sum(dim=1).max()) * self.act.max_int()
        return "integer" if self.bound < EXACT_LIMIT else "inexact"

    def _check_forward(self, x: torch.Tensor) -> None:
        """Decide, on the first input, whether the own forward may run on integers."""
        shape = (1,) + tuple(x.shape[1:]) if x.dim() > 1 else tuple(x.shape)
        failed = linear_probe(lambda xp, w, b: self.float_forward_with(xp, w, b), shape,
                              tuple(self.w.shape), -1 if self.op == "linear" else 1)
        self.mode = self.mode[:-1] if failed is None else "float-forward"

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if self.mode.endswith("?"):
            self._check_forward(x)
        if self.mode == "float-forward":
            xf = self.act.fake(x) if self.act is not None else x
            b = None if self.runtime_bias is None else self.runtime_bias.double()
            y = self.float_forward_with(xf.double(), self.runtime_weight.double(), b, *args, **kwargs)
            return y.to(x.dtype)
        if self.act is not None:
            xi, sx = self.act.integer(x)  # whole numbers (float64), scalar scale
        else:
            xi, sx = x.double(), torch.ones((), dtype=torch.float64)
        zero = torch.zeros(self.w.shape[0], dtype=self.acc_dtype) if self.own_forward else None
        acc = self.float_forward_with(xi.to(self.acc_dtype), self.w, zero, *args, **kwargs).double()
        shape = (-1,) if self.op == "linear" else (-1,) + (1,) * (acc.dim() - 2)
        y = acc * (sx * self.w_scale).reshape(shape)
        if self.runtime_bias is not None:
            y = y + self.runtime_bias.double().reshape(shape)
        return y.to(x.dtype)


class RuntimeAdd(nn.Module):
    """Residual add of two (fake-)quantized inputs, computed in float as the model does."""

    def __init__(self, layer: QuantizedLayer):
        super().__init__()
        self.name = layer.name
        self.acts = nn.ModuleList([ActQuant(qp) if qp is not None else nn.Identity()
                                   for qp in layer.input_qparams])

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        qa, qb = self.acts
        fa = qa.fake(a) if isinstance(qa, ActQuant) else a
        fb = qb.fake(b) if isinstance(qb, ActQuant) else b
        return fa + fb


def make_dequant(layer: QuantizedLayer, module: Optional[nn.Module] = None) -> nn.Module:
    return RuntimeAdd(layer) if layer.op == "add" else DequantLayer(layer, module=module)


def make_integer(layer: QuantizedLayer, module: Optional[nn.Module] = None) -> nn.Module:
    return RuntimeAdd(layer) if layer.op == "add" else IntegerLayer(layer, module=module)
