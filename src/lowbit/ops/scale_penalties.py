"""Per-slice quantities behind the learned-scale loss terms of the learned-quantization thesis
(Chinbat 2025, "Learned Quantization Schemes for Data-centric ML Pipelines", section 3.2).

Every function takes one tensor already split into its granularity slices: ``values`` of shape
(S, n) (S slices sharing one scale each, n elements per slice), ``scale`` and ``zero_point``
of shape (S, 1), and ``codes`` (S, n), the integer codes the quantizer produced (no gradient).
They return one number per slice, shape (S,); the loss terms in :mod:`lowbit.methods.penalties`
weight and sum them.

* :func:`inverse_scale`: ``ref / s``. With ``ref = max |P|`` of the slice (detached) it is the
  number of grid steps between 0 and the largest magnitude, a dimensionless count that a
  coefficient can weigh equally across layers; its gradient ``-ref / s^2`` is always negative,
  so gradient descent makes every scale coarser.
* :func:`soft_bins`: the differentiable surrogate of the number of bins a slice uses, the
  *span* ``(hi - lo) / s + 1`` of the range ``[lo, hi]`` (containing 0) that the codes cover.
  The exact count ``floor(hi/s) - floor(lo/s) + 1`` (or with ``round``) is a step function of
  ``s``; the span is the same count with the floors removed, so it lies within one bin of it
  and falls continuously as ``s`` grows (:func:`bins_used` gives the exact count).
* :func:`deviation`: ``sum (Q - P)^2`` with ``Q = (codes - z) * s``, the distance between the
  quantized and the original values; the codes are constants, so ``P`` is pulled toward its
  grid point and ``s`` toward the least-squares step for the current codes.

>>> import torch
>>> P = torch.tensor([[-0.5, 0.25, 1.0]])
>>> s = torch.tensor([[0.25]])
>>> inverse_scale(s, P.abs().amax(1, keepdim=True))     # max|P| / s: 4 steps to the largest value
tensor([4.])
>>> soft_bins(P, s), bins_used(torch.floor(P / s))      # span 1.5 / 0.25 + 1; codes -2..4
(tensor([7.]), tensor([7.]))
"""

from __future__ import annotations

from typing import Optional

import torch


def inverse_scale(scale: torch.Tensor, ref: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``ref / s`` per slice (``ref`` None: ``1 / s``, the bare inverse scale); shape (S,)."""
    inv = 1.0 / scale
    if ref is not None:
        inv = inv * ref.detach()
    return inv.reshape(-1)


def slice_range(values: torch.Tensor):
    """(lo, hi) per slice, (S, 1) each, widened to contain 0 (codes of 0 are always there)."""
    lo = values.amin(dim=1, keepdim=True).clamp_max(0)
    hi = values.amax(dim=1, keepdim=True).clamp_min(0)
    return lo, hi


def soft_bins(values: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The span surrogate ``(hi - lo) / s + 1`` of the bins a slice uses; shape (S,).

    Differentiable in ``s`` (it falls as ``s`` grows) and in the extreme values of the slice.
    """
    lo, hi = slice_range(values)
    return ((hi - lo) / scale + 1).reshape(-1)


@torch.no_grad()
def bins_used(codes: torch.Tensor) -> torch.Tensor:
    """Exact bins between the smallest and largest code of each slice, 0 included; shape (S,)."""
    lo, hi = slice_range(codes)
    return (hi - lo + 1).reshape(-1)


def deviation(values: torch.Tensor, codes: torch.Tensor, scale: torch.Tensor,
              zero_point: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``sum_i ((codes_i - z) * s - P_i)^2`` per slice; shape (S,). ``codes`` carry no gradient."""
    q = codes.detach()
    if zero_point is not None:
        q = q - zero_point.detach()
    return (q * scale - values).pow(2).sum(dim=1)
