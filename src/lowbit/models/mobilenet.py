"""MobileNet V1 (Howard et al. 2017) and MobileNet V2 (Sandler et al. 2018).

Small-input adaptation: for ``input_size <= 64`` the stem conv and the first stride-2 layer
after it run at stride 1, so the total stride drops from 32 to 8 (32 px -> 4x4 last map):

* V1: the stem (conv3x3 32) and the depthwise conv of the 64 -> 128 layer;
* V2: the stem (conv3x3 32) and the first block of the 24-channel stage.

Channel counts are ``make_divisible(c * width_mult, 8)``, which equals ``int(c * width_mult)``
for the standard multipliers 0.25 / 0.5 / 0.75 / 1.0 of V1. V2 keeps its last conv at 1280
channels for ``width_mult <= 1`` and scales it above 1, as in the original. V2 names follow
torchvision (``features.N...``, ``classifier.1``), so its ImageNet state dicts should load.
"""

from __future__ import annotations

from typing import List, Tuple

import torch
from torch import nn

from ._checks import positive_float, probability
from .factory import register_model
from .layers import ConvBNAct, InvertedResidual, init_weights, make_divisible

__all__ = ["MobileNetV1", "MobileNetV2"]

SMALL_INPUT_MAX = 64

#: V1 depthwise-separable layers after the stem: (output channels, stride)
V1_LAYERS: List[Tuple[int, int]] = [
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
]

#: V2 stages: (expansion t, output channels c, repeats n, stride of the first block s)
V2_STAGES: List[Tuple[int, int, int, int]] = [
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
]


def _small_input_strides(strides: List[int], small: bool) -> List[int]:
    """Set the first two stride-2 entries (stem, then the first stride-2 layer) to 1."""
    if not small:
        return list(strides)
    twos = [i for i, s in enumerate(strides) if s == 2][:2]
    return [1 if i in twos else s for i, s in enumerate(strides)]


class MobileNetV1(nn.Module):
    """Stem conv3x3, 13 depthwise-separable layers (dw3x3-BN-ReLU, pw1x1-BN-ReLU), pool, Linear.

    >>> MobileNetV1(width_mult=0.25, input_size=32)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        width_mult: float = 1.0,
        num_classes: int = 10,
        in_channels: int = 3,
        input_size: int = 224,
        dropout: float = 0.0,
    ):
        super().__init__()
        strides = _small_input_strides([2] + [s for _, s in V1_LAYERS],
                                       input_size <= SMALL_INPUT_MAX)
        channels = make_divisible(32 * width_mult)
        layers: List[nn.Module] = [ConvBNAct(in_channels, channels, 3, strides[0])]
        for (out, _), stride in zip(V1_LAYERS, strides[1:]):
            out = make_divisible(out * width_mult)
            layers.append(nn.Sequential(
                ConvBNAct(channels, channels, 3, stride, groups=channels),  # depthwise
                ConvBNAct(channels, out, 1),  # pointwise
            ))
            channels = out
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, num_classes))
        init_weights(self, linear="normal")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, 1024 * width_mult, H/32, W/32) or H/8 for small inputs
        x = self.flatten(self.avgpool(x))  # (B, 1024 * width_mult)
        return self.classifier(x)  # (B, num_classes)


class MobileNetV2(nn.Module):
    """Stem conv3x3, 17 inverted-residual blocks (ReLU6), conv1x1 1280, pool, Dropout, Linear.

    >>> MobileNetV2(width_mult=0.35, input_size=32)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        width_mult: float = 1.0,
        num_classes: int = 10,
        in_channels: int = 3,
        input_size: int = 224,
        dropout: float = 0.2,
    ):
        super().__init__()
        block_strides = [s if i == 0 else 1 for _, _, n, s in V2_STAGES for i in range(n)]
        strides = _small_input_strides([2] + block_strides, input_size <= SMALL_INPUT_MAX)
        channels = make_divisible(32 * width_mult)
        layers: List[nn.Module] = [ConvBNAct(in_channels, channels, 3, strides[0], act="relu6")]
        stride_iter = iter(strides[1:])
        for t, c, n, _ in V2_STAGES:
            out = make_divisible(c * width_mult)
            for _ in range(n):
                layers.append(InvertedResidual(channels, out, next(stride_iter), t))
                channels = out
        self.last_channel = make_divisible(1280 * max(1.0, width_mult))
        layers.append(ConvBNAct(channels, self.last_channel, 1, act="relu6"))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.last_channel,
                                                                       num_classes))
        init_weights(self, linear="normal")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, last_channel, H/32, W/32) or H/8 for small inputs
        x = self.flatten(self.avgpool(x))  # (B, last_channel)
        return self.classifier(x)  # (B, num_classes)


@register_model(
    "mobilenet_v1",
    description="MobileNet V1 (Howard et al. 2017); stride 8 instead of 32 at <= 64 px",
    dataset="CIFAR-10",
    min_input_size=16,  # total stride 8 at small inputs: last feature map >= 2x2
    args={"width_mult": (1.0, positive_float), "dropout": (0.0, probability)},
)
def _build_mobilenet_v1(num_classes, in_channels, input_size, width_mult, dropout) -> nn.Module:
    return MobileNetV1(width_mult, num_classes, in_channels, input_size, dropout)


@register_model(
    "mobilenet_v2",
    description="MobileNet V2 (Sandler et al. 2018); stride 8 instead of 32 at <= 64 px",
    dataset="CIFAR-10",
    min_input_size=16,  # total stride 8 at small inputs: last feature map >= 2x2
    args={"width_mult": (1.0, positive_float), "dropout": (0.2, probability)},
)
def _build_mobilenet_v2(num_classes, in_channels, input_size, width_mult, dropout) -> nn.Module:
    return MobileNetV2(width_mult, num_classes, in_channels, input_size, dropout)
