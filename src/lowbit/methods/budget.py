"""Learned mixed precision under a memory budget (Schaefer et al., eq. 2).

``L = CE + beta * max(cost_w / t_w - 1, 0)^2 + beta * max(cost_a / t_a - 1, 0)^2`` where
``cost_w = sum_l sum_c b_lc * s_lc`` (weight bits x parameters per output channel) and
``cost_a = sum_l b_l * s_l`` (activation bits x feature-map elements at every layer input; or
the maximum over layers with ``act_mode: max``), both in KB. Bits of quantizers that learn them
(``can_learn_bits``) enter with their gradient (``bit_tensor()``, integer-valued, exactly
what the accounting and the export count); fixed-bit and float tensors enter as constants, so
``cost_w`` equals ``account(...).weight_bits_total / 8192`` and ``cost_a`` ``act_bits_total``.

This is eq. 2 divided by ``t^2``: the excess is measured relative to the target, so one
``beta`` works for an MLP of 50 KB and a ResNet of 5 MB alike (with absolute KB, beta must shrink
with the square of the model size, and a value that suits one model explodes the other's step
sizes). Targets are given in KB (``weight_kb``, ``act_kb``) or as an average bit-width
(``weight_avg_bits``, ``act_avg_bits``). ``beta`` ramps linearly from 0 over the first ``ramp``
fraction of the phase; quantizer parameters (hence bit-widths) update only every ``phi`` steps.
The penalty aims ``margin`` (default 1%) under each target, because its equilibrium with the
task gradient sits a little above the point it aims at; the report checks the real target.

``total_kb`` (an extension) adds the same term for ``cost_w + cost_a``: with it alone, the run
may trade weight bits for activation bits and back, and is held only to the total memory that
a Pareto front of Schaefer et al. plots (Figure 1: weights + summed activations).

``under`` (default 0, the paper's one-sided penalty) adds ``under * beta * max(1 - cost / aim, 0)^2``
for each target: a run that would end below its budget (the task gradient lowers bits that do
not pay for themselves) is pulled back up to it, so "at equal size" comparisons spend the size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from ..accounting import input_sizes
from ..errors import ConfigError
from ..nn.layers import Add
from ..nn.modules import QuantAdd, QuantMixin
from .base import METHODS, Method, TrainContext
from .budget_report import budget_report

FLOAT_BITS = 32.0
KB_BITS = 8 * 1024


@dataclass(frozen=True)
class BudgetConfig:
    weight_kb: Optional[float] = None
    weight_avg_bits: Optional[float] = None
    act_kb: Optional[float] = None
    act_avg_bits: Optional[float] = None
    total_kb: Optional[float] = None
    act_mode: str = "sum"
    beta: float = 1.0
    ramp: float = 0.5
    phi: int = 20
    margin: float = 0.01
    under: float = 0.0

    def __post_init__(self):
        for a, b in (("weight_kb", "weight_avg_bits"), ("act_kb", "act_avg_bits")):
            if getattr(self, a) is not None and getattr(self, b) is not None:
                raise ConfigError(f"budget: give {a} or {b}, not both")
        targets = ("weight_kb", "weight_avg_bits", "act_kb", "act_avg_bits", "total_kb")
        if all(getattr(self, k) is None for k in targets):
            raise ConfigError("budget needs a target: weight_kb / weight_avg_bits, act_kb / act_avg_bits "
                              "and/or total_kb")
        for k in targets:
            v = getattr(self, k)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ConfigError(f"budget {k} must be > 0, got {v}")
        if self.act_mode not in ("sum", "max"):
            raise ConfigError(f"budget act_mode must be 'sum' or 'max', got {self.act_mode!r}")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise ConfigError(f"budget beta must be >= 0, got {self.beta}")
        if not 0 <= self.margin < 0.5:
            raise ConfigError(f"budget margin (aim this fraction under the target) must be in [0, 0.5), got {self.margin}")
        if not (math.isfinite(self.under) and self.under >= 0):
            raise ConfigError(f"budget under (weight of the under-budget term; 0: off) must be >= 0, got {self.under}")
        if not 0 <= self.ramp <= 1:
            raise ConfigError(f"budget ramp is a fraction of the phase in [0, 1], got {self.ramp}")
        if isinstance(self.phi, bool) or not isinstance(self.phi, int) or self.phi < 1:
            raise ConfigError(f"budget phi (steps between bit-width updates) must be >= 1, got {self.phi!r}")


@dataclass
class Term:
    """One tensor in the cost: a quantizer (None = float) and elements per slice."""

    layer: str
    kind: str           # weight | act
    quantizer: Any
    per_slice: int
    slices: int
    weight: Optional[torch.Tensor] = None

    def bits(self) -> torch.Tensor:
        """Bits per slice: differentiable for learned ranges, constant otherwise."""
        q = self.quantizer
        if q is None or not q.enabled:
            return torch.full((self.slices,), FLOAT_BITS)
        if q.can_learn_bits and bool(q.initialized):
            return q.bit_tensor().reshape(-1).float()
        return q.channel_bits(self.weight.detach() if self.weight is not None else None).reshape(-1).float()

    def cost_bits(self) -> torch.Tensor:
        return self.bits().sum() * self.per_slice

    def min_bits(self) -> float:
        q = self.quantizer
        if q is not None and q.can_learn_bits and q.enabled and not q.frozen and q.learn_bits:
            return float(q.min_bits()) * self.slices * self.per_slice
        return float(self.cost_bits().detach())


def cost_terms(model: nn.Module, example_input: torch.Tensor) -> Tuple[List[Term], List[Term]]:
    """Weight and activation terms of every Conv/Linear (and Add) of ``model``."""

    sizes = input_sizes(model, example_input)  # the feature-map sizes the accounting uses
    weights, acts = [], []
    for name, mod in model.named_modules():
        if name not in sizes:
            continue
        if isinstance(mod, Add):
            qs = list(mod.input_quantizers) if isinstance(mod, QuantAdd) else [None, None]
            acts += [Term(name, "act", q, n, 1) for q, n in zip(qs, sizes[name])]
            continue
        wq = mod.weight_quantizer if isinstance(mod, QuantMixin) else None
        aq = mod.input_quantizer if isinstance(mod, QuantMixin) else None
        w = mod.weight
        slices = 1 if wq is None else int(math.prod(wq.granularity.param_shape(w.shape)) or 1)
        weights.append(Term(name, "weight", wq, w.numel() // slices, slices, w))
        acts.append(Term(name, "act", aq, sizes[name][0], 1))
    return weights, acts


class Budget(Method):
    """The memory-budget penalty, its beta ramp and the every-Phi-steps bit updates."""

    name = "budget"
    Config = BudgetConfig

    def __init__(self, config: BudgetConfig):
        super().__init__(config)
        self.beta = config.beta
        self.ramp = config.ramp
        self.weights: List[Term] = []
        self.acts: List[Term] = []

    def setup(self, ctx: TrainContext) -> None:
        self.weights, self.acts = cost_terms(ctx.model, ctx.example_input.to(ctx.device))
        self.t_w, self.t_a, self.t_total = self._targets()
        self.check_feasible()

    def _targets(self) -> Tuple[Optional[float], Optional[float], Optional[float]]:
        """(weight, activation, total) targets in KB; None where the config sets none."""
        c = self.config
        n_w = sum(t.per_slice * t.slices for t in self.weights)
        n_a = [t.per_slice for t in self.acts]
        act_elems = sum(n_a) if c.act_mode == "sum" else max(n_a, default=0)
        t_w = c.weight_kb if c.weight_kb is not None else (
            None if c.weight_avg_bits is None else c.weight_avg_bits * n_w / KB_BITS)
        t_a = c.act_kb if c.act_kb is not None else (
            None if c.act_avg_bits is None else c.act_avg_bits * act_elems / KB_BITS)
        return t_w, t_a, c.total_kb

    def check_feasible(self) -> None:
        """An infeasible budget (below what bits_min allows) is an error that says the minimum."""
        if self.t_w is not None:
            low = sum(t.min_bits() for t in self.weights) / KB_BITS
            if self.t_w < low:
                raise ConfigError(f"budget: the weight target {self.t_w:.4g} KB is infeasible; with "
                                  f"bits_min and the fixed-bit layers the minimum is {low:.4g} KB")
        mins = [t.min_bits() for t in self.acts]
        low_a = (sum(mins) if self.config.act_mode == "sum" else max(mins, default=0)) / KB_BITS
        if self.t_a is not None and self.t_a < low_a:
            raise ConfigError(f"budget: the activation target {self.t_a:.4g} KB is infeasible; "
                              f"the minimum is {low_a:.4g} KB")
        low = sum(t.min_bits() for t in self.weights) / KB_BITS + low_a
        if self.t_total is not None and self.t_total < low:
            raise ConfigError(f"budget: the total target {self.t_total:.4g} KB (weights + activations) "
                              f"is infeasible; the minimum is {low:.4g} KB")

    # ----- cost and penalty --------------------------------------------------------------------
    def costs_kb(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """(weight cost, activation cost) in KB, differentiable w.r.t. learned bit-widths."""
        w = torch.stack([t.cost_bits() for t in self.weights]).sum() / KB_BITS
        a_terms = torch.stack([t.cost_bits() for t in self.acts])
        a = (a_terms.sum() if self.config.act_mode == "sum" else a_terms.max()) / KB_BITS
        return w, a

    def beta_at(self, ctx: TrainContext) -> float:
        ramp_steps = self.ramp * ctx.phase_steps
        if ramp_steps <= 0:
            return self.beta
        return self.beta * min(1.0, ctx.phase_step / ramp_steps)

    def penalty(self, beta: float) -> torch.Tensor:
        w, a = self.costs_kb()
        aim = 1.0 - self.config.margin  # the penalty's equilibrium sits a little above its aim
        total = w.new_zeros(())
        for cost, target in ((w, self.t_w), (a, self.t_a), (w + a, self.t_total)):
            if target is None:
                continue
            ratio = cost / (aim * target)
            total = total + beta * torch.relu(ratio - 1) ** 2
            if self.config.under > 0:  # two-sided: also pull a cost below its aim back up
                total = total + self.config.under * beta * torch.relu(1 - ratio) ** 2
        return total

    # ----- trainer hooks -----------------------------------------------------------------------
    def on_phase_start(self, ctx: TrainContext, phase: Any, args: Dict[str, Any]) -> None:
        unknown = set(args) - {"beta", "ramp"}
        if unknown:
            raise ConfigError(f"budget phase arguments: unknown {sorted(unknown)}; valid: beta, ramp")
        self.beta = float(args.get("beta", self.config.beta))
        self.ramp = float(args.get("ramp", self.config.ramp))

    def loss(self, ctx: TrainContext, x, y, logits) -> Optional[torch.Tensor]:
        beta = self.beta_at(ctx)
        if beta == 0:
            return None
        pen = self.penalty(beta)
        w, a = self.costs_kb()
        ctx.log.update(beta=beta, w_kb=w.item(), a_kb=a.item())
        return pen

    def before_step(self, ctx: TrainContext) -> None:
        """Hold quantizer parameters (steps and ranges, hence bits) except every phi steps."""
        update = ctx.phase_step % self.config.phi == 0
        for group in ctx.optimizer.param_groups:
            if group.get("role") == "quant":
                group["gate"] = 1.0 if update else 0.0
                group["lr"] = ctx.lr * group["lr_scale"] * group["gate"]

    def report(self, ctx: TrainContext) -> Dict[str, Any]:
        return budget_report(self, ctx)


METHODS.register("budget")(Budget)
