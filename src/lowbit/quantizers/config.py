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
from typing import Any, ClassVar, Dict, Optional

from ..errors import ConfigError, unknown_name
from ..ops.ranges import check_bits
from ..ops.rounding import check_estimator, check_rounding
from ..schema import drop_retired
from .kinds import QUANTIZERS

GRANULARITIES = ("tensor", "channel", "group")
# Chinbat names the granularities scalar / row / column / channel (torch layout (out, in, ...))
GRANULARITY_ALIASES = {"scalar": ("tensor", 0), "per_tensor": ("tensor", 0),
                       "row": ("channel", 0), "per_channel": ("channel", 0),
                       "column": ("channel", 1), "per_group": ("group", 0)}
OBSERVERS = ("minmax", "percentile", "gaussian", "mse")


@dataclass(frozen=True)
class QuantizerConfig:
    """What a quantizer does. The common fields are checked here; ``kind``'s quantizer class
    checks the fields it reads (``Quantizer.check_config``); a field only other kinds read
    (``Quantizer.reads``: bits_min/bits_max/learn_bits/fill_levels for learned_range,
    threshold/eps/scale_grad/codes for nested) must keep its default, and ``replace(kind=...)``
    resets the old kind's own fields.

    kind: uniform (calibrated, fixed), lsq (learned step), learned_range (learned step and
      range, implicit bits; Schaefer et al.), nested (floor with learned scale; Chinbat), dorefa
      (Zhuang et al.), pow2 (learned power-of-two step), log2 (non-uniform powers of two).
    bits: bit-width (initial bit-width for learned_range; clip width for nested, None = no clip).
    signed: None = weights signed, activations decided at calibration from the data.
    symmetric: zero-point 0 (True) or a zero-point covering [min, max] (False).
    granularity: tensor | channel (along ``axis``) | group (``group_size`` along the fan-in);
      Chinbat's names scalar, row (axis 0), column (axis 1) are accepted.
    estimator/grad_delta/grad_alpha: gradient of the rounding (ste, pbgs, ewgs, acos, tanh,
      invtanh; Schaefer et al., section 3.2).
    observer: calibration rule (minmax, percentile, gaussian, mse) with ``percentile`` and
      ``gaussian_k``.
    bits_min/bits_max/learn_bits: bounds and switch for learned bit-widths (learned_range).
    fill_levels: learned_range uses every level its integer bit-width pays for (n = 2 -> 3
      at 2 unsigned bits), so the learned range acts only through the bit-width.
    threshold/eps: the ratio threshold lambda and epsilon of the nested quantizer.
    scale_grad: the nested scale's gradient: ``ratio`` (the thesis's ratio-threshold rule) or
      ``ste`` (the plain straight-through gradient ``floor(P/s) - P/s`` of the same floor
      quantizer, which leaves scales to the task loss and loss terms: the thesis's
      "equivalent network without the nested quantization layer logic").
    codes: how the nested quantizer forms codes: ``floor`` (``floor(P/s)``, the thesis) or
      ``round`` (to nearest; the same grid, half the worst-case error).
    """

    # removed options: files that still name them load if they ask for what lowbit now does
    RETIRED: ClassVar[Dict[str, Any]] = {"fill_anchor": "step"}

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
    scale_grad: str = "ratio"
    codes: str = "floor"

    def __post_init__(self):
        if self.kind not in QUANTIZERS:
            raise unknown_name("quantizer kind", self.kind, QUANTIZERS.names())
        self._normalize_granularity()
        if not (self.kind == "nested" and self.bits is None):
            check_bits(self.bits)
        check_rounding(self.rounding, self.estimator)
        check_estimator(self.estimator, self.grad_delta, self.grad_alpha)
        self._check_observer()
        self._check_unread()
        QUANTIZERS.get(self.kind).check_config(self)  # each kind checks the fields it reads

    def _check_unread(self) -> None:
        """A field only other kinds read (``Quantizer.reads``) must keep its default: a
        ``threshold`` on an lsq quantizer would otherwise silently do nothing."""
        own = set(QUANTIZERS.get(self.kind).reads)
        for f in dataclasses.fields(self):
            users = [k for k, cls in QUANTIZERS.items() if f.name in cls.reads]
            if users and f.name not in own and getattr(self, f.name) != f.default:
                raise ConfigError(f"{f.name} applies to quantizer kind {' / '.join(users)} only; kind "
                                  f"{self.kind!r} does not read it (remove it, or set kind: {users[0]})")

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

    def need_symmetric(self) -> None:
        """For kinds symmetric by construction: a ConfigError unless ``symmetric`` is set."""
        if not self.symmetric:
            raise ConfigError(f"{self.kind} is symmetric by construction; set symmetric: true")

    def need_no_groups(self) -> None:
        """For kinds without per-group scales: a ConfigError for ``granularity: group``."""
        if self.granularity == "group":
            raise ConfigError(f"{self.kind} supports tensor or channel granularity, not group")

    def replace(self, **changes: Any) -> "QuantizerConfig":
        """A copy with ``changes`` applied (validated again). A new ``kind`` starts from the
        defaults of the fields only the old kind read (an override ``{kind: uniform}`` of a
        learned_range base does not inherit its ``bits_min``)."""
        kind = changes.get("kind", self.kind)
        if kind != self.kind and kind in QUANTIZERS:
            new = set(QUANTIZERS.get(kind).reads)
            for f in dataclasses.fields(self):
                if f.name in QUANTIZERS.get(self.kind).reads and f.name not in new:
                    changes.setdefault(f.name, f.default)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "QuantizerConfig":
        """Build from a mapping; unknown keys are an error naming the valid ones."""
        data = drop_retired(cls, data)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise unknown_name("quantizer field", unknown[0], names)
        return cls(**data)
