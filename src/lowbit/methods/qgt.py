"""Quantization Guided Training (the QGT paper): ``L = task + sum_i lambda_i * ||DQ(w_i) - w_i||^2``.

Weights stay float while training; the regularizer pulls each target tensor towards the grid
of its quantizer ``Q``, whose scale follows the quantizer's own rule from the current weights
(its observer: min-max, MSE, ...), so nothing extra is learned. ``DQ(w)`` is treated as a
constant target, so the gradient is ``2 * lambda * (w - DQ(w))``. ``lambda = 0`` is PTQ (the
model is quantized only at the end); a large lambda approaches hard QAT.

Use it in your own loop:

>>> import torch
>>> from torch import nn
>>> from lowbit.methods.qgt import QGT, QGTConfig
>>> model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
>>> qgt = QGT(QGTConfig(lam=1e-2, quantizer={"kind": "uniform", "bits": 2, "symmetric": False,
...                                          "granularity": "channel"}))
>>> reg = qgt(model)                       # a plain tensor: loss = task_loss + reg
>>> float(reg) > 0, reg.requires_grad
(True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from ..calibrate import calibrate_weights
from ..errors import ConfigError
from ..fold import fold_batchnorm
from ..nn.control import set_quant_state
from ..nn.modules import QuantMixin
from ..quantizers import QuantizerConfig, make_quantizer
from ..quantizers.base import Quantizer
from .base import METHODS, Method, TrainContext
from .qgt_report import qgt_report
from .select import per_name, pick

# quantizers whose dequantized output approximates w with a scale that follows from w itself
TARGET_KINDS = ("uniform", "lsq", "pow2", "log2", "learned_range")


@dataclass(frozen=True)
class QGTConfig:
    """lam: global lambda; layer_lams / layer_bits: {parameter-name pattern: value}, later wins.

    quantizer: QuantizerConfig fields of Q (None: each layer's own weight-quantizer config
    from the recipe's quant spec, per-layer overrides included). targets / exclude: parameter
    name patterns (globs, ``re:...``, ``@first``/``@last``: :mod:`lowbit.methods.select`; default: the weights of Conv/Linear layers; biases and batch norm excluded).
    fold_bn: fold batch norm before quantizing at the end (the paper's setting).
    """

    lam: float = 1e-4
    quantizer: Optional[Dict[str, Any]] = None
    targets: Tuple[str, ...] = ()
    exclude: Tuple[str, ...] = ()
    layer_lams: Dict[str, float] = field(default_factory=dict)
    layer_bits: Dict[str, int] = field(default_factory=dict)
    fold_bn: bool = True
    sensitivity_images: int = 2000
    histogram_layers: int = 4

    def __post_init__(self):
        for name, value in [("lam", self.lam)] + [(f"layer_lams[{k!r}]", v) for k, v in self.layer_lams.items()]:
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"qgt {name} must be a finite number >= 0, got {value!r}")
        if self.quantizer is not None:
            _check_target_kind(QuantizerConfig.from_dict(dict(self.quantizer)))


def _check_target_kind(cfg: QuantizerConfig) -> None:
    if cfg.kind not in TARGET_KINDS:
        raise ConfigError(
            f"a {cfg.kind!r} quantizer cannot be a QGT target: QGT needs a quantizer whose "
            f"dequantized weights approximate the weights with a scale that follows from them; "
            f"use one of {', '.join(TARGET_KINDS)}")


@dataclass
class Target:
    name: str
    param: nn.Parameter
    quantizer: Quantizer
    lam: float


def _default_params(model: nn.Module) -> List[Tuple[str, nn.Parameter, Optional[QuantizerConfig]]]:
    """Conv/Linear weights with the layer's own weight-quantizer config (if prepared)."""
    out = []
    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            own = mod.weight_quantizer.config if isinstance(mod, QuantMixin) and mod.weight_quantizer else None
            if isinstance(mod, QuantMixin) and own is None:
                continue  # the spec leaves this layer's weights in float
            out.append((f"{name}.weight" if name else "weight", mod.weight, own))
    return out


class QGT(Method):
    """The QGT regularizer as a training method and as a callable: ``reg = qgt(model)``."""

    name = "qgt"
    Config = QGTConfig

    def __init__(self, config: QGTConfig):
        super().__init__(config)
        self.targets: List[Target] = []
        self._model_id: Optional[int] = None

    # ----- targets ---------------------------------------------------------------------------
    def attach(self, model: nn.Module) -> List[Target]:
        """Resolve the target parameters of ``model`` and build their quantizers."""
        cfg = self.config
        if cfg.targets:
            named = dict(model.named_parameters())
            chosen = [(n, named[n], None) for n in pick(list(named), cfg.targets, "qgt targets", "parameter")]
        else:
            chosen = _default_params(model)
        dropped = pick([n for n, _, _ in chosen], cfg.exclude, "qgt exclude", "parameter")
        chosen = [c for c in chosen if c[0] not in dropped]
        names = [n for n, _, _ in chosen]
        lams = per_name(names, cfg.layer_lams, "qgt layer_lams", "parameter")
        bits = per_name(names, cfg.layer_bits, "qgt layer_bits", "parameter")
        self.targets = [self._target(n, p, own, lams.get(n, cfg.lam), bits.get(n)) for n, p, own in chosen]
        if not self.targets:
            raise ConfigError("qgt has no target parameters: every layer is excluded or left in float")
        self._model_id = id(model)
        return self.targets

    def _target(self, name: str, param: nn.Parameter, own: Optional[QuantizerConfig], lam: float,
                bits: Optional[int]) -> Target:
        cfg = self.config
        qcfg = QuantizerConfig.from_dict(dict(cfg.quantizer)) if cfg.quantizer is not None else own
        if qcfg is None:
            raise ConfigError(f"qgt: parameter {name!r} has no quantizer; set methods.qgt.quantizer "
                              "(e.g. {kind: uniform, bits: 4, symmetric: false, granularity: channel})")
        _check_target_kind(qcfg)
        if bits is not None:
            qcfg = qcfg.replace(bits=int(bits))
        if qcfg.granularity == "channel" and param.dim() < 2:
            qcfg = qcfg.replace(granularity="tensor")
        q = make_quantizer(qcfg, "weight", param.shape, name=name).to(param.device)
        return Target(name, param, q, float(lam))

    # ----- the regularizer -------------------------------------------------------------------
    @torch.no_grad()
    def dequantized(self, t: Target) -> torch.Tensor:
        """DQ(w) with Q's scale set by its rule from the current weights (no gradient)."""
        w = t.param.detach()
        t.quantizer.init_from_tensor(w)
        return t.quantizer(w)

    def __call__(self, model: Optional[nn.Module] = None) -> torch.Tensor:
        """sum_i lambda_i * ||DQ(w_i) - w_i||^2 over the targets (a scalar tensor)."""
        if model is not None and id(model) != self._model_id:
            self.attach(model)
        total = None
        for t in self.targets:
            if t.lam == 0:
                continue
            term = t.lam * (self.dequantized(t) - t.param).pow(2).sum()
            total = term if total is None else total + term
        if total is None:
            ref = self.targets[0].param if self.targets else torch.zeros(())
            return ref.new_zeros(())
        return total

    def errors(self) -> Dict[str, float]:
        """Relative quantization error ||DQ(w) - w|| / ||w|| of every target."""
        out = {}
        for t in self.targets:
            w = t.param.detach()
            out[t.name] = float((self.dequantized(t) - w).norm() / w.norm().clamp_min(1e-12))
        return out

    # ----- trainer hooks ---------------------------------------------------------------------
    def setup(self, ctx: TrainContext) -> None:
        self.attach(ctx.model)
        self._initial = {t.name: t.param.detach().clone().cpu() for t in self.targets}
        self._start_errors = self.errors()

    def on_phase_start(self, ctx: TrainContext, phase: Any, args: Dict[str, Any]) -> None:
        if "lam" in args:
            lam = args["lam"]
            if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
                raise ConfigError(f"qgt lam must be a finite number >= 0, got {lam!r}")
            for t in self.targets:
                t.lam = float(lam)

    def loss(self, ctx: TrainContext, x, y, logits) -> Optional[torch.Tensor]:
        reg = self(None)
        ctx.log["qgt"] = float(reg.detach())
        return reg

    def finalize(self, ctx: TrainContext) -> None:
        """Fold batch norm (if configured), set weight scales from the final weights, quantize."""
        self._end_errors = self.errors()
        self._trained = {t.name: t.param.detach().clone().cpu() for t in self.targets}
        if self.config.fold_bn:
            fold_batchnorm(ctx.model, ctx.example_input.to(ctx.device), inplace=True)
        else:
            calibrate_weights(ctx.model)
        set_quant_state(ctx.model, weights=True)

    def report(self, ctx: TrainContext) -> Dict[str, Any]:
        return qgt_report(self, ctx)


METHODS.register("qgt")(QGT)
