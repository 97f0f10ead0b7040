"""Affine quantizers: calibrated uniform (fixed), LSQ (learned step), power-of-two step.

>>> import torch
>>> from lowbit.quantizers import QuantizerConfig, make_quantizer
>>> w = torch.randn(4, 3)
>>> q = make_quantizer(QuantizerConfig(kind="lsq", bits=4, granularity="channel"), "weight", w.shape)
>>> q.init_from_tensor(w)
>>> torch.equal(q.dequantize(q.quantize(w)), q(w))
True
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import nn

from ..ops.affine import quantize as int_quantize
from ..ops.gradients import grad_scale
from ..ops.kernels import fast_fake_quantize
from ..ops.ranges import qrange
from ..ops.rounding import round_ste
from ..ops.transforms import pow2_scale
from .base import TINY_SCALE, QParams, Quantizer, affine_from_range


class UniformQuantizer(Quantizer):
    """Affine quantizer whose scale and zero point come from calibration and stay fixed."""

    affine_grid = True

    def _build(self, pshape: Tuple[int, ...]) -> None:
        self.register_buffer("scale", torch.ones(pshape))
        self.register_buffer("zero_point", torch.zeros(pshape))

    def qrange(self) -> Tuple[int, int]:
        return qrange(self.bits, self.signed, self.config.narrow_range)

    def init_from_range(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        scale, zp = affine_from_range(lo, hi, *self.qrange(), self.config.symmetric)
        self.scale.copy_(scale.reshape(self.scale.shape))
        self.zero_point.copy_(zp.reshape(self.zero_point.shape))

    def set_bits(self, bits: int) -> None:
        """Change bits, keeping the covered range: the step grows as levels shrink."""
        old = self._bits
        super().set_bits(bits)
        if bool(self.initialized) and old != self._bits and self._signed is not None:
            with torch.no_grad():
                lo, hi = self._covered_range(old)
                self.init_from_range(lo, hi)

    def _covered_range(self, bits: int):
        qmin, qmax = qrange(bits, self.signed, self.config.narrow_range)
        s, z = self.effective_scale().detach(), self.effective_zero_point().detach()
        return (qmin - z) * s, (qmax - z) * s

    def has_zero_point(self) -> bool:
        return not self.config.symmetric

    def effective_scale(self) -> torch.Tensor:
        """The scale used in the forward pass (compact shape)."""
        return self.scale

    def effective_zero_point(self) -> torch.Tensor:
        """The (integer-valued) zero point used in the forward pass (compact shape)."""
        return self.zero_point

    def _train_scale(self, xv: torch.Tensor) -> torch.Tensor:
        return self.effective_scale()

    def _fake(self, xv: torch.Tensor) -> torch.Tensor:
        g, cfg = self.granularity, self.config
        qmin, qmax = self.qrange()
        scale = g.expand(self._train_scale(xv), xv)
        zp = g.expand(self.effective_zero_point(), xv)
        return fast_fake_quantize(xv, scale, zp, qmin, qmax, cfg.rounding, cfg.estimator,
                                  cfg.grad_delta, cfg.grad_alpha)

    def _codes(self, xv: torch.Tensor) -> torch.Tensor:
        g = self.granularity
        qmin, qmax = self.qrange()
        return int_quantize(xv, g.expand(self.effective_scale(), xv), g.expand(self.effective_zero_point(), xv),
                            qmin, qmax, self.config.rounding)

    def qparams(self, x: Optional[torch.Tensor] = None) -> QParams:
        self._check_ready()
        qmin, qmax = self.qrange()
        scale = self.effective_scale().detach().clone()
        full = lambda v: torch.full(scale.shape, v, dtype=torch.int32)  # noqa: E731
        zero_point = self.effective_zero_point().detach().clone()
        return QParams(scale=scale, zero_point=zero_point, qmin=full(qmin),
                       qmax=full(qmax), bits=full(self.bits), signed=self.signed,
                       granularity=self.granularity)


class LSQQuantizer(UniformQuantizer):
    """Learned step size (LSQ, Esser et al.): the scale is a parameter trained by backprop.

    The scale's gradient is multiplied by ``1 / sqrt(N * qmax)`` (N = elements per scale) as in
    LSQ, so that step sizes learn at a rate comparable to weights. Asymmetric configs also learn
    the zero point (LSQ+). The scale is kept positive by :meth:`project_`.
    """

    learnable = True

    def _build(self, pshape: Tuple[int, ...]) -> None:
        self.scale = nn.Parameter(torch.ones(pshape))
        if self.config.symmetric:
            self.register_buffer("zero_point", torch.zeros(pshape))
        else:
            self.zero_point = nn.Parameter(torch.zeros(pshape))

    def init_from_range(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        scale, zp = affine_from_range(lo, hi, *self.qrange(), self.config.symmetric)
        self.scale.data.copy_(scale.reshape(self.scale.shape))
        self.zero_point.data.copy_(zp.reshape(self.zero_point.shape))

    def effective_scale(self) -> torch.Tensor:
        return self.scale.abs().clamp_min(TINY_SCALE)

    def _train_scale(self, xv: torch.Tensor) -> torch.Tensor:
        s = self.effective_scale()
        if self.config.lsq_grad_scale and s.requires_grad:
            n = max(xv.numel() // max(s.numel(), 1), 1)
            s = grad_scale(s, 1.0 / math.sqrt(n * max(self.qrange()[1], 1)))
        return s

    def project_(self) -> None:
        with torch.no_grad():
            self.scale.abs_().clamp_(min=TINY_SCALE)
            if isinstance(self.zero_point, nn.Parameter):
                qmin, qmax = self.qrange()
                self.zero_point.clamp_(qmin, qmax)

    def scale_slices(self, x: torch.Tensor):
        """The learned step per slice (see :meth:`Quantizer.scale_slices`)."""
        self._check_ready()
        return self._slices(x, self.effective_scale(), self.effective_zero_point())

    def effective_zero_point(self) -> torch.Tensor:
        """A learned zero point is rounded (straight-through) so values stay on the grid."""
        if isinstance(self.zero_point, nn.Parameter):
            return round_ste(self.zero_point)
        return self.zero_point


class Pow2Quantizer(LSQQuantizer):
    """LSQ whose step is rounded to a power of two in the forward pass (shift-only rescaling).

    The stored parameter is a free positive scale; the forward uses ``2^round(log2 s)`` with a
    straight-through gradient in log space.
    """

    def effective_scale(self) -> torch.Tensor:
        return pow2_scale(self.scale.abs().clamp_min(TINY_SCALE))

    def init_from_range(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        super().init_from_range(lo, hi)
        with torch.no_grad():  # start on the power of two at or above the range, no clipping
            self.scale.copy_(torch.exp2(torch.ceil(torch.log2(self.scale.clamp_min(TINY_SCALE)))))
