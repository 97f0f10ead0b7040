"""Building blocks shared by the lowbit model zoo.

The quantization code finds layers by type, so every rule below is load-bearing:

* activations are modules (``nn.ReLU`` / ``nn.ReLU6``, never ``F.relu``), one instance per
  place they are used, and never in-place (hooks may still hold the tensor they modify);
* every residual addition goes through an :class:`Add` module (``forward(a, b) = a + b``);
* a convolution that is followed by BatchNorm has ``bias=False`` and feeds the BatchNorm
  directly (conv -> bn -> act), so BN folding can pair them.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..nn.layers import Add

__all__ = [
    "Add",
    "ConvBNAct",
    "InvertedResidual",
    "activation",
    "init_weights",
    "make_divisible",
]


def make_divisible(value: float, divisor: int = 8, min_value: Optional[int] = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` without dropping more than 10%.

    This is the channel rounding of the MobileNet / EfficientNet reference code.

    >>> make_divisible(32 * 0.35), make_divisible(1280 * 1.0), make_divisible(24 * 0.35)
    (16, 1280, 8)
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:  # never round down by more than 10%
        rounded += divisor
    return rounded


def activation(kind: Optional[str]) -> nn.Module:
    """Return a fresh activation module: ``"relu"``, ``"relu6"`` or ``None`` (identity).

    >>> activation("relu6")
    ReLU6()
    """
    if kind == "relu":
        return nn.ReLU()
    if kind == "relu6":
        return nn.ReLU6()
    if kind is None:
        return nn.Identity()
    raise ValueError(f"unknown activation {kind!r}; valid: relu, relu6, None")


class ConvBNAct(nn.Sequential):
    """``Conv2d(bias=False) -> BatchNorm2d -> activation`` with "same" padding.

    Children are indexed ``0`` (conv), ``1`` (bn) and, when ``act`` is given, ``2`` (act),
    the layout of torchvision's ``Conv2dNormActivation`` so state-dict keys line up.

    >>> block = ConvBNAct(3, 8, kernel_size=3, stride=2)
    >>> block(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 8, 16, 16])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        act: Optional[str] = "relu",
    ):
        layers = [
            nn.Conv2d(
                in_channels, out_channels, kernel_size, stride,
                padding=kernel_size // 2, groups=groups, bias=False,
            ),
            nn.BatchNorm2d(out_channels),
        ]
        if act is not None:
            layers.append(activation(act))
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 / EfficientNet-Lite MBConv block (no squeeze-excitation).

    ``[1x1 expand -> BN -> act] -> kxk depthwise -> BN -> act -> 1x1 project -> BN``, plus an
    :class:`Add` of the input when ``stride == 1`` and the channel count is unchanged.
    The expand conv is left out when ``expand_ratio == 1``. Child names follow torchvision's
    ``InvertedResidual`` (``conv.0``, ``conv.1``, ..., projection conv and BN last).

    >>> block = InvertedResidual(16, 16, stride=1, expand_ratio=6)
    >>> block(torch.zeros(1, 16, 8, 8)).shape, block.add is not None
    (torch.Size([1, 16, 8, 8]), True)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        expand_ratio: float,
        kernel_size: int = 3,
        act: str = "relu6",
    ):
        super().__init__()
        hidden = int(round(in_channels * expand_ratio))
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNAct(in_channels, hidden, 1, act=act))  # (B, hidden, H, W)
        layers += [
            ConvBNAct(hidden, hidden, kernel_size, stride, groups=hidden, act=act),  # (B, hidden, H/s, W/s)
            nn.Conv2d(hidden, out_channels, 1, bias=False),  # (B, out, H/s, W/s)
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.add = Add() if stride == 1 and in_channels == out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return out if self.add is None else self.add(x, out)


def init_weights(model: nn.Module, linear: str = "default") -> None:
    """Initialise ``model`` in place: Kaiming-normal (fan_out, relu) convs, BN weight 1 / bias 0.

    ``linear="normal"`` draws Linear weights from N(0, 0.01) with zero bias (the MobileNet
    recipe); ``"default"`` keeps PyTorch's own Linear initialisation.

    >>> conv = nn.Conv2d(3, 4, 3)
    >>> init_weights(nn.Sequential(conv)); bool(conv.bias.abs().sum() == 0)
    True
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear) and linear == "normal":
            nn.init.normal_(module.weight, 0.0, 0.01)
            nn.init.zeros_(module.bias)
