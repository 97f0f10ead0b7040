"""The nested quantization layer of Chinbat's thesis: floor quantization with a learned scale s.

``P_rec = floor(P / s) * s``; ``P`` gets the straight-through gradient and ``s`` the
ratio-threshold gradient of :class:`lowbit.ops.nested.NestedQuant`. ``codes: round`` forms the
codes as ``round(P / s)`` instead: the same grid and gradients, with an error of at most half a
step where the floor's reaches a whole one. One scale per
granularity slice (scalar, row = axis 0, column = axis 1, channel). The bit-width is implied by
the codes: a slice whose codes span [lo, hi] needs the smallest signed width holding both.
``bits`` (when set) clips the codes to that width; ``bits=None`` leaves them unbounded.
``scale_grad: ste`` replaces the ratio rule by the plain straight-through gradient of the same
floor quantizer (``floor(P/s) - P/s``), for training scales with loss terms alone.

>>> import torch
>>> from lowbit.quantizers import QuantizerConfig, make_quantizer
>>> w = torch.randn(8, 4)
>>> q = make_quantizer(QuantizerConfig(kind="nested", bits=None, granularity="row"), "weight", w.shape)
>>> q.init_from_tensor(w)
>>> torch.equal(q.dequantize(q.quantize(w)), q(w))
True
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import nn

from ..errors import ConfigError
from ..ops.affine import fake_quantize
from ..ops.nested import nested_codes, nested_quantize
from ..ops.ranges import check_bits, qrange
from .base import TINY_SCALE, QParams, Quantizer

INIT_BITS = 8  # initial grid when no clip width is configured
SCALE_GRADS = ("ratio", "ste")  # config.scale_grad: the thesis's ratio rule or plain STE
CODES = ("floor", "round")  # config.codes: the thesis's floor(P/s) or round(P/s)


def signed_bits_for_codes(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Smallest two's-complement width holding integers in [lo, hi] (lo <= 0 <= hi)."""
    pos = torch.ceil(torch.log2(hi.clamp_min(0) + 1)) + 1
    neg = torch.ceil(torch.log2((-lo).clamp_min(1))) + 1
    return torch.maximum(pos, neg).clamp_min(1)


class NestedQuantizer(Quantizer):
    """Learned quantization scale (floor or round codes) with the gradient-to-parameter ratio rule."""

    learnable = True
    reads = ("threshold", "eps", "scale_grad", "codes")

    @classmethod
    def check_config(cls, config) -> None:
        if config.bits is not None and config.bits < 2:  # signed floor codes at 1 bit: {-1, 0}
            raise ConfigError(f"nested bits (the clip width) must be >= 2 or null for no clip, "
                              f"got {config.bits}: 1-bit signed codes {{-1, 0}} leave no positive level")
        if not (math.isfinite(config.threshold) and config.threshold > 0):
            raise ConfigError(f"nested threshold (lambda) must be > 0, got {config.threshold}")
        if not config.eps > 0:
            raise ConfigError(f"nested eps must be > 0, got {config.eps}")
        if config.scale_grad not in SCALE_GRADS:
            raise ConfigError(f"nested scale_grad must be one of {', '.join(SCALE_GRADS)}, "
                              f"got {config.scale_grad!r}")
        if config.codes not in CODES:
            raise ConfigError(f"nested codes must be one of {', '.join(CODES)}, got {config.codes!r}")
        if config.rounding != "round":  # the general field; nested has its own default (floor)
            raise ConfigError("nested quantizers choose floor or round codes with `codes`, not "
                              f"`rounding` (got rounding: {config.rounding})")
        config.need_symmetric()

    @property
    def rounding(self) -> str:
        """``floor`` (the thesis) or ``round``: how ``P / s`` becomes a code (``codes``)."""
        return self.config.codes

    def _build(self, pshape: Tuple[int, ...]) -> None:
        self.scale = nn.Parameter(torch.ones(pshape))

    @property
    def bits(self) -> int:
        return int(self._bits) if self._bits is not None else INIT_BITS

    def set_bits(self, bits: Optional[int]) -> None:
        """Clip codes to ``bits`` signed bits (None removes the clip; at least 2 bits)."""
        if bits is not None and check_bits(bits) < 2:
            raise ConfigError(f"nested quantizer {self.name or ''}: 1-bit signed codes {{-1, 0}} "
                              "leave no positive level; use >= 2 bits or no clip")
        self._bits = None if bits is None else check_bits(bits)

    def _clip(self):
        return (None, None) if self._bits is None else qrange(self._bits, True)

    def effective_scale(self) -> torch.Tensor:
        return self.scale.abs().clamp_min(TINY_SCALE)

    def init_from_range(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        absmax = torch.maximum(lo.abs(), hi.abs()).clamp_min(TINY_SCALE)
        self.scale.data.copy_((absmax / ((1 << (self.bits - 1)) - 1)).reshape(self.scale.shape))

    def project_(self) -> None:
        with torch.no_grad():
            self.scale.abs_().clamp_(min=TINY_SCALE)

    def _fake(self, xv: torch.Tensor) -> torch.Tensor:
        qmin, qmax = self._clip()
        s = self.granularity.expand(self.effective_scale(), xv)
        if self.config.scale_grad == "ste":  # same values: (codes(P/s) + 0 - 0) * s
            lo, hi = (-math.inf, math.inf) if qmin is None else (qmin, qmax)
            return fake_quantize(xv, s, torch.zeros_like(s), lo, hi, self.rounding)
        return nested_quantize(xv, s, self.config.threshold, self.config.eps, qmin, qmax, self.rounding)

    def scale_slices(self, x: torch.Tensor):
        """The learned scale per slice (see :meth:`Quantizer.scale_slices`)."""
        self._check_ready()
        s = self.effective_scale()
        return self._slices(x, s, torch.zeros_like(s))

    def _codes(self, xv: torch.Tensor) -> torch.Tensor:
        s = self.granularity.expand(self.effective_scale(), xv)
        codes = nested_codes(xv, s, self.rounding)
        qmin, qmax = self._clip()
        return codes if qmin is None else torch.clamp(codes, qmin, qmax)

    def channel_bits(self, x: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Bits per slice implied by the codes of ``x`` (the clip width when x is None)."""
        if x is None:
            return super().channel_bits()
        lo, hi = self._code_range(x)
        return signed_bits_for_codes(lo, hi).to(torch.int32)

    @torch.no_grad()
    def _code_range(self, x: torch.Tensor):
        xv = self.granularity.view(x)
        flat = self.granularity.flat_slices(self._codes(xv))
        lo = flat.amin(dim=1).clamp_max(0).reshape(self.scale.shape)
        hi = flat.amax(dim=1).clamp_min(0).reshape(self.scale.shape)
        return lo, hi

    def qparams(self, x: Optional[torch.Tensor] = None) -> QParams:
        self._check_ready()
        scale = self.effective_scale().detach().clone()
        if x is not None:
            bits = self.channel_bits(x)
        else:
            bits = torch.full(scale.shape, self.bits, dtype=torch.int32)
        qmax = (1 << (bits.long() - 1)) - 1
        return QParams(scale=scale, zero_point=torch.zeros_like(scale), qmin=(-qmax - 1).int(),
                       qmax=qmax.int(), bits=bits, signed=True, granularity=self.granularity)
