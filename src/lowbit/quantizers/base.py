"""The interface every quantizer module shares.

A quantizer owns its state (scales, ranges, bit-widths, enabled/frozen flags) and calls the
pure functions of :mod:`lowbit.ops`. Weight quantizers are built for a known weight shape;
activation quantizers are per-tensor and learn at calibration whether their input is signed.

Public state and controls:

* ``forward(x)``: fake-quantized ``x`` (``x`` itself when disabled);
* ``quantize(x)`` -> integer codes, ``dequantize(codes)`` -> floats, with
  ``dequantize(quantize(x)) == forward(x)`` bit for bit;
* ``qparams(x)`` -> :class:`QParams` for convert/export/accounting;
* ``enable()/disable()``, ``freeze()/unfreeze()``, ``set_bits(b)``, ``bits``, ``channel_bits(x)``;
* ``init_from_range(lo, hi)`` and ``observer()`` for calibration;
* ``scale_slices(x)`` -> :class:`ScaleSlices` (or None): the capability loss terms on learned
  scales ask for, instead of testing for a quantizer class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ..errors import ConfigError
from ..ops.kernels import fast_fake_quantize
from ..ops.ranges import check_bits, qrange
from .config import QuantizerConfig
from .granularity import Granularity
from .observers import Observer

TINY_SCALE = 1e-8


@dataclass
class QParams:
    """Everything needed to store and run quantized values outside training.

    ``scale``/``zero_point``/``qmin``/``qmax``/``bits`` are compact (one value per parameter
    slice, see :class:`Granularity`). ``kind`` is ``affine`` (value = (q - zero_point) * scale)
    or ``log2`` (value = sign(q) * 2^(min_exp + |q| - 1), q = 0 -> 0). ``rounding``: how values
    map to codes (``round`` or ``floor``; runtimes quantize activations with it).
    ``stored_zero_point``: whether the quantizer keeps a zero point per slice
    (``Quantizer.has_zero_point()``); None: unknown, stored wherever one is non-zero.
    :func:`lowbit.convert` fills both from the quantizer module.
    """

    scale: torch.Tensor
    zero_point: torch.Tensor
    qmin: torch.Tensor
    qmax: torch.Tensor
    bits: torch.Tensor
    signed: bool
    granularity: Granularity
    kind: str = "affine"
    extra: Dict[str, Any] = field(default_factory=dict)
    rounding: str = "round"
    stored_zero_point: Optional[bool] = None

    @property
    def max_bits(self) -> int:
        return int(self.bits.max())


@dataclass
class ScaleSlices:
    """A learned scale and the tensor it quantizes, one row per granularity slice.

    ``values`` (S, n): the tensor (with its gradient); ``codes`` (S, n): its integer codes as
    the forward pass computes them (clipped where the quantizer clips; no gradient);
    ``scale`` (S, 1): the scale used in the forward pass, differentiable with respect to the
    quantizer's learned parameter; ``zero_point`` (S, 1): no gradient.
    """

    values: torch.Tensor
    codes: torch.Tensor
    scale: torch.Tensor
    zero_point: torch.Tensor

    @property
    def elements(self) -> int:
        """How many values the slices hold (S * n)."""
        return self.values.numel()


class Quantizer(nn.Module):
    """Base class; subclasses implement ``_build``, ``init_from_range``, ``_fake``, ``_codes``.

    Capabilities (class attributes): what code outside ``lowbit.quantizers`` asks of a quantizer
    instead of testing for its class, so that a new kind needs no change elsewhere.
    """

    learnable = False        # has parameters trained with the network
    calibrated = True        # its range comes from data (observers); False: fixed ranges
    can_learn_bits = False   # learns a bit-width per slice: bit_tensor(), set_learn_bits(), min_bits()
    affine_grid = False      # one affine scale per slice: a bias can live on the accumulator grid
    # the kind-specific QuantizerConfig fields this kind reads; a kind that does not read a
    # field some other kind reads refuses a non-default value of it (QuantizerConfig)
    reads: Tuple[str, ...] = ()

    def __init__(self, config: QuantizerConfig, role: str = "weight",
                 shape: Optional[Sequence[int]] = None, name: str = ""):
        super().__init__()
        if role not in ("weight", "act"):
            raise ConfigError(f"quantizer role must be 'weight' or 'act', got {role!r}")
        if role == "act" and config.granularity != "tensor":
            raise ConfigError(
                f"activation quantizers are per-tensor; got granularity {config.granularity!r} "
                "(use granularity: tensor for activations)")
        self.config, self.role, self.name = config, role, name
        self.granularity = Granularity(config.granularity, config.axis, config.group_size)
        self.enabled, self.frozen = True, False
        self._bits = config.bits
        signed = config.signed if config.signed is not None else (True if role == "weight" else None)
        self._signed: Optional[bool] = signed
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self.shape: Optional[Tuple[int, ...]] = None
        if shape is not None or role == "act":
            self.build(tuple(shape) if shape is not None else ())

    @classmethod
    def check_config(cls, config: QuantizerConfig) -> None:
        """Validate the fields of ``config`` this kind reads (called when a config is made)."""

    # ----- construction and state -------------------------------------------------------
    def build(self, x_shape: Sequence[int]) -> None:
        """Create parameters for tensors of ``x_shape`` (weights: the weight's shape)."""
        self.shape = tuple(x_shape)
        self._build(self.granularity.param_shape(x_shape) if x_shape else ())

    def _build(self, pshape: Tuple[int, ...]) -> None:
        """Register parameters/buffers of compact shape ``pshape``."""

    @property
    def signed(self) -> bool:
        if self._signed is None:
            raise ConfigError(f"{self.label}: signedness is decided at calibration; calibrate first")
        return self._signed

    @property
    def label(self) -> str:
        return f"{self.role} quantizer {self.name or type(self).__name__}"

    @property
    def rounding(self) -> str:
        """How values map to codes: ``round`` (to nearest) or ``floor``."""
        return self.config.rounding

    @property
    def bits(self) -> int:
        """The configured (maximum) bit-width."""
        return int(self._bits)

    def set_bits(self, bits: int) -> None:
        """Change the bit-width at run time (e.g. progressive 8 -> 4 -> 2 phases)."""
        self._bits = check_bits(bits)

    def channel_bits(self, x: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Bit-width of every parameter slice (compact shape) as an integer tensor."""
        return torch.full(self._pshape(), self.bits, dtype=torch.int32)

    def _pshape(self) -> Tuple[int, ...]:
        return self.granularity.param_shape(self.shape) if self.shape else ()

    def enable(self) -> "Quantizer":
        self.enabled = True
        return self

    def disable(self) -> "Quantizer":
        """Pass inputs through unchanged (state is kept)."""
        self.enabled = False
        return self

    def freeze(self) -> "Quantizer":
        """Stop learning quantizer parameters (scales, ranges, bit-widths)."""
        self.frozen = True
        for p in self.parameters(recurse=False):
            p.requires_grad_(False)
        return self

    def unfreeze(self) -> "Quantizer":
        self.frozen = False
        for p in self.parameters(recurse=False):
            p.requires_grad_(True)
        return self

    def project_(self) -> None:
        """Restore invariants after an optimizer step (positive scales, bit bounds)."""

    def get_extra_state(self) -> Dict[str, Any]:
        return {"enabled": self.enabled, "frozen": self.frozen, "bits": self._bits,
                "signed": self._signed}

    def set_extra_state(self, state: Dict[str, Any]) -> None:
        self.enabled, self._bits, self._signed = state["enabled"], state["bits"], state["signed"]
        (self.freeze if state["frozen"] else self.unfreeze)()

    # ----- calibration ---------------------------------------------------------------------
    def observer(self, kind: Optional[str] = None) -> Observer:
        cfg = self.config
        return Observer(kind or cfg.observer, self.granularity, percentile=cfg.percentile,
                        gaussian_k=cfg.gaussian_k, mse_error=self._mse_error, name=self.label)

    def calibrate_from(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        """Decide signedness (activations) and initialise from an observed range."""
        if self._signed is None:
            self._signed = bool((lo < 0).any())
        lo, hi = torch.minimum(lo, torch.zeros_like(lo)), torch.maximum(hi, torch.zeros_like(hi))
        with torch.no_grad():
            self.init_from_range(lo.float(), hi.float())
        self.initialized.fill_(True)

    def init_from_tensor(self, x: torch.Tensor, kind: Optional[str] = None) -> None:
        """Calibrate from one tensor (a weight, or the first activation batch)."""
        obs = self.observer(kind)
        obs.update(self.granularity.view(x.detach()))
        self.calibrate_from(*obs.compute())

    def init_from_range(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        """Set scales from a range containing 0 (compact shapes)."""

    def _mse_error(self, samples: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        """Per-slice MSE of quantizing (P, n) ``samples`` with range (lo, hi) at the current bits."""
        qmin, qmax = qrange(self.bits, self._signed if self._signed is not None else bool((lo < 0).any()))
        scale, zp = affine_from_range(lo, hi, qmin, qmax, self.config.symmetric)
        xq = fast_fake_quantize(samples, scale[:, None], zp[:, None], qmin, qmax)
        return (xq - samples).pow(2).mean(dim=1)

    # ----- forward and integer views --------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        if not bool(self.initialized):
            self._lazy_init(x)
        xv = self.granularity.view(x)
        return self.granularity.restore(self._fake(xv), x.shape)

    def _lazy_init(self, x: torch.Tensor) -> None:
        if self.role == "act" and not self.training:
            raise ConfigError(
                f"{self.label} is not calibrated: run lowbit.calibrate(model, loader) before "
                "evaluating, or train for a step (training initialises from the first batch)")
        self.init_from_tensor(x)

    def _fake(self, xv: torch.Tensor) -> torch.Tensor:
        """Fake-quantize the granularity view."""
        raise ConfigError(f"{type(self).__name__} does not define a forward")

    def _codes(self, xv: torch.Tensor) -> torch.Tensor:
        """Integer codes (as float tensor) of the granularity view."""
        raise ConfigError(f"{type(self).__name__} does not define integer codes")

    @torch.no_grad()
    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Integer codes of ``x`` (int32, shape of ``x``)."""
        self._check_ready()
        xv = self.granularity.view(x)
        return self.granularity.restore(self._codes(xv), x.shape).to(torch.int32)

    @torch.no_grad()
    def dequantize(self, codes: torch.Tensor, x_shape: Optional[Sequence[int]] = None) -> torch.Tensor:
        """Floats from integer codes; equals ``forward(x)`` for ``codes = quantize(x)``."""
        return dequantize_codes(codes, self.qparams())

    def has_zero_point(self) -> bool:
        """Whether a zero point is stored per slice (asymmetric affine quantizers)."""
        return False

    def storage(self, x: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, bool]:
        """(bits per slice, whether zero points are stored): what packing a tensor costs.

        Works before calibration (activations then report their configured bits).
        """
        return self.channel_bits(x), self.has_zero_point()

    def qparams(self, x: Optional[torch.Tensor] = None) -> QParams:
        """Quantization parameters (``x``: the weight, for data-dependent bit-widths)."""
        raise ConfigError(f"{type(self).__name__} does not define qparams")

    def scale_slices(self, x: torch.Tensor) -> Optional[ScaleSlices]:
        """``x`` split into slices with the learned scale of each (None: no learned scale).

        Quantizers with a scale trained by backpropagation (LSQ, nested) return one, so that loss
        terms on scales (:mod:`lowbit.methods.penalties`) work with any of them.
        """
        return None

    def _slices(self, x: torch.Tensor, scale: torch.Tensor,
                zero_point: torch.Tensor) -> ScaleSlices:
        """ScaleSlices of ``x`` for compact ``scale``/``zero_point`` (helper for subclasses)."""
        g = self.granularity
        xv = g.view(x)
        codes = g.flat_slices(self._codes(xv.detach()).to(x.dtype))
        col = lambda t: t.reshape(-1, 1)  # noqa: E731  (S,) or () -> (S, 1)
        return ScaleSlices(g.flat_slices(xv), codes, col(scale), col(zero_point.detach()))

    def _check_ready(self) -> None:
        if not bool(self.initialized):
            raise ConfigError(f"{self.label} was never calibrated or initialised; "
                              "run lowbit.calibrate(model, loader) first")

    def extra_repr(self) -> str:
        state = "" if self.enabled else ", disabled"
        state += ", frozen" if self.frozen else ""
        return (f"{self.config.kind}, bits={self._bits}, {self.granularity.mode}"
                f"{', signed' if self._signed else ', unsigned' if self._signed is False else ''}{state}")


def affine_from_range(lo: torch.Tensor, hi: torch.Tensor, qmin: Union[int, torch.Tensor],
                      qmax: Union[int, torch.Tensor], symmetric: bool):
    """Scale and zero point covering [lo, hi] (which contains 0) on the grid [qmin, qmax].

    Symmetric signed: ``scale = max(|lo|, |hi|) / ((qmax - qmin) / 2)``, zero point 0.
    Symmetric unsigned: ``scale = hi / qmax``. Asymmetric: ``scale = (hi - lo) / (qmax - qmin)``
    and an integer zero point that maps ``lo`` to ``qmin``. Scales never fall below 1e-8, so
    constant or all-zero tensors quantize without division by zero.
    """
    if symmetric:
        if isinstance(qmin, torch.Tensor) or qmin < 0:
            scale = torch.maximum(lo.abs(), hi.abs()) / ((qmax - qmin) / 2)
        else:
            scale = hi / qmax
        scale = scale.clamp_min(TINY_SCALE)
        return scale, torch.zeros_like(scale)
    scale = ((hi - lo) / (qmax - qmin)).clamp_min(TINY_SCALE)
    zero_point = torch.clamp(qmin - torch.round(lo / scale), qmin, qmax)
    return scale, zero_point


def dequantize_codes(codes: torch.Tensor, qp: QParams) -> torch.Tensor:
    """Floats from integer codes and :class:`QParams` (affine or log2)."""
    gran = qp.granularity
    shape = codes.shape
    cv = gran.view(codes.to(qp.scale.dtype))
    if qp.kind == "log2":
        min_exp = gran.expand(qp.extra["min_exp"], cv)
        mag = torch.exp2(min_exp + cv.abs() - 1)
        return gran.restore(torch.sign(cv) * mag, shape)
    scale, zp = gran.expand(qp.scale, cv), gran.expand(qp.zero_point, cv)
    return gran.restore((cv - zp) * scale, shape)
