"""Affine (uniform) quantization: ``q = clamp(round(x / scale) + zero_point, qmin, qmax)``.

``dequantize(quantize(x)) == fake_quantize(x)`` holds bit for bit because all three compute
the same float operations in the same order: ``x / scale`` is rounded to an integer, the
integer zero point is added, the result is clamped, and ``(q - zero_point) * scale`` maps back.
``scale`` and ``zero_point`` must broadcast against ``x`` (see :mod:`lowbit.ops.axes`).

>>> import torch
>>> x = torch.tensor([-1.0, 0.26, 0.74, 3.0])
>>> s, z = torch.tensor(0.5), torch.tensor(0.0)
>>> fake_quantize(x, s, z, -2, 1)
tensor([-1.0000,  0.5000,  0.5000,  0.5000])
>>> quantize(x, s, z, -2, 1)
tensor([-2,  1,  1,  1], dtype=torch.int8)
>>> torch.equal(dequantize(quantize(x, s, z, -2, 1), s, z), fake_quantize(x, s, z, -2, 1))
True
"""

from __future__ import annotations

from typing import Union

import torch

from .rounding import discretize, floor_fix

Bound = Union[int, float, torch.Tensor]


def fake_quantize(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: Bound,
                  qmax: Bound, rounding: str = "round", estimator: str = "ste",
                  delta: float = 0.0, alpha: float = 1.0) -> torch.Tensor:
    """Quantize and dequantize ``x`` in float, with a gradient estimator for the rounding.

    Gradients: ``x`` gets the estimator's gradient inside [qmin, qmax] and 0 outside (the
    clamp); ``scale`` gets LSQ's gradient ``round(x/s) - x/s`` inside and ``qmin - z`` /
    ``qmax - z`` outside; ``zero_point`` gets ``-scale`` outside the range.
    ``qmin``/``qmax`` may be tensors (per-channel learned bit-widths).
    """
    u = x / scale
    r = discretize(u, rounding, estimator, delta, alpha)
    if rounding == "floor":  # exact floor: grid values stay on the grid (see floor_fix)
        r = r + floor_fix(x, scale, r.detach())
    q = torch.clamp(r + zero_point, qmin, qmax)
    return (q - zero_point) * scale


INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1


def fake_quantize_bias(bias: torch.Tensor, acc_scale: torch.Tensor) -> torch.Tensor:
    """Round a bias to the int32 grid of the accumulator it is added to.

    An integer Conv/Linear accumulates ``(q_x - z_x) * (q_w - z_w)`` in int32 on the grid
    ``acc_scale = s_x * s_w`` (one value per output channel, shape ``[out]``, or a scalar) and
    adds the bias as an int32 on that grid; onnxruntime's ``QLinearConv`` and every integer
    runtime do this. Training with the rounded bias makes the fake-quant model the integer
    one. Gradient: straight-through for ``bias``; ``acc_scale`` is treated as a constant (it
    belongs to the input and weight quantizers, which learn from their own tensors).

    >>> b = torch.tensor([0.30, -0.07])
    >>> fake_quantize_bias(b, torch.tensor([0.25, 0.05]))
    tensor([ 0.2500, -0.0500])
    """
    acc = acc_scale.detach().to(bias.dtype)
    return fake_quantize(bias, acc, torch.zeros_like(acc), INT32_MIN, INT32_MAX)


def clip_round(x: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, step: torch.Tensor,
               estimator: str = "ste", delta: float = 0.0, alpha: float = 1.0) -> torch.Tensor:
    """``round(clamp(x, lower, upper) / step) * step``: clip to a learned range, then round.

    The learned-range quantizer of Schaefer et al. (eq. 1). Gradients: ``x`` gets the estimator's
    gradient inside [lower, upper] and 0 outside; ``lower``/``upper`` get the gradient of the
    values clipped to them; ``step`` gets ``round(u) - u`` with ``u = clamp(x) / step``.

    >>> x = torch.tensor([-3.0, -0.4, 0.26, 2.0])
    >>> clip_round(x, torch.tensor(-1.0), torch.tensor(1.2), torch.tensor(0.5))
    tensor([-1.0000, -0.5000,  0.5000,  1.0000])
    """
    return discretize(torch.clamp(x, lower, upper) / step, "round", estimator, delta, alpha) * step


def int_dtype(qmin: Bound, qmax: Bound) -> torch.dtype:
    """Smallest integer dtype holding [qmin, qmax]."""
    lo = float(torch.as_tensor(qmin).min()) if isinstance(qmin, torch.Tensor) else float(qmin)
    hi = float(torch.as_tensor(qmax).max()) if isinstance(qmax, torch.Tensor) else float(qmax)
    for dtype in (torch.int8, torch.uint8, torch.int16, torch.int32):
        info = torch.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return dtype
    return torch.int64


@torch.no_grad()
def quantize(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: Bound,
             qmax: Bound, rounding: str = "round") -> torch.Tensor:
    """Map ``x`` to integers in [qmin, qmax] (smallest fitting integer dtype)."""
    u = x / scale
    if rounding == "floor":
        r = torch.floor(u)
        r = r + floor_fix(x, scale, r)
    else:
        r = torch.round(u)
    q = torch.clamp(r + zero_point, qmin, qmax)
    return q.to(int_dtype(qmin, qmax))


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor) -> torch.Tensor:
    """Map integers back to floats: ``(q - zero_point) * scale``."""
    return (q.to(scale.dtype) - zero_point) * scale
