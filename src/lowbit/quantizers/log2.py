"""Logarithmic (power-of-two valued) quantizer: non-uniform levels ``0, +-2^e``.

With b bits, one bit is the sign and the rest index ``L = 2^(b-1) - 1`` exponents
``e in [max_exp - L + 1, max_exp]`` (code 0 is zero). ``max_exp`` per slice comes from
calibration (the exponent at or above the largest magnitude). Multiplications by such weights
are shifts, which is why hardware papers (and QGT's power-of-two regularizer) use them.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from ..errors import ConfigError
from ..ops.transforms import log2_quantize_values
from .base import QParams, Quantizer


class Log2Quantizer(Quantizer):
    """Non-uniform power-of-two quantizer with calibrated per-slice maximum exponent."""

    @classmethod
    def check_config(cls, config) -> None:
        config.need_no_groups()
        if config.bits < 2:
            raise ConfigError("log2 quantization needs at least 2 bits (sign + exponent)")
        config.need_symmetric()

    def _build(self, pshape: Tuple[int, ...]) -> None:
        self.register_buffer("max_exp", torch.zeros(pshape))

    def _levels(self) -> int:
        return (1 << (self.bits - 1)) - 1

    def init_from_range(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        absmax = torch.maximum(lo.abs(), hi.abs()).clamp_min(1e-30)
        self.max_exp.copy_(torch.round(torch.log2(absmax)).reshape(self.max_exp.shape))

    def _fake(self, xv: torch.Tensor) -> torch.Tensor:
        return log2_quantize_values(xv, self.granularity.expand(self.max_exp, xv), self.bits)

    def _codes(self, xv: torch.Tensor) -> torch.Tensor:
        """Signed codes: 0 is zero, +-j is +-2^(min_exp + j - 1)."""
        min_exp = self.granularity.expand(self.max_exp - (self._levels() - 1), xv)
        y = self._fake(xv)
        mag = y.abs()
        j = torch.where(mag > 0, torch.log2(mag.clamp_min(1e-38)) - min_exp + 1, torch.zeros_like(mag))
        return torch.sign(y) * torch.round(j)

    def qparams(self, x: Optional[torch.Tensor] = None) -> QParams:
        self._check_ready()
        L = self._levels()
        pshape = self._pshape()
        full = lambda v: torch.full(pshape, v, dtype=torch.int32)  # noqa: E731
        return QParams(scale=torch.ones(pshape), zero_point=torch.zeros(pshape), qmin=full(-L),
                       qmax=full(L), bits=full(self.bits), signed=True,
                       granularity=self.granularity, kind="log2",
                       extra={"min_exp": (self.max_exp - (L - 1)).clone()})
