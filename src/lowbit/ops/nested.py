"""The nested learned-scale quantizer of Chinbat's thesis (section 3.1) as a named autograd Function.

Forward: ``P_q = floor(P / s)`` (optionally clamped to [qmin, qmax]) and ``P_rec = P_q * s``;
``rounding="round"`` forms the codes as ``round(P / s)`` instead (same grid, same gradients).
Backward:

* ``P`` receives the upstream gradient unchanged (straight-through; zero where clamped);
* ``s`` receives ``sum over its slice of g_s * m`` where, per element,
  ``r = |dL/dP_rec| / max(eps, |P_rec|)``, ``g_s = -tanh(lambda - r)`` if ``r < lambda`` else 0,
  and ``m = max |P_q|`` over the slice that shares one scale (scalar, row, column, channel).

A negative gradient makes gradient descent *increase* ``s`` (coarser quantization) for
parameters whose gradient is small relative to their value; sensitive ones vote 0.

>>> import torch
>>> P = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
>>> s = torch.tensor([[0.5], [0.5]], requires_grad=True)       # one scale per row
>>> out = nested_quantize(P, s, lam=1.0)
>>> out.backward(torch.zeros_like(out))                         # r = 0 < lambda everywhere
>>> s.grad.squeeze(1)                                          # 2 * (-tanh(1)) * max|P_q|
tensor([ -6.0928, -12.1855])
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch.autograd import Function

from .rounding import floor_fix


def slice_dims(p_shape: torch.Size, s_shape: torch.Size) -> Tuple[int, ...]:
    """Dimensions of ``P`` that one scale value spans (where ``s`` broadcasts)."""
    pad = len(p_shape) - len(s_shape)
    full = (1,) * pad + tuple(s_shape)
    return tuple(d for d, (pn, sn) in enumerate(zip(p_shape, full)) if sn == 1 and pn != 1)


def floor_codes(P: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``floor(P / s)``, exact in float: grid values ``k * s`` give back ``k`` (see floor_fix)."""
    k = torch.floor(P / s)
    return k + floor_fix(P, s, k)


def nested_codes(P: torch.Tensor, s: torch.Tensor, rounding: str = "floor") -> torch.Tensor:
    """The codes of ``P`` on the grid of step ``s``: ``floor(P / s)`` (the thesis) or
    ``round(P / s)`` (to nearest, ties to even), as float tensors.

    >>> P, s = torch.tensor([0.9, -0.1]), torch.tensor(0.5)
    >>> nested_codes(P, s), nested_codes(P, s, "round")
    (tensor([ 1., -1.]), tensor([2., -0.]))
    """
    if rounding == "floor":
        return floor_codes(P, s)
    if rounding != "round":
        raise ValueError(f"nested codes are 'floor' or 'round', got {rounding!r}")
    return torch.round(P / s)


class NestedQuant(Function):
    """Quantize ``P`` with scale ``s`` (floor or round codes); ratio-threshold gradient for ``s``."""

    @staticmethod
    def forward(ctx, P, s, lam, eps, qmin, qmax, rounding):
        pq = nested_codes(P, s, rounding)
        inside = None if qmin is None else (pq >= qmin) & (pq <= qmax)
        if qmin is not None:
            pq = torch.clamp(pq, qmin, qmax)
        p_rec = pq * s
        dims = slice_dims(P.shape, s.shape)
        m = pq.abs().amax(dim=dims, keepdim=True) if dims else pq.abs()
        ctx.save_for_backward(p_rec, m, inside)
        ctx.lam, ctx.eps, ctx.s_shape, ctx.clipped = lam, eps, s.shape, qmin is not None
        return p_rec

    @staticmethod
    def backward(ctx, g):
        p_rec, m, inside = ctx.saved_tensors
        r = g.abs() / p_rec.abs().clamp_min(ctx.eps)
        g_s = torch.where(r < ctx.lam, -torch.tanh(ctx.lam - r), torch.zeros_like(r))
        grad_s = (g_s * m).sum_to_size(ctx.s_shape)
        grad_p = g * inside if ctx.clipped else g
        return grad_p, grad_s, None, None, None, None, None


def nested_quantize(P: torch.Tensor, s: torch.Tensor, lam: float, eps: float = 1e-8,
                    qmin: Optional[float] = None, qmax: Optional[float] = None,
                    rounding: str = "floor") -> torch.Tensor:
    """Apply :class:`NestedQuant`; ``s`` must broadcast against ``P`` and be positive."""
    return NestedQuant.apply(P, s, lam, eps, qmin, qmax, rounding)
