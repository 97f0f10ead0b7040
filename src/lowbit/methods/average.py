"""Stochastic weight averaging (Izmailov et al. 2018): average the weights of several epochs.

The model trained at a constant or cyclic learning rate wanders around a wide minimum; the
mean of the weights it visits sits nearer the middle and generalises better than any one of
them. At the end of every ``every``-th epoch from ``start_epoch`` on (epochs counted over the
phases where the method is active), the weights join a running mean. When the run ends the
mean replaces the weights, and the batch-norm statistics, which are not linear in the weights,
are measured again with forward passes over training batches.

Every floating-point tensor of the state dict is averaged (quantizer step sizes included) except
the batch-norm running statistics; integer tensors are taken from the last epoch. It is meant
for float training and fixed-bit QAT: a learned bit-width is not a quantity to average.

>>> from lowbit.methods.average import SWAConfig
>>> SWAConfig(start_epoch=3).every
1
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import torch
from torch import nn

from ..errors import ConfigError
from ..evaluate import evaluate
from .base import METHODS, Method, TrainContext

BN_TYPES = (nn.modules.batchnorm._BatchNorm,)


@dataclass(frozen=True)
class SWAConfig:
    start_epoch: int = 1      # first epoch (1-based, over the active phases) whose weights count
    every: int = 1            # then every this many epochs
    bn_batches: int = 0       # training batches for the final batch-norm refresh (0: all)
    track: bool = False       # also evaluate the running mean at each averaged epoch
    track_bn_batches: int = 100  # batches for the batch-norm refresh of that per-epoch check

    def __post_init__(self):
        for name in ("start_epoch", "every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"swa {name} must be >= 1, got {getattr(self, name)}")
        for name in ("bn_batches", "track_bn_batches"):
            if getattr(self, name) < 0:
                raise ConfigError(f"swa {name} must be >= 0 (0 means every batch), got {getattr(self, name)}")


def bn_statistic_keys(model: nn.Module) -> set:
    """State-dict keys of batch-norm running statistics (they are re-measured, not averaged)."""
    keys = set()
    for name, mod in model.named_modules():
        if isinstance(mod, BN_TYPES):
            prefix = f"{name}." if name else ""
            keys.update(prefix + k for k in ("running_mean", "running_var", "num_batches_tracked"))
    return keys


def averaged_keys(model: nn.Module) -> List[str]:
    """The floating-point state-dict entries SWA averages."""
    skip = bn_statistic_keys(model)
    return [k for k, v in model.state_dict().items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and k not in skip]


@torch.no_grad()
def refresh_batch_norm(model: nn.Module, loader, batches: int = 0, device=None) -> int:
    """Re-measure batch-norm running statistics as plain means over ``batches`` training batches.

    Returns the number of batches seen. With several processes the statistics are averaged
    across them, so every rank ends with the same model.

    >>> m = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    >>> refresh_batch_norm(m, [(torch.randn(8, 3), None)] * 2)
    2
    """
    bns = [m for m in model.modules() if isinstance(m, BN_TYPES)]
    if not bns:
        return 0
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average: the plain mean over the batches seen
    was_training = model.training
    model.train()
    seen = 0
    try:
        for x, _ in loader:
            if batches and seen >= batches:
                break
            model(x.to(device) if device is not None else x)
            seen += 1
    finally:
        for bn, mom in zip(bns, momenta):
            bn.momentum = mom
        model.train(was_training)
    _average_across_ranks(bns)
    return seen


def _average_across_ranks(bns) -> None:
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    for bn in bns:
        for buf in (bn.running_mean, bn.running_var):
            if buf is not None:
                dist.all_reduce(buf)
                buf.div_(dist.get_world_size())


class SWA(Method):
    """Running mean of the end-of-epoch weights; it replaces the weights when the run ends."""

    name = "swa"
    Config = SWAConfig

    def setup(self, ctx: TrainContext) -> None:
        self.keys = averaged_keys(ctx.model)
        self.mean: Optional[Dict[str, torch.Tensor]] = None
        self.epochs_seen = 0          # active epochs so far
        self.averaged: List[int] = []  # which of them joined the mean (1-based)
        self.tracked: Dict[str, float] = {}

    def on_epoch_end(self, ctx: TrainContext) -> Dict[str, Any]:
        self.epochs_seen += 1
        k = self.epochs_seen - self.config.start_epoch
        if k < 0 or k % self.config.every:
            return {}
        state = ctx.model.state_dict()
        if self.mean is None:
            self.mean = {key: state[key].detach().clone() for key in self.keys}
        else:
            n = len(self.averaged)
            for key in self.keys:  # incremental mean: m += (w - m) / (n + 1)
                self.mean[key].add_(state[key].detach() - self.mean[key], alpha=1.0 / (n + 1))
        self.averaged.append(self.epochs_seen)
        if not self.config.track:
            return {"swa_n": len(self.averaged)}
        top1 = self._evaluate_mean(ctx)
        self.tracked[str(self.epochs_seen)] = top1
        return {"swa_n": len(self.averaged), "swa_top1": top1}

    def _evaluate_mean(self, ctx: TrainContext) -> float:
        model = copy.deepcopy(ctx.model)
        model.load_state_dict(self.mean, strict=False)
        refresh_batch_norm(model, ctx.train_loader, self.config.track_bn_batches, ctx.device)
        return evaluate(model, ctx.test_loader, ctx.device)["top1"]

    def finalize(self, ctx: TrainContext) -> None:
        if self.mean is None:
            return  # nothing averaged (start_epoch after the last epoch): the report says so
        ctx.model.load_state_dict(self.mean, strict=False)
        self.bn_batches_seen = refresh_batch_norm(ctx.model, ctx.train_loader, self.config.bn_batches,
                                                  ctx.device)

    def state_dict(self) -> Dict[str, Any]:
        return {"mean": self.mean, "epochs_seen": self.epochs_seen, "averaged": list(self.averaged),
                "tracked": dict(self.tracked)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        mean = state.get("mean")
        self.mean = None if mean is None else {k: v.clone() for k, v in mean.items()}
        self.epochs_seen = int(state.get("epochs_seen", 0))
        self.averaged = list(state.get("averaged", []))
        self.tracked = dict(state.get("tracked", {}))

    def report(self, ctx: TrainContext) -> Dict[str, Any]:
        if self.mean is None:
            return {"averaged_epochs": [], "note": f"no epoch was averaged: start_epoch "
                    f"{self.config.start_epoch} is after the last of {self.epochs_seen} epochs; "
                    "the model is the last epoch's"}
        return {"averaged_epochs": self.averaged, "bn_batches": getattr(self, "bn_batches_seen", None),
                "top1_of_mean_by_epoch": self.tracked}


METHODS.register("swa")(SWA)
