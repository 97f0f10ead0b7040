"""Observers: turn observed tensors into a quantization range (lo, hi) per parameter slice.

* ``minmax``: the smallest and largest value seen.
* ``percentile``: the (100-p)th and p-th percentiles (e.g. 99.99 for activations, Schaefer et al.).
* ``gaussian``: mean +- k standard deviations, within [min, max] (Schaefer et al. use it for weights).
* ``mse``: the clipping range, scaled from min-max, that minimises the quantization MSE.

Activation observers stream over batches and keep a bounded random sample for quantiles.

>>> import torch
>>> from lowbit.quantizers.granularity import Granularity
>>> obs = Observer("minmax", Granularity("channel", axis=0))
>>> obs.update(torch.tensor([[1.0, -2.0], [0.5, 3.0]]))
>>> obs.compute()
(tensor([-2.0000,  0.5000]), tensor([1., 3.]))
"""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

import torch

from ..errors import DataError
from .granularity import Granularity

MSE_RATIOS = torch.linspace(0.05, 1.0, 40)


class Observer:
    """Accumulate statistics of tensors (viewed by ``granularity``) and compute (lo, hi)."""

    def __init__(self, kind: str, granularity: Granularity, *, percentile: float = 99.99,
                 gaussian_k: float = 3.0, max_samples: int = 1 << 20,
                 mse_error: Optional[Callable] = None, name: str = "tensor"):
        self.kind, self.gran, self.name = kind, granularity, name
        self.percentile, self.gaussian_k = float(percentile), float(gaussian_k)
        self.max_samples, self.mse_error = max_samples, mse_error
        self.lo = self.hi = None
        self.sum = self.sumsq = None
        self.count = 0
        self.samples: List[torch.Tensor] = []
        self.gen = torch.Generator().manual_seed(0)

    def update(self, xv: torch.Tensor) -> None:
        """Observe one tensor (already in the granularity's view)."""
        xv = xv.detach().float()
        if xv.numel() == 0:
            raise DataError(f"{self.name}: observed an empty tensor; calibration needs data")
        if not torch.isfinite(xv).all():
            raise DataError(
                f"{self.name}: calibration saw NaN or Inf values; check the input data and its "
                "normalisation, or the float model (it may have diverged)")
        flat = self.gran.flat_slices(xv)  # (P, n): P parameter slices of n values
        lo, hi = flat.amin(dim=1), flat.amax(dim=1)
        self.lo = lo if self.lo is None else torch.minimum(self.lo, lo)
        self.hi = hi if self.hi is None else torch.maximum(self.hi, hi)
        self.count += flat.shape[1]
        if self.kind == "gaussian":
            s, s2 = flat.sum(dim=1, dtype=torch.float64), flat.double().pow(2).sum(dim=1)
            self.sum = s if self.sum is None else self.sum + s
            self.sumsq = s2 if self.sumsq is None else self.sumsq + s2
        if self.kind in ("percentile", "mse"):
            self._keep_sample(flat)

    def _keep_sample(self, flat: torch.Tensor) -> None:
        per_update = max(self.max_samples // 8, 1)
        if flat.shape[1] > per_update:
            idx = torch.randperm(flat.shape[1], generator=self.gen)[:per_update]
            flat = flat[:, idx]
        self.samples.append(flat.clone())
        total = sum(s.shape[1] for s in self.samples)
        if total > self.max_samples:  # keep a random subset of what we have
            allv = torch.cat(self.samples, dim=1)
            idx = torch.randperm(allv.shape[1], generator=self.gen)[: self.max_samples]
            self.samples = [allv[:, idx]]

    def compute(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return (lo, hi), each with one value per parameter slice."""
        if self.lo is None:
            raise DataError(f"{self.name}: nothing was observed; the calibration loader was empty")
        if self.kind == "minmax":
            return self.lo, self.hi
        if self.kind == "gaussian":
            mean = self.sum / self.count
            std = (self.sumsq / self.count - mean**2).clamp_min(0).sqrt()
            lo = torch.maximum((mean - self.gaussian_k * std).float(), self.lo)
            hi = torch.minimum((mean + self.gaussian_k * std).float(), self.hi)
            return lo, hi
        samples = torch.cat(self.samples, dim=1)
        if self.kind == "percentile":
            q = torch.tensor([1 - self.percentile / 100, self.percentile / 100])
            qs = _quantiles(samples, q)
            return qs[:, 0], qs[:, 1]
        return self._mse_range(samples)

    def _mse_range(self, samples: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.mse_error is None:
            raise DataError("the mse observer needs the quantizer's error function")
        best_err, best = None, torch.ones_like(self.lo)
        for r in MSE_RATIOS:
            err = self.mse_error(samples, self.lo * r, self.hi * r)  # (P,)
            if best_err is None:
                best_err, best = err, torch.full_like(self.lo, float(r))
            else:
                better = err < best_err
                best_err = torch.where(better, err, best_err)
                best = torch.where(better, torch.full_like(best, float(r)), best)
        return self.lo * best, self.hi * best


def _quantiles(samples: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Row-wise quantiles of (P, n) samples -> (P, len(q)); exact via sorting."""
    s, _ = samples.sort(dim=1)
    n = s.shape[1]
    pos = q * (n - 1)
    lo_i, hi_i = pos.floor().long(), pos.ceil().long()
    frac = (pos - lo_i.float()).unsqueeze(0)
    return s[:, lo_i] * (1 - frac) + s[:, hi_i] * frac
