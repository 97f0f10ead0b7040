"""``mlp``: the MNIST multilayer perceptron of the learned-quantization thesis.

``Flatten -> Linear(in_channels * input_size**2, hidden) -> ReLU -> Linear(hidden, classes)``.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import positive_int
from .factory import MNIST, register_model

__all__ = ["MLP"]


class MLP(nn.Module):
    """Two-layer perceptron on flattened images.

    >>> MLP(in_features=784, hidden=256, num_classes=10)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, in_features: int, hidden: int, num_classes: int):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(in_features, hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(x)  # (B, C*H*W)
        x = self.relu(self.fc1(x))  # (B, hidden)
        return self.fc2(x)  # (B, num_classes)


@register_model(
    "mlp",
    description="MNIST MLP of the learned-quantization thesis (784-256-10)",
    dataset="MNIST",
    min_input_size=1,
    args={"hidden": (256, positive_int)},
    defaults=MNIST,
)
def _build_mlp(num_classes: int, in_channels: int, input_size: int, hidden: int) -> nn.Module:
    # PyTorch's default Linear initialisation trains this model well.
    return MLP(in_channels * input_size * input_size, hidden, num_classes)
