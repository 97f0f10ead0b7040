"""Loss terms that pursue quantization through learned scales (Chinbat 2025, "Learned
Quantization Schemes for Data-centric ML Pipelines", section 3.2).

Three registered methods, each ``coef * term`` added to the task loss:

=============  ================================================================================
inverse_scale  3.2.1, penalty on the inverse scale: ``mean ref/s``, ``ref = max|P|`` of the
               slice (detached) or 1 (``normalize: none``); pushes every scale up (coarser)
bin_count      3.2.2, constraint on the bins a slice uses: ``mean relu(log2 B - log2 max_bins)^2``
               (the excess in bits) with the differentiable span surrogate ``B = (hi - lo)/s + 1``
               of the bin count
deviation      3.2.3, distance between quantized and original values: ``||Q(P) - P||^2``,
               relative to ``||P||^2`` by default; pulls P onto its grid and s to its best fit
=============  ================================================================================

Each term is a mean over every quantized weight and bias with a learned scale (one value per
granularity slice, weighted by the elements it covers), so a coefficient means the same on an
MLP and on a ResNet. The tensors are found through the quantizer capability
:meth:`lowbit.quantizers.Quantizer.scale_slices`, so any learned-scale quantizer works: the
nested quantizer (either scale gradient) and LSQ (and its power-of-two variant). Which
combinations pay off is in docs/methods.md: with a fixed bit-width (LSQ) the packed size does
not follow the scale, so there the terms shape the grid but cannot shrink the model.

In your own loop (a plain tensor):

>>> import torch
>>> from torch import nn
>>> from lowbit import prepare, QuantSpec, QuantizerConfig
>>> model = prepare(nn.Sequential(nn.Linear(8, 4)), QuantSpec(
...     weight=QuantizerConfig(kind="nested", bits=None, granularity="row"), act=None))
>>> pen = InverseScale(InverseScaleConfig(coef=1e-3))
>>> reg = pen(model)                       # loss = task_loss + reg
>>> reg.requires_grad, pen.names()
(True, ['0.weight'])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from ..errors import ConfigError
from ..nn.modules import QuantMixin
from ..nn.resolve import name_list
from ..ops.scale_penalties import bins_used, deviation, inverse_scale, soft_bins
from ..quantizers.base import Quantizer, ScaleSlices
from .base import METHODS, Method, TrainContext
from .select import pick

NORMALIZE = ("range", "none")


def _check_coef(name: str, coef: Any) -> None:
    if isinstance(coef, bool) or not isinstance(coef, (int, float)) or not math.isfinite(coef) or coef < 0:
        raise ConfigError(f"{name} coef must be a finite number >= 0, got {coef!r}")


@dataclass(frozen=True)
class PenaltyConfig:
    """coef: the term's weight (>= 0). targets / exclude: patterns on tensor names (``fc1.weight``,
    ``*.bias``, ``re:...``, ``@first``/``@last``; :mod:`lowbit.methods.select`); by default every
    quantized weight and bias whose quantizer learns a scale."""

    coef: float = 1e-3
    targets: Tuple[str, ...] = ()
    exclude: Tuple[str, ...] = ()

    method = "penalty"

    def __post_init__(self):
        _check_coef(self.method, self.coef)


@dataclass(frozen=True)
class InverseScaleConfig(PenaltyConfig):
    """normalize: ``range`` (``max|P| / s``, grid steps to the largest value) or ``none`` (1/s)."""

    normalize: str = "range"

    method = "inverse_scale"

    def __post_init__(self):
        super().__post_init__()
        if self.normalize not in NORMALIZE:
            raise ConfigError(f"inverse_scale normalize must be one of {', '.join(NORMALIZE)}, "
                              f"got {self.normalize!r}")


@dataclass(frozen=True)
class BinCountConfig(PenaltyConfig):
    """max_bins: the most bins a slice may use (an integer >= 2; 2^b for b signed bits)."""

    max_bins: int = 16

    method = "bin_count"

    def __post_init__(self):
        super().__post_init__()
        b = self.max_bins
        if isinstance(b, bool) or not isinstance(b, int) or b < 2:
            raise ConfigError(f"bin_count max_bins must be an integer >= 2 (2^bits for a bit-width), "
                              f"got {b!r}")


@dataclass(frozen=True)
class DeviationConfig(PenaltyConfig):
    """relative: divide each tensor's ||Q(P) - P||^2 by ||P||^2 (else by its element count)."""

    relative: bool = True

    method = "deviation"


@dataclass
class ScaledTensor:
    """A quantized weight or bias with a learned scale."""

    name: str
    param: nn.Parameter
    quantizer: Quantizer

    def slices(self) -> ScaleSlices:
        return self.quantizer.scale_slices(self.param)


def scaled_tensors(model: nn.Module) -> List[Tuple[str, nn.Parameter, Quantizer]]:
    """(tensor name, parameter, quantizer) of every quantized weight and bias of ``model``."""
    out = []
    for name, mod in model.named_modules():
        if not isinstance(mod, QuantMixin):
            continue
        for attr in ("weight", "bias"):
            q, p = getattr(mod, f"{attr}_quantizer", None), getattr(mod, attr, None)
            if q is not None and p is not None and q.enabled:
                out.append((f"{name}.{attr}" if name else attr, p, q))
    return out


