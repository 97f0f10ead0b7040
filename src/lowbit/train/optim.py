"""Optimizer construction with parameter groups.

Groups: ``weights`` (decayed), ``no_decay`` (biases and normalisation parameters), ``quant``
(quantizer parameters: their own learning rate and weight decay), ``method`` (extra
parameters a method trains). Each group keeps ``lr_scale`` relative to the phase learning rate
and a ``gate`` that methods may set to 0 to hold a group still for a step (Schaefer et al. update
bit-widths only every Phi steps).
"""

from __future__ import annotations

from typing import Dict, Iterable, List

import torch
from torch import nn

from ..nn.control import quantizer_parameters


def param_groups(model: nn.Module, optim_cfg, base_lr: float, extra: Iterable = ()) -> List[Dict]:
    quant_ids = {id(p) for p in quantizer_parameters(model)}
    decay, no_decay, quant = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad and id(p) not in quant_ids:
            continue
        if id(p) in quant_ids:
            quant.append(p)
        elif p.dim() <= 1:
            no_decay.append(p)
        else:
            decay.append(p)
    quant_lr = optim_cfg.quant_lr if optim_cfg.quant_lr is not None else base_lr
    groups = [
        {"params": decay, "weight_decay": optim_cfg.weight_decay, "lr_scale": 1.0, "role": "weights"},
        {"params": no_decay, "weight_decay": 0.0, "lr_scale": 1.0, "role": "no_decay"},
        {"params": quant, "weight_decay": optim_cfg.quant_weight_decay,
         "lr_scale": quant_lr / base_lr, "role": "quant"},
        {"params": list(extra), "weight_decay": optim_cfg.weight_decay, "lr_scale": 1.0, "role": "method"},
    ]
    for g in groups:
        g["gate"] = 1.0
        g["lr"] = base_lr * g["lr_scale"]
    return [g for g in groups if g["params"]]


def _make(name: str, groups: List[Dict], lr: float, optim_cfg):
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=optim_cfg.momentum,
                               nesterov=optim_cfg.nesterov and optim_cfg.momentum > 0)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    return torch.optim.RMSprop(groups, lr=lr, momentum=optim_cfg.momentum)


class Optimizers:
    """The recipe's optimizer and, with ``quant_optimizer``, a second one for quantizer
    parameters; steps, zeroes, saves and restores both, and exposes all param groups."""

    def __init__(self, main, quant=None):
        self.main, self.quant = main, quant

    @property
    def param_groups(self) -> List[Dict]:
        return self.main.param_groups + (self.quant.param_groups if self.quant else [])

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in (self.main, self.quant):
            if opt is not None:
                opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in (self.main, self.quant):
            if opt is not None:
                opt.step()

    def state_dict(self) -> Dict:
        return {"main": self.main.state_dict(), "quant": self.quant.state_dict() if self.quant else None}

    def load_state_dict(self, state: Dict) -> None:
        self.main.load_state_dict(state["main"])
        if self.quant is not None and state.get("quant") is not None:
            self.quant.load_state_dict(state["quant"])


def build_optimizer(model: nn.Module, optim_cfg, base_lr: float, extra: Iterable = ()) -> Optimizers:
    """The recipe's optimizer over :func:`param_groups` (quantizer parameters separately when
    ``optim.quant_optimizer`` names another optimizer)."""
    groups = param_groups(model, optim_cfg, base_lr, extra)
    separate = optim_cfg.quant_optimizer != "same"
    quant = [g for g in groups if g["role"] == "quant"] if separate else []
    main = [g for g in groups if not (separate and g["role"] == "quant")]
    main_opt = _make(optim_cfg.name, main or [{"params": [], "lr_scale": 1.0, "gate": 1.0}], base_lr, optim_cfg)
    quant_opt = _make(optim_cfg.quant_optimizer, quant, base_lr, optim_cfg) if quant else None
    return Optimizers(main_opt, quant_opt)


def set_lr(optimizer, lr: float) -> None:
    """Apply the phase learning rate to every group (times its scale and gate)."""
    for g in optimizer.param_groups:
        g["lr"] = lr * g["lr_scale"] * g["gate"]
