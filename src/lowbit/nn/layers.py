"""Small modules that make quantization points visible in a model.

``Add`` is a residual addition as a module (``forward(a, b) = a + b``), so ``prepare`` can find
residual adds by type and put activation quantizers on their inputs.

>>> import torch
>>> Add()(torch.ones(2), torch.ones(2))
tensor([2., 2.])
"""

from __future__ import annotations

import torch
from torch import nn


class Add(nn.Module):
    """Element-wise addition of two tensors (a residual connection)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b