class ScalePenalty(Method):
    """Shared machinery: resolve the tensors, weight per-tensor values, coefficient per phase."""

    Config = PenaltyConfig

    def __init__(self, config: PenaltyConfig):
        super().__init__(config)
        self.coef = float(config.coef)
        self.tensors: List[ScaledTensor] = []
        self._model_id: Optional[int] = None

    def names(self) -> List[str]:
        return [t.name for t in self.tensors]

    def attach(self, model: nn.Module) -> List[ScaledTensor]:
        """Find the quantized tensors with a learned scale (honouring targets / exclude)."""
        cfg, found = self.config, scaled_tensors(model)
        learned = [(n, p, q) for n, p, q in found if q.scale_slices(p) is not None]
        if not learned:
            kinds = sorted({q.config.kind for _, _, q in found}) or ["none (nothing is quantized)"]
            raise ConfigError(f"{self.name}: no quantized weight or bias has a learned scale; quantizers "
                              f"here: {', '.join(kinds)}; use kind nested or lsq")
        names = [n for n, _, _ in learned]
        noun = "quantized tensor with a learned scale"
        wanted = pick(names, cfg.targets, f"{self.name} targets", noun) if cfg.targets else names
        dropped = pick(wanted, cfg.exclude, f"{self.name} exclude", noun)
        chosen = [(n, p, q) for n, p, q in learned if n in wanted and n not in dropped]
        if not chosen:
            raise ConfigError(f"{self.name}: targets/exclude leave no tensor; tensors: {name_list(names, 30)}")
        self.tensors = [ScaledTensor(n, p, q) for n, p, q in chosen]
        self._model_id = id(model)
        return self.tensors

    def tensor_value(self, sl: ScaleSlices) -> torch.Tensor:
        """The term of one tensor as a per-element mean (a scalar)."""
        raise NotImplementedError

    def value(self) -> torch.Tensor:
        """The term without its coefficient: sum_t n_t * value_t / sum_t n_t."""
        total, count = None, 0
        for t in self.tensors:
            sl = t.slices()
            v = self.tensor_value(sl) * sl.elements
            total, count = (v if total is None else total + v), count + sl.elements
        return total / count

    def __call__(self, model: Optional[nn.Module] = None) -> torch.Tensor:
        """``coef * value()`` as a scalar tensor (``model``: attach to it first)."""
        if model is not None and id(model) != self._model_id:
            self.attach(model)
        if not self.tensors:
            raise ConfigError(f"{self.name}: call it with the model first (pen(model))")
        return self.coef * self.value()

    # ----- trainer hooks -----------------------------------------------------------------------
    def setup(self, ctx: TrainContext) -> None:
        self.attach(ctx.model)

    def on_phase_start(self, ctx: TrainContext, phase: Any, args: Dict[str, Any]) -> None:
        fields = self._phase_fields()
        unknown = set(args) - set(fields)
        if unknown:
            raise ConfigError(f"{self.name} phase arguments: unknown {sorted(unknown)}; valid: "
                              f"{', '.join(fields)}")
        self.config = replace(self.config, **args)  # validated again
        self.coef = float(self.config.coef)

    def _phase_fields(self) -> Tuple[str, ...]:
        return ("coef",)

    def loss(self, ctx: TrainContext, x, y, logits) -> Optional[torch.Tensor]:
        if self.coef == 0:
            return None
        term = self(None)
        ctx.log[self.name] = float(term.detach())
        return term

    def report(self, ctx: TrainContext) -> Dict[str, Any]:
        with torch.no_grad():
            per = {}
            for t in self.tensors:
                sl = t.slices()
                bins = bins_used(sl.codes)
                per[t.name] = {"slices": int(bins.numel()), "bins_mean": float(bins.float().mean()),
                               "bins_max": int(bins.max()), "value": float(self.tensor_value(sl))}
        return {"coef": self.coef, "config": dict(vars(self.config)),
                "tensors": per}


class InverseScale(ScalePenalty):
    """Penalty on small scales: every scale is pushed up, more so where the grid is finest."""

    name = "inverse_scale"
    Config = InverseScaleConfig

    def tensor_value(self, sl: ScaleSlices) -> torch.Tensor:
        ref = sl.values.detach().abs().amax(dim=1, keepdim=True) if self.config.normalize == "range" else None
        return inverse_scale(sl.scale, ref).mean()


class BinCount(ScalePenalty):
    """Constraint on the bins each slice uses: the squared excess of the span surrogate over the
    target, in bits (``log2``). In bins, the excess of an 8-bit start over a 3-bit target is
    ~31x and its gradient grows with ``1/s^2``: such steps threw weights and scales far past
    the target on MNIST; in bits the excess is 5 and the gradient ``~1/s``."""

    name = "bin_count"
    Config = BinCountConfig

    def tensor_value(self, sl: ScaleSlices) -> torch.Tensor:
        bits_over = torch.log2(soft_bins(sl.values, sl.scale)) - math.log2(self.config.max_bins)
        return torch.relu(bits_over).pow(2).mean()

    def _phase_fields(self) -> Tuple[str, ...]:
        return ("coef", "max_bins")


class Deviation(ScalePenalty):
    """Distance between quantized and original values (relative squared error by default)."""

    name = "deviation"
    Config = DeviationConfig

    def tensor_value(self, sl: ScaleSlices) -> torch.Tensor:
        dev = deviation(sl.values, sl.codes, sl.scale, sl.zero_point).sum()
        if self.config.relative:
            return dev / sl.values.detach().pow(2).sum().clamp_min(1e-12)
        return dev / sl.elements


for _cls in (InverseScale, BinCount, Deviation):
    METHODS.register(_cls.name)(_cls)
