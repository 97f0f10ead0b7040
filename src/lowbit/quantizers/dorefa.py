"""DoReFa quantizers (Zhuang et al., eq. 1-3).

Weights: ``w_q = 2 Q_k(tanh(w) / (2 max|tanh(w)|) + 1/2) - 1`` with
``Q_k(z) = round((2^k - 1) z) / (2^k - 1)``, i.e. 2^k levels in [-1, 1]; the max runs over the
tensor (or each output channel). Activations: ``x_q = Q_k(clip(x, 0, 1))``. The integer codes
are exactly the seed's ``round((2^k - 1) z)``; values are ``code * (1 / (2^k - 1))`` (weights:
``(code - (2^k - 1)/2) * 2/(2^k - 1)``), i.e. the eq. 1-3 values to float32 rounding, so that
``dequantize(quantize(x))`` reproduces the forward bit for bit.
Both are affine maps of integer codes, so convert/export treat them like any other quantizer
(weights have the half-integer zero point (2^k - 1) / 2).
"""

from __future__ import annotations

from typing import Optional

import torch

from ..ops.rounding import discretize
from ..ops.transforms import dorefa_levels, dorefa_weight_qparams
from .base import QParams, Quantizer


class DoReFaQuantizer(Quantizer):
    """DoReFa weight (tanh-normalised) or activation (clip to [0, 1]) quantizer; no parameters."""

    calibrated = False  # fixed ranges: [-1, 1] weights, [0, 1] activations

    @classmethod
    def check_config(cls, config) -> None:
        config.need_no_groups()
        config.need_symmetric()

    def build(self, x_shape) -> None:
        super().build(x_shape)
        self.initialized.fill_(True)  # nothing to calibrate
        if self.role == "act":
            self._signed = False

    def init_from_range(self, lo, hi) -> None:
        """DoReFa's ranges are fixed ([-1, 1] weights, [0, 1] activations)."""

    def _normalize(self, xv: torch.Tensor) -> torch.Tensor:
        t = torch.tanh(xv)
        dims = self.granularity.reduce_dims(xv)
        m = t.abs().amax(dim=dims, keepdim=True).clamp_min(torch.finfo(xv.dtype).tiny)
        return t / (2 * m) + 0.5  # in [0, 1]

    def _fake(self, xv: torch.Tensor) -> torch.Tensor:
        cfg, n = self.config, dorefa_levels(self.bits)
        if self.role == "act":  # eq. 3: code round((2^k - 1) clip(x, 0, 1)), value code/(2^k - 1)
            codes = discretize(torch.clamp(xv, 0, 1) * n, "round", cfg.estimator, cfg.grad_delta,
                               cfg.grad_alpha)
            return codes * xv.new_tensor(1.0 / n)
        scale, zp = dorefa_weight_qparams(self.bits, xv)
        codes = discretize(self._normalize(xv) * n, "round", cfg.estimator, cfg.grad_delta,
                           cfg.grad_alpha)
        return (codes - zp) * scale

    def _codes(self, xv: torch.Tensor) -> torch.Tensor:
        n = dorefa_levels(self.bits)
        if self.role == "act":
            return torch.round(torch.clamp(xv, 0, 1) * n)
        return torch.round(self._normalize(xv) * n)

    def qparams(self, x: Optional[torch.Tensor] = None) -> QParams:
        n = dorefa_levels(self.bits)
        pshape = self._pshape()
        if self.role == "act":
            scale, zp = torch.full(pshape, 1.0 / n), torch.zeros(pshape)
        else:
            s, z = dorefa_weight_qparams(self.bits, torch.zeros(()))
            scale, zp = torch.full(pshape, float(s)), torch.full(pshape, float(z))
        full = lambda v: torch.full(pshape, v, dtype=torch.int32)  # noqa: E731
        return QParams(scale=scale, zero_point=zp, qmin=full(0), qmax=full(n),
                       bits=full(self.bits), signed=False, granularity=self.granularity,
                       extra={"transform": "dorefa" if self.role == "weight" else "clip01"})
