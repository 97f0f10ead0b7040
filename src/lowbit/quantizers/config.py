"""QuantizerConfig: one frozen dataclass describing any quantizer, validated on creation.

>>> QuantizerConfig(kind="lsq", bits=4, granularity="channel").bits
4
>>> QuantizerConfig(bits=0)
Traceback (most recent call last):
...
lowbit.errors.ConfigError: bits must be in 1..16, got 0
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Dict, Optional

from ..errors import ConfigError
from ..errors import unknown_name
from ..ops.ranges import check_bits
from ..ops.rounding import check_estimator, check_rounding

KINDS = ("uniform", "lsq", "learned_range", "nested", "dorefa", "pow2", "log2")
GRANULARITIES = ("tensor", "channel", "group")
# Chinbat names the granularities scalar / row / column / channel (torch layout (out, in, ...))
GRANULARITY_ALIASES = {"scalar": ("tensor", 0), "per_tensor": ("tensor", 0),
                       "row": ("channel", 0), "per_channel": ("channel", 0),
                       "column": ("channel", 1), "per_group": ("group", 0)}
OBSERVERS = ("minmax", "percentile", "gaussian", "mse")


@dataclass(frozen=True)
class QuantizerConfig:
    """What a quantizer does. Fields that do not apply to ``kind`` are ignored.

    kind: uniform (calibrated, fixed), lsq (learned step), learned_range (learned step and
      range, implicit bits; Schaefer et al.), nested (floor with learned scale; Chinbat), dorefa
      (Zhuang et al.), pow2 (learned power-of-two step), log2 (non-uniform powers of two).
    bits: bit-width (initial bit-width for learned_range; clip width for nested, None = no clip).
    signed: None = weights signed, activations decided at calibration from the data.
    symmetric: zero-point 0 (True) or a zero-point covering [min, max] (False).
    granularity: tensor | channel (along ``axis``) | group (``group_size`` along the fan-in);
      the seed-003 names scalar, row (axis 0), column (axis 1) are accepted.
    estimator/grad_delta/grad_alpha: gradient of the rounding (ste, pbgs, ewgs, acos, tanh,
      invtanh; Schaefer et al., section 3.2).
    observer: calibration rule (minmax, percentile, gaussian, mse) with ``percentile`` and
      ``gaussian_k``.
    bits_min/bits_max/learn_bits: bounds and switch for learned bit-widths (learned_range).
    fill_levels: learned_range uses every level its integer bit-width pays for (n = 2 -> 3
      at 2 unsigned bits), so the learned range acts only through the bit-width.
    threshold/eps: the ratio threshold lambda and epsilon of the nested quantizer.
    """

    kind: str = "lsq"
    bits: Optional[int] = 8
    signed: Optional[bool] = None
    symmetric: bool = True
    narrow_range: bool = False
    granularity: str = "tensor"
    axis: int = 0
    group_size: Optional[int] = None
    rounding: str = "round"
    estimator: str = "ste"
    grad_delta: float = 5e-3
    grad_alpha: float = 1.0
    observer: str = "minmax"
    percentile: float = 99.99
    gaussian_k: float = 3.0
    lsq_grad_scale: bool = True
    bits_min: int = 2
    bits_max: int = 8
    learn_bits: bool = True
    fill_levels: bool = False
    threshold: float = 1e-3
    eps: float = 1e-8

    def __post_init__(self):
        if self.kind not in KINDS:
            raise unknown_name("quantizer kind", self.kind, KINDS)
        self._normalize_granularity()
        if not (self.kind == "nested" and self.bits is None):
            check_bits(self.bits)
        check_rounding(self.rounding, self.estimator)
        check_estimator(self.estimator, self.grad_delta, self.grad_alpha)
        self._check_observer()
        self._check_kind()

    def _normalize_granularity(self):
        gran = self.granularity
        if gran in GRANULARITY_ALIASES:
            mode, axis = GRANULARITY_ALIASES[gran]
            object.__setattr__(self, "granularity", mode)
            if gran in ("row", "column", "scalar"):
                object.__setattr__(self, "axis", axis)
        if self.granularity not in GRANULARITIES:
            raise ConfigError(
                f"granularity must be one of {', '.join(GRANULARITIES + tuple(GRANULARITY_ALIASES))},"
                f" got {gran!r}")
        if self.granularity == "group" and (not isinstance(self.group_size, int) or self.group_size < 1):
            raise ConfigError(f"granularity 'group' needs group_size >= 1, got {self.group_size!r}")

    def _check_observer(self):
        if self.observer not in OBSERVERS:
            raise unknown_name("observer", self.observer, OBSERVERS)
        if not (50.0 < float(self.percentile) <= 100.0):
            raise ConfigError(f"percentile must be in (50, 100], got {self.percentile}")
        if not (math.isfinite(self.gaussian_k) and self.gaussian_k > 0):
            raise ConfigError(f"gaussian_k must be > 0, got {self.gaussian_k}")

    def _check_kind(self):
        kind = self.kind
        if kind == "learned_range":
            lo, hi = check_bits(self.bits_min, "bits_min"), check_bits(self.bits_max, "bits_max")
            if lo > hi:
                raise ConfigError(f"bits_min ({lo}) must be <= bits_max ({hi})")
            if not lo <= self.bits <= hi:
                raise ConfigError(f"bits ({self.bits}) must lie in [bits_min, bits_max] = [{lo}, {hi}]")
            if lo < 2 and self.signed is not False:  # signed [-n, n] at 1 bit: n = 0, no levels
                raise ConfigError("learned_range needs bits_min >= 2 for signed values (a 1-bit "
                                  "signed range [-n, n] has n = 0 levels); set bits_min: 2, or "
                                  "signed: false for non-negative activations")
            if not self.symmetric:
                raise ConfigError("learned_range is symmetric (range [-q+, q+]); set symmetric: true")
        if kind == "nested":
            if self.bits is not None and self.bits < 2:  # signed floor codes at 1 bit: {-1, 0}
                raise ConfigError(f"nested bits (the clip width) must be >= 2 or null for no clip, "
                                  f"got {self.bits}: 1-bit signed codes {{-1, 0}} leave no positive level")
            if not (math.isfinite(self.threshold) and self.threshold > 0):
                raise ConfigError(f"nested threshold (lambda) must be > 0, got {self.threshold}")
            if not self.eps > 0:
                raise ConfigError(f"nested eps must be > 0, got {self.eps}")
        if kind in ("dorefa", "log2") and self.granularity == "group":
            raise ConfigError(f"{kind} supports tensor or channel granularity, not group")
        if kind == "log2" and self.bits < 2:
            raise ConfigError("log2 quantization needs at least 2 bits (sign + exponent)")
        if kind in ("learned_range", "nested", "log2", "dorefa") and not self.symmetric:
            raise ConfigError(f"{kind} is symmetric by construction; set symmetric: true")

    def replace(self, **changes: Any) -> "QuantizerConfig":
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "QuantizerConfig":
        """Build from a mapping; unknown keys are an error naming the valid ones."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise unknown_name("quantizer field", unknown[0], names)
        return cls(**data)
