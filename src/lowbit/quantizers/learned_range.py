"""Learned step size d and dynamic range q+ with implicit bit-width (Schaefer et al., eq. 1).

Forward: ``Q(x) = round(clip(x, -q+, q+) / d) * d`` (unsigned inputs clip to [0, q+]).
The integer codes then lie in [-n, n] with ``n = round(q+ / d)``, so the bit-width a slice
needs is ``b = ceil(log2(n + 1)) + 1`` (signed) or ``ceil(log2(n + 1))`` (unsigned).

**Fractional to integer bits.** q+/d is continuous while training; bits are always the
integer ``b`` above: the forward pass, :meth:`channel_bits`, the accounting and the export all
use it. :meth:`bit_tensor` returns the same integer values with a gradient (straight-through
through round and ceil of ``log2(q+/d + 1)``), which the memory-budget penalty uses.
Bits stay in [bits_min, bits_max] because q+/d is clamped to [n_min, n_max] in the forward
pass and projected back after every optimizer step.

**Filled grids** (``fill_levels: true``). n = round(q+/d) may sit anywhere inside its bit-width:
n = 2 and n = 3 both take 2 unsigned bits, but n = 2 uses 3 of the 4 codes. The budget
penalty's straight-through gradient pushes q+ down inside a bit-width although that saves
nothing, so without this option learned grids end with unused codes. With it the forward pass,
the levels, the accounting and the export use ``2**ceil(log2(n + 1)) - 1`` levels (every code
of the integer bits) while q+ itself keeps moving continuously between bit-widths. The grid
keeps d: the clip range is ``d * levels``, up to twice q+, and halves when a bit-width drops,
while q+ moves inside a bit-width without clipping anything.

With ``learn_bits=False`` (homogeneous phases) the range is tied to the step,
``q+ = d * n_max(bits)``, and only d learns, as in LSQ. Switching it off *after* bits were
learned ties each slice to the levels it has reached (``tied_levels``), so a fine-tuning phase
can keep learning the steps at the learned bit allocation; :meth:`set_bits` ties every slice
to ``n_max(bits)`` again.

**Parametrization.** The parameters are ``log2 d`` and ``log2 q+``, so the bit-width
``log2(q+/d) + 1`` is linear in them: an optimizer step of 0.01 changes a bit-width by at most
0.01 bit whatever the tensor's scale, and d and q+ stay positive by construction. (With d and
q+ themselves, d ~ 0.003 and q+ ~ 0.1 for the same weights move at rates 30x apart.)
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import nn

from ..errors import ConfigError
from ..ops.gradients import ceil_ste, fill_levels_ste, grad_scale
from ..ops.kernels import fast_clip_round
from ..ops.ranges import check_bits
from ..ops.rounding import round_ste
from .base import TINY_SCALE, QParams, Quantizer


def levels_for_bits(bits: int, signed: bool) -> int:
    """Largest n with codes in [-n, n] (signed) or [0, n] (unsigned) fitting ``bits``."""
    return (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1


def min_levels_for_bits(bits: int, signed: bool) -> int:
    """Smallest n that still needs ``bits`` bits (so bits never fall below it)."""
    if signed:
        return 1 if bits <= 2 else 1 << (bits - 2)
    return 1 if bits <= 1 else 1 << (bits - 1)


def bits_from_levels(n: torch.Tensor, signed: bool) -> torch.Tensor:
    """Integer bits needed for codes up to n (float tensor in, float tensor out)."""
    b = torch.ceil(torch.log2(n + 1))
    return b + 1 if signed else b.clamp_min(1)


class LearnedRangeQuantizer(Quantizer):
    """Per-tensor or per-output-channel (d, q+) with bits in [bits_min, bits_max]."""

    learnable = True
    can_learn_bits = True
    reads = ("bits_min", "bits_max", "learn_bits", "fill_levels")

    @classmethod
    def check_config(cls, config) -> None:
        lo, hi = check_bits(config.bits_min, "bits_min"), check_bits(config.bits_max, "bits_max")
        if lo > hi:
            raise ConfigError(f"bits_min ({lo}) must be <= bits_max ({hi})")
        if not lo <= config.bits <= hi:
            raise ConfigError(f"bits ({config.bits}) must lie in [bits_min, bits_max] = [{lo}, {hi}]")
        if lo < 2 and config.signed is not False:  # signed [-n, n] at 1 bit: n = 0, no levels
            raise ConfigError("learned_range needs bits_min >= 2 for signed values (a 1-bit "
                              "signed range [-n, n] has n = 0 levels); set bits_min: 2, or "
                              "signed: false for non-negative activations")
        if not config.symmetric:
            raise ConfigError("learned_range is symmetric (range [-q+, q+]); set symmetric: true")

    def _build(self, pshape: Tuple[int, ...]) -> None:
        self.log2_step = nn.Parameter(torch.zeros(pshape))
        self.log2_qplus = nn.Parameter(torch.zeros(pshape))
        # levels n per slice while the range is tied to the step (0: n_max of the configured bits)
        self.register_buffer("tied_levels", torch.zeros(pshape))
        self.learn_bits = self.config.learn_bits

    @property
    def step(self) -> torch.Tensor:
        """The step size d (compact shape)."""
        return torch.exp2(self.log2_step)

    @property
    def qplus(self) -> torch.Tensor:
        """The learned dynamic range q+ (before bounds; compact shape)."""
        return torch.exp2(self.log2_qplus)

    @torch.no_grad()
    def set_step_and_range(self, step: Optional[torch.Tensor] = None,
                           qplus: Optional[torch.Tensor] = None) -> None:
        """Set d and/or q+ (positive values, compact shape or broadcastable)."""
        if step is not None:
            self.log2_step.copy_(torch.log2(torch.as_tensor(step).clamp_min(TINY_SCALE)).expand_as(self.log2_step))
        if qplus is not None:
            self.log2_qplus.copy_(torch.log2(torch.as_tensor(qplus).clamp_min(TINY_SCALE)).expand_as(self.log2_qplus))

    # ----- bounds -------------------------------------------------------------------------
    def _level_bounds(self) -> Tuple[int, int]:
        cfg = self.config
        return (min_levels_for_bits(cfg.bits_min, self.signed),
                levels_for_bits(cfg.bits_max, self.signed))

    def effective_step(self) -> torch.Tensor:
        return self.step.clamp_min(TINY_SCALE)

    def effective_range(self) -> torch.Tensor:
        """q+ actually used: clamped so bits stay in bounds, or tied to d when not learning bits."""
        d = self.effective_step()
        if not self.learn_bits:  # the configured width (``self.bits`` would recurse via levels())
            n_cfg = levels_for_bits(int(self._bits), self.signed)
            return d * torch.where(self.tied_levels > 0, self.tied_levels, torch.full_like(d, n_cfg))
        q = self._clamped_range(d)
        # fill_levels: the grid gets every level of the integer bits q/d needs; q+ still moves
        # continuously (the gradient passes straight through), so it acts as the bit-width only
        if self.config.fill_levels:
            return d * fill_levels_ste(q / d)
        return q

    def _clamped_range(self, d: torch.Tensor) -> torch.Tensor:
        n_min, n_max = self._level_bounds()
        return torch.clamp(self.qplus, d * n_min, d * n_max)

    def levels(self) -> torch.Tensor:
        """Levels n a side per slice, round(clip range / step): round(q+ / d), filled when
        ``fill_levels`` is on (float tensor, no gradient)."""
        with torch.no_grad():
            return torch.round(self.effective_range() / self.effective_step())

    # ----- bits ---------------------------------------------------------------------------
    def channel_bits(self, x: Optional[torch.Tensor] = None) -> torch.Tensor:
        return bits_from_levels(self.levels(), self.signed).to(torch.int32)

    def storage(self, x: Optional[torch.Tensor] = None):
        if not bool(self.initialized) or self._signed is None:
            return torch.full(self._pshape(), int(self._bits), dtype=torch.int32), False
        return self.channel_bits(), False

    @property
    def bits(self) -> int:
        """The largest bit-width over slices."""
        if not bool(self.initialized) or self._signed is None:
            return int(self._bits)
        return int(self.channel_bits().max())

    def min_bits(self) -> int:
        """The fewest bits a slice can fall to while bits learn (``bits_min``, at least 2 signed)."""
        n_min = torch.tensor(float(min_levels_for_bits(self.config.bits_min, self.signed)))
        return int(bits_from_levels(n_min, self.signed))

    def bit_tensor(self) -> torch.Tensor:
        """Integer bits per slice as a float tensor with a gradient w.r.t. d and q+."""
        n = round_ste(self.effective_range() / self.effective_step())
        b = ceil_ste(torch.log2(n + 1))
        return b + 1 if self.signed else b

    def set_bits(self, bits: int) -> None:
        """Set every slice to ``bits`` (q+ = d * n_max(bits))."""
        bits = check_bits(bits)
        if bits < 2 and self._signed is not False:  # a signed [-n, n] range has n = 0 at 1 bit
            raise ConfigError(f"learned_range quantizer {self.name or ''}: 1 bit leaves no level "
                              "for signed values; use >= 2 bits")
        self._bits = bits
        self.tied_levels.zero_()
        if bool(self.initialized) and self._signed is not None:
            self.set_step_and_range(qplus=self.effective_step() * levels_for_bits(self._bits, self.signed))

    def set_learn_bits(self, flag: bool) -> None:
        """Switch between tied (fixed bits) and learned range; keeps the current grid (and so
        the current bits of every slice) either way."""
        ready = bool(self.initialized) and self._signed is not None
        if flag and not self.learn_bits and ready:
            self.set_step_and_range(qplus=self.effective_range())
        elif not flag and self.learn_bits and ready:
            self.tied_levels.copy_(self.levels())
        self.learn_bits = bool(flag)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints written before ``tied_levels`` existed: tie to the configured bits
        state_dict.setdefault(prefix + "tied_levels", torch.zeros_like(self.tied_levels))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ----- calibration and state ----------------------------------------------------------
    def init_from_range(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        absmax = torch.maximum(lo.abs(), hi.abs()) if self.signed else hi
        absmax = absmax.clamp_min(TINY_SCALE).reshape(self.log2_step.shape)
        n = levels_for_bits(self._bits, self.signed)
        self.set_step_and_range(step=absmax / n, qplus=absmax)

    def project_(self) -> None:
        if bool(self.initialized) and self._signed is not None and self.learn_bits:
            # the clamp only: snapping q+ onto the filled grid would undo every move inside a bit
            self.set_step_and_range(qplus=self._clamped_range(self.effective_step()))

    def get_extra_state(self):
        return {**super().get_extra_state(), "learn_bits": self.learn_bits}

    def set_extra_state(self, state) -> None:
        super().set_extra_state(state)
        self.learn_bits = state.get("learn_bits", self.config.learn_bits)

    # ----- forward and integer views -------------------------------------------------------
    def _bounds(self, xv: torch.Tensor, grad_factor: float = 1.0
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(lower, upper, step) broadcast against ``xv``: the clip range [-q+, q+] (or [0, q+])
        and the grid step."""
        g = self.granularity
        d, q = self.effective_step(), self.effective_range()
        if grad_factor != 1.0 and d.requires_grad:
            d, q = grad_scale(d, grad_factor), grad_scale(q, grad_factor)
        q = g.expand(q, xv)
        lower = -q if self.signed else torch.zeros_like(q)
        return lower, q, g.expand(d, xv)

    def _grad_factor(self, xv: torch.Tensor) -> float:
        """LSQ's 1 / sqrt(N * n): the step and range gradients sum over the N elements of their
        slice, so without it SGD moves them N times faster than the weights (the budget
        penalty, which reads :meth:`bit_tensor`, is not scaled)."""
        if not self.config.lsq_grad_scale:
            return 1.0
        n_elems = max(xv.numel() // max(self.log2_step.numel(), 1), 1)
        return 1.0 / math.sqrt(n_elems * levels_for_bits(int(self._bits), self.signed))

    def _fake(self, xv: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        return fast_clip_round(xv, *self._bounds(xv, self._grad_factor(xv)), cfg.estimator,
                               cfg.grad_delta, cfg.grad_alpha)

    def _codes(self, xv: torch.Tensor) -> torch.Tensor:
        lower, upper, d = self._bounds(xv)
        return torch.round(torch.clamp(xv, lower, upper) / d)

    def qparams(self, x: Optional[torch.Tensor] = None) -> QParams:
        self._check_ready()
        n = self.levels().to(torch.int32)
        step = self.effective_step().detach().clone()
        return QParams(scale=step, zero_point=torch.zeros_like(step),
                       qmin=-n if self.signed else torch.zeros_like(n), qmax=n,
                       bits=self.channel_bits(), signed=self.signed, granularity=self.granularity)
