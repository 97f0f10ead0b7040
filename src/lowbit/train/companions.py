"""Networks that methods train next to the model (:class:`lowbit.methods.Companion`).

The trainer keeps one :class:`Companions` per run. Each phase builds every trainable
companion an optimizer of its own (the recipe's optimizer settings with the companion's
changes), and each step sets its learning rate from the phase schedule, zeroes, averages
across processes, clips and steps it next to the model's optimizer. Weights and optimizer
state go into the checkpoint; after every epoch each companion is evaluated on the test set.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Dict, List

import torch

from ..errors import CheckpointError, ConfigError
from ..evaluate import evaluate
from ..methods import Companion
from .distributed import DistInfo, average_gradients, broadcast_state
from .optim import build_optimizer, set_lr


class Companions:
    """The companions of a run's methods, their optimizers and learning-rate ratios."""

    def __init__(self, items: List[Companion], dist: DistInfo):
        names = [c.name for c in items]
        if len(set(names)) != len(names):
            raise ConfigError(f"two methods train a companion network of the same name: {names}")
        self.items, self.dist = items, dist
        self.optimizers: Dict[str, Any] = {}
        self.configs: Dict[str, Any] = {}
        self.lr_ratio: Dict[str, float] = {}
        self._pending: Dict[str, Any] = {}

    def build_optimizers(self, optim_cfg, base_lr: float) -> None:
        """A fresh optimizer per trainable companion for a phase whose peak lr is ``base_lr``
        (a companion's own ``lr`` replaces it); restores a resumed run's pending state."""
        self.optimizers = {}
        for c in self.items:
            if not c.trainable:
                continue
            cfg = replace(optim_cfg, **{"quant_lr": None, **c.optim})  # a companion has no quantizers
            lr = cfg.lr if "lr" in c.optim else base_lr
            self.configs[c.name], self.lr_ratio[c.name] = cfg, lr / base_lr
            self.optimizers[c.name] = build_optimizer(c.module, cfg, lr)
            pending = self._pending.pop(c.name, None)
            if pending is not None:
                self.optimizers[c.name].load_state_dict(pending)

    def set_lr(self, lr: float) -> None:
        for name, opt in self.optimizers.items():
            set_lr(opt, lr * self.lr_ratio[name])

    def zero_grad(self) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)

    def step(self) -> None:
        """After backward: average gradients across processes, clip, step."""
        for c in self.items:
            opt = self.optimizers.get(c.name)
            if opt is None:
                continue
            if self.dist.enabled:
                average_gradients(c.module)
            if self.configs[c.name].grad_clip:
                torch.nn.utils.clip_grad_norm_(c.module.parameters(), self.configs[c.name].grad_clip)
            opt.step()

    def metric_names(self) -> List[str]:
        """The keys :meth:`evaluate` returns."""
        return [f"{c.name}_top1" for c in self.items]

    def evaluate(self, loader, device) -> Dict[str, float]:
        """``{<name>_top1: percent}`` on ``loader`` (every process holds rank 0's buffers)."""
        out = {}
        for c in self.items:
            if self.dist.enabled:
                broadcast_state(c.module)
            out[f"{c.name}_top1"] = evaluate(c.module, loader, device)["top1"]
        return out

    def state_dict(self) -> Dict[str, Any]:
        return {c.name: {"model": c.module.state_dict(),
                         "optimizer": (self.optimizers[c.name].state_dict()
                                       if c.name in self.optimizers else None)}
                for c in self.items}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Weights now; optimizer state when the phase builds the optimizers."""
        for c in self.items:
            if c.name not in state:
                raise CheckpointError(f"the checkpoint has no state for companion {c.name!r}")
            c.module.load_state_dict(state[c.name]["model"])
            if state[c.name]["optimizer"] is not None:
                self._pending[c.name] = state[c.name]["optimizer"]
