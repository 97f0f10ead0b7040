"""Rounding with gradient estimators, as named autograd Functions (Schaefer et al., section 3.2).

Forward is always ``round(u)`` (half to even, like ``torch.round``) or ``floor(u)``. Backward
multiplies the upstream gradient ``g`` by a scale that depends on the rounding residual
``e = u - round(u)`` (in [-1/2, 1/2]):

=========  ==============================================
ste        1
pbgs       1 + delta * |e|
ewgs       1 + delta * sign(g) * e
acos       1 + delta * sin(pi * e)
tanh       1 + delta * sign(g) * tanh(alpha * e)
invtanh    1 + delta * sign(g) * artanh(alpha * e)      (needs 0 < alpha < 2)
=========  ==============================================

>>> import torch
>>> u = torch.tensor([0.2, 1.7], requires_grad=True)
>>> round_with(u, "ewgs", delta=0.5).sum().backward()
>>> u.grad   # 1 + 0.5 * sign(1) * (u - round(u))
tensor([1.1000, 0.8500])
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch.autograd import Function

from ..errors import ConfigError
from ..registry import Registry

ESTIMATORS = Registry("gradient estimator")


class RoundSTE(Function):
    """round(u) with the straight-through gradient (identity)."""

    @staticmethod
    def forward(ctx, u, delta=0.0, alpha=1.0):
        return torch.round(u)

    @staticmethod
    def backward(ctx, g):
        return g, None, None


class FloorSTE(Function):
    """floor(u) with the straight-through gradient (identity); used by the nested quantizer."""

    @staticmethod
    def forward(ctx, u):
        return torch.floor(u)

    @staticmethod
    def backward(ctx, g):
        return g


class _ScaledRound(Function):
    """round(u) whose backward scales ``g`` by ``cls.scale(e, g, delta, alpha)``.

    Subclasses provide the static method ``scale``; ``e`` is the rounding residual.
    """

    @classmethod
    def forward(cls, ctx, u, delta=0.0, alpha=1.0):
        r = torch.round(u)
        ctx.save_for_backward(u - r)  # e: (same shape as u), the rounding residual
        ctx.delta, ctx.alpha = delta, alpha
        return r

    @classmethod
    def backward(cls, ctx, g):
        (e,) = ctx.saved_tensors
        return g * cls.scale(e, g, ctx.delta, ctx.alpha), None, None


class RoundPBGS(_ScaledRound):
    """Position-based gradient scaling: ``1 + delta * |e|``."""

    @staticmethod
    def scale(e, g, delta, alpha):
        return 1 + delta * e.abs()


class RoundEWGS(_ScaledRound):
    """Element-wise gradient scaling: ``1 + delta * sign(g) * e``."""

    @staticmethod
    def scale(e, g, delta, alpha):
        return 1 + delta * torch.sign(g) * e


class RoundAcos(_ScaledRound):
    """Modified absolute-cosine scaling: ``1 + delta * sin(pi * e)``."""

    @staticmethod
    def scale(e, g, delta, alpha):
        return 1 + delta * torch.sin(math.pi * e)


class RoundTanh(_ScaledRound):
    """Hyperbolic-tangent scaling: ``1 + delta * sign(g) * tanh(alpha * e)``."""

    @staticmethod
    def scale(e, g, delta, alpha):
        return 1 + delta * torch.sign(g) * torch.tanh(alpha * e)


class RoundInvTanh(_ScaledRound):
    """Inverse hyperbolic-tangent scaling: ``1 + delta * sign(g) * artanh(alpha * e)``.

    Finite for every input because ``|alpha * e| <= alpha / 2 < 1`` (alpha is validated < 2).
    """

    @staticmethod
    def scale(e, g, delta, alpha):
        return 1 + delta * torch.sign(g) * torch.atanh(alpha * e)


for _name, _fn in [("ste", RoundSTE), ("pbgs", RoundPBGS), ("ewgs", RoundEWGS),
                   ("acos", RoundAcos), ("tanh", RoundTanh), ("invtanh", RoundInvTanh)]:
    ESTIMATORS.register(_name)(_fn)


def check_estimator(name: str, delta: float = 0.0, alpha: float = 1.0) -> None:
    """Validate an estimator name and its hyper-parameters, raising ConfigError with advice."""
    ESTIMATORS.get(name)
    if not (isinstance(delta, (int, float)) and math.isfinite(delta) and delta >= 0):
        raise ConfigError(f"estimator delta must be a finite number >= 0, got {delta!r}")
    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha > 0):
        raise ConfigError(f"estimator alpha must be a finite number > 0, got {alpha!r}")
    if name == "invtanh" and alpha >= 2:
        raise ConfigError(
            f"invtanh needs alpha < 2 so that artanh(alpha * e) stays finite for |e| <= 1/2, "
            f"got alpha={alpha}"
        )


def round_with(u: torch.Tensor, estimator: str = "ste", delta: float = 0.0,
               alpha: float = 1.0) -> torch.Tensor:
    """Round ``u`` to the nearest integer with the named gradient estimator."""
    return ESTIMATORS.get(estimator).apply(u, delta, alpha)


def round_ste(u: torch.Tensor) -> torch.Tensor:
    """round(u) with the straight-through gradient."""
    return RoundSTE.apply(u)


def round_ewgs(u: torch.Tensor, delta: float) -> torch.Tensor:
    """round(u) with element-wise gradient scaling."""
    return RoundEWGS.apply(u, delta, 1.0)


def floor_ste(u: torch.Tensor) -> torch.Tensor:
    """floor(u) with the straight-through gradient."""
    return FloorSTE.apply(u)


def floor_fix(x: torch.Tensor, scale: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Correction (-1, 0 or +1, no gradient) for ``k = floor(x / scale)`` computed in float.

    ``x / scale`` is rounded, so for a value on the grid, ``x = fl(k * scale)``, it can land a
    hair below ``k`` and floor to ``k - 1`` (about 5% of random grid values in float32), and
    a value just below a grid point can floor up. ``k + floor_fix(x, scale, k)`` is the largest
    integer whose reconstruction ``fl(k * scale)`` does not exceed ``x`` (``scale > 0``), so
    floor quantization returns grid values unchanged and never reconstructs above ``x``.

    >>> s = torch.tensor(0.7)
    >>> x = -7 * s                       # the grid point of code -7
    >>> k = torch.floor(x / s); k, k + floor_fix(x, s, k)
    (tensor(-8.), tensor(-7.))
    """
    return ((k + 1) * scale <= x).to(k.dtype) - (k * scale > x).to(k.dtype)


def discretize(u: torch.Tensor, rounding: str = "round", estimator: str = "ste",
               delta: float = 0.0, alpha: float = 1.0) -> torch.Tensor:
    """Round or floor ``u`` with a gradient estimator (floor supports only ``ste``)."""
    if rounding == "floor":
        if estimator != "ste":
            raise ConfigError(
                f"estimator {estimator!r} is defined for round-to-nearest; use rounding='round' "
                "or estimator='ste' with floor"
            )
        return floor_ste(u)
    if rounding != "round":
        raise ConfigError(f"rounding must be 'round' or 'floor', got {rounding!r}")
    return round_with(u, estimator, delta, alpha)


def check_rounding(rounding: str, estimator: Optional[str] = "ste") -> None:
    """Validate a rounding mode and its compatibility with an estimator."""
    if rounding not in ("round", "floor"):
        raise ConfigError(f"rounding must be 'round' or 'floor', got {rounding!r}")
    if rounding == "floor" and estimator not in (None, "ste"):
        raise ConfigError(f"floor rounding supports only the 'ste' estimator, got {estimator!r}")
