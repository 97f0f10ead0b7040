"""Evaluation: top-1 accuracy and mean cross-entropy over a loader.

>>> import torch
>>> from torch import nn
>>> model = nn.Linear(4, 3)
>>> evaluate(model, [(torch.randn(10, 4), torch.zeros(10, dtype=torch.long))])["n"]
10
"""

from __future__ import annotations

from typing import Dict, Iterable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .nn.inputs import model_device


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, device: Optional[torch.device] = None,
             channels_last: bool = False) -> Dict[str, float]:
    """{"top1": percent correct, "loss": mean cross-entropy, "n": samples} in eval mode."""
    device = device or model_device(model)
    was_training = model.training
    model.eval()
    correct, total, loss_sum = 0, 0, 0.0
    try:
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            if channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            logits = model(x)
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(dim=1) == y).sum())
            total += y.numel()
    finally:
        model.train(was_training)
    return {"top1": 100.0 * correct / max(total, 1), "loss": loss_sum / max(total, 1), "n": total}
