"""Power-of-two scales, logarithmic (non-uniform) values, and DoReFa transforms (Zhuang et al.).

>>> import torch
>>> pow2_scale(torch.tensor([0.3, 0.05]))
tensor([0.2500, 0.0625])
>>> w = torch.tensor([-2.0, 0.0, 0.5])
>>> dorefa_weight_normalize(w).min() >= 0, dorefa_weight_normalize(w).max() <= 1
(tensor(True), tensor(True))
"""

from __future__ import annotations

import torch

from .rounding import discretize, round_ste


def pow2_scale(scale: torch.Tensor) -> torch.Tensor:
    """Nearest power of two (in log space) of a positive scale; gradient via the STE in log2.

    Hardware can then rescale with a shift instead of a multiplier.
    """
    return torch.exp2(round_ste(torch.log2(scale)))


def dorefa_weight_normalize(w: torch.Tensor) -> torch.Tensor:
    """Zhuang et al., eq. 2 inner map: ``tanh(w) / (2 max|tanh(w)|) + 1/2`` into [0, 1].

    tanh limits the influence of large weights; an all-zero tensor maps to 1/2 (no NaN).
    """
    t = torch.tanh(w)
    m = t.abs().max().clamp_min(torch.finfo(w.dtype).tiny)
    return t / (2 * m) + 0.5


def dorefa_levels(bits: int) -> int:
    """Number of steps ``2^k - 1`` of DoReFa's k-bit quantizer Q_k (Zhuang et al., eq. 1)."""
    return (1 << bits) - 1


def dorefa_weight_qparams(bits: int, like: torch.Tensor):
    """Affine parameters of DoReFa weights: ``w_q = (m - (2^k-1)/2) * 2/(2^k-1)``, m in 0..2^k-1.

    This is Zhuang et al., eq. 2 (``2 Q_k(z) - 1``) written as an affine map of the integer code m,
    so that convert/export can store m with a scale and a (half-integer) zero point.
    """
    n = dorefa_levels(bits)
    scale = torch.tensor(2.0 / n, dtype=like.dtype, device=like.device)
    zero_point = torch.tensor(n / 2.0, dtype=like.dtype, device=like.device)
    return scale, zero_point


def dorefa_weight_codes(w: torch.Tensor, bits: int, estimator: str = "ste", delta: float = 0.0,
                        alpha: float = 1.0) -> torch.Tensor:
    """Integer codes m = round((2^k - 1) * normalize(w)) in 0..2^k-1 (float, with gradient)."""
    return discretize(dorefa_weight_normalize(w) * dorefa_levels(bits), "round", estimator,
                      delta, alpha)


def dorefa_weight(w: torch.Tensor, bits: int, estimator: str = "ste", delta: float = 0.0,
                  alpha: float = 1.0) -> torch.Tensor:
    """DoReFa weight quantization to ``2^k`` levels in [-1, 1] (Zhuang et al., eq. 2)."""
    scale, zero_point = dorefa_weight_qparams(bits, w)
    return (dorefa_weight_codes(w, bits, estimator, delta, alpha) - zero_point) * scale


def log2_quantize_values(x: torch.Tensor, max_exp: torch.Tensor, bits: int) -> torch.Tensor:
    """Logarithmic quantization: ``sign(x) * 2^e`` with e in [max_exp - L + 1, max_exp], or 0.

    One bit holds the sign and the other ``bits - 1`` bits index ``L = 2^(bits-1) - 1``
    exponents plus a code for zero. Magnitudes below half the smallest level become 0.
    Gradient: straight-through in the exponent (the STE of ``round`` in log2 space).
    """
    levels = (1 << (bits - 1)) - 1
    min_exp = max_exp - (levels - 1)
    mag = x.abs().clamp_min(torch.finfo(x.dtype).tiny)
    e = torch.clamp(round_ste(torch.log2(mag)), min_exp, max_exp)
    value = torch.exp2(e)
    keep = mag >= torch.exp2(min_exp) / 2  # below half the smallest level rounds to zero
    return torch.sign(x) * value * keep
