"""EfficientNet-Lite0 (Tan & Le 2019, "lite" variant for integer accelerators).

Lite changes from EfficientNet-B0: no squeeze-excitation, ReLU6 instead of swish, stem (32)
and head (1280) channels fixed. Blocks are MBConv (:class:`~lowbit.models.layers.InvertedResidual`)
with expansion 1 or 6 and kernel 3 or 5. Stochastic depth (drop-connect) is not implemented.

Small-input adaptation (``input_size <= 64``): the stem and the first block of the 24-channel
stage run at stride 1, so the total stride is 8 instead of 32 (32 px -> 4x4 last map).
"""

from __future__ import annotations

from typing import List, Tuple

import torch
from torch import nn

from ._checks import probability
from .factory import register_model
from .layers import ConvBNAct, InvertedResidual, init_weights

__all__ = ["EfficientNetLite"]

SMALL_INPUT_MAX = 64

#: Lite0 stages: (expansion, kernel, stride of the first block, output channels, repeats)
LITE0_STAGES: List[Tuple[int, int, int, int, int]] = [
    (1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1),
]


class EfficientNetLite(nn.Module):
    """Stem conv3x3 32, MBConv stages, conv1x1 1280, global pool, Dropout, Linear.

    >>> EfficientNetLite(input_size=32)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        input_size: int = 224,
        dropout: float = 0.2,
        stages=LITE0_STAGES,
    ):
        super().__init__()
        small = input_size <= SMALL_INPUT_MAX
        self.stem = ConvBNAct(in_channels, 32, 3, 1 if small else 2, act="relu6")
        blocks, channels, reduced = [], 32, False
        for expand, kernel, stride, out, repeats in stages:
            if small and stride == 2 and not reduced:  # first stride-2 stage
                stride, reduced = 1, True
            stage = []
            for i in range(repeats):
                stage.append(InvertedResidual(channels, out, stride if i == 0 else 1, expand,
                                              kernel))
                channels = out
            blocks.append(nn.Sequential(*stage))
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvBNAct(channels, 1280, 1, act="relu6")
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes))
        init_weights(self, linear="normal")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, 32, H/2, W/2), or H for small inputs
        x = self.blocks(x)  # (B, 320, H/32, W/32), or H/8 for small inputs
        x = self.head(x)  # (B, 1280, ., .)
        x = self.flatten(self.avgpool(x))  # (B, 1280)
        return self.classifier(x)  # (B, num_classes)


@register_model(
    "efficientnet_lite0",
    description="EfficientNet-Lite0 (no SE, ReLU6); stride 8 instead of 32 at <= 64 px",
    dataset="CIFAR-10",
    min_input_size=16,  # total stride 8 at small inputs: last feature map >= 2x2
    args={"dropout": (0.2, probability)},
)
def _build_efficientnet_lite0(num_classes, in_channels, input_size, dropout) -> nn.Module:
    return EfficientNetLite(num_classes, in_channels, input_size, dropout)
