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


def grad_scale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Return ``x`` unchanged with its gradient multiplied by ``factor``."""
    return GradScale.apply(x, factor)


def ceil_ste(x: torch.Tensor) -> torch.Tensor:
    """ceil(x) whose gradient is the identity."""
    return CeilSTE.apply(x)
