"""``cnn``: the CIFAR-10 convolutional network of the learned-quantization thesis.

Three blocks of ``conv3x3-BN-ReLU, conv3x3-BN-ReLU, maxpool 2`` (widths 32, 64, 128), then
``Flatten -> Linear(128 * (input_size // 8)**2, hidden) -> ReLU -> Dropout -> Linear``.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import int_list, positive_int, probability
from .factory import register_model
from .layers import ConvBNAct, init_weights

__all__ = ["ThesisCNN"]


class ThesisCNN(nn.Module):
    """VGG-style CNN: three double-conv blocks with max pooling and a two-layer classifier.

    >>> model = ThesisCNN(widths=(8, 16, 32), hidden=64, num_classes=10)
    >>> model(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        widths=(32, 64, 128),
        hidden: int = 256,
        num_classes: int = 10,
        in_channels: int = 3,
        input_size: int = 32,
        dropout: float = 0.0,
    ):
        super().__init__()
        blocks, channels = [], in_channels
        for width in widths:
            blocks.append(nn.Sequential(
                ConvBNAct(channels, width, 3),  # (B, width, H, W)
                ConvBNAct(width, width, 3),  # (B, width, H, W)
                nn.MaxPool2d(2),  # (B, width, H/2, W/2)
            ))
            channels = width
        self.features = nn.Sequential(*blocks)
        side = input_size // 2 ** len(widths)
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Linear(channels * side * side, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, widths[-1], H/8, W/8)
        x = self.flatten(x)  # (B, widths[-1] * H/8 * W/8)
        return self.classifier(x)  # (B, num_classes)


@register_model(
    "cnn",
    description="CIFAR-10 CNN of the learned-quantization thesis (3x double conv 32/64/128)",
    dataset="CIFAR-10",
    min_input_size=8,  # three 2x2 max pools
    args={
        "widths": ([32, 64, 128], int_list(3)),
        "hidden": (256, positive_int),
        "dropout": (0.0, probability),
    },
)
def _build_cnn(num_classes, in_channels, input_size, widths, hidden, dropout) -> nn.Module:
    return ThesisCNN(widths, hidden, num_classes, in_channels, input_size, dropout)
