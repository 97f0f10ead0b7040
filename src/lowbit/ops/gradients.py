"""Named autograd Functions that change gradients without changing values.

>>> import torch
>>> s = torch.tensor(2.0, requires_grad=True)
>>> grad_scale(s, 0.25).backward()
>>> s.grad
tensor(0.2500)
"""

from __future__ import annotations

import torch
from torch.autograd import Function


class GradScale(Function):
    """Identity forward; backward multiplies the gradient by a constant (LSQ's 1/sqrt(N*qmax))."""

    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.factor, None


class CeilSTE(Function):
    """ceil(x) with the straight-through gradient: integer bit-widths with a usable gradient."""

    @staticmethod
    def forward(ctx, x):
        return torch.ceil(x)

    @staticmethod
    def backward(ctx, g):
        return g


class FillLevelsSTE(Function):
    """Level count -> the largest level count of the same integer bit-width; identity gradient.

    Codes in [-n, n] (or [0, n]) need ``ceil(log2(n + 1))`` magnitude bits, and those bits hold
    up to ``2**ceil(log2(n + 1)) - 1`` levels: n = 2 -> 3, n = 4 -> 7, n = 9 -> 15."""

    @staticmethod
    def forward(ctx, n):
        return torch.exp2(torch.ceil(torch.log2(torch.round(n) + 1))) - 1

    @staticmethod
    def backward(ctx, g):
        return g


def grad_scale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Return ``x`` unchanged with its gradient multiplied by ``factor``."""
    return GradScale.apply(x, factor)


def ceil_ste(x: torch.Tensor) -> torch.Tensor:
    """ceil(x) whose gradient is the identity."""
    return CeilSTE.apply(x)


def fill_levels_ste(n: torch.Tensor) -> torch.Tensor:
    """The full level count of the bit-width that ``round(n)`` levels need; gradient identity.

    >>> fill_levels_ste(torch.tensor([1.0, 2.0, 2.6, 4.0, 9.0]))
    tensor([ 1.,  3.,  3.,  7., 15.])
    """
    return FillLevelsSTE.apply(n)
