"""Optimizer construction with parameter groups.

Groups: ``weights`` (decayed), ``no_decay`` (biases and normalisation parameters), ``quant``
(quantizer parameters: their own learning rate and weight decay), ``method`` (extra
parameters a method trains). Each group keeps ``lr_scale`` relative to the phase learning rate
and a ``gate`` that methods may set to 0 to hold a group still for a step (seed 001 updates
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


def build_optimizer(model: nn.Module, optim_cfg, base_lr: float, extra: Iterable = ()):
    """The recipe's optimizer over :func:`param_groups`."""
    groups = param_groups(model, optim_cfg, base_lr, extra)
    name = optim_cfg.name
    if name == "sgd":
        return torch.optim.SGD(groups, lr=base_lr, momentum=optim_cfg.momentum,
                               nesterov=optim_cfg.nesterov and optim_cfg.momentum > 0)
    if name == "adam":
        return torch.optim.Adam(groups, lr=base_lr)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=base_lr)
    return torch.optim.RMSprop(groups, lr=base_lr, momentum=optim_cfg.momentum)


def set_lr(optimizer, lr: float) -> None:
    """Apply the phase learning rate to every group (times its scale and gate)."""
    for g in optimizer.param_groups:
        g["lr"] = lr * g["lr_scale"] * g["gate"]
