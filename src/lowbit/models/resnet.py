"""Residual networks: CIFAR ResNet-8/20/32/44/56 and ResNet-18.

All share :class:`ResNet`, a stem followed by stages of :class:`BasicBlock`. Names follow
torchvision (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0``, ``fc``), so
torchvision ResNet-18 state dicts should load into ``resnet18`` at 224 px with 1000 classes
(key names checked against torchvision's layout; no torchvision file was loaded).

* ``resnet8``: the MLPerf Tiny image-classification model: stem conv3x3 16, one block per
  stage (16, 32/2, 64/2). Unlike the Keras reference, every conv is bias-free and followed by
  BN, including the 1x1 shortcut convs, so BN folding sees uniform conv->BN pairs.
* ``resnet20`` .. ``resnet56``: He et al. 2016 CIFAR ResNets (6n+2 layers, widths 16/32/64).
  Shortcuts use option B (1x1 conv + BN) where the shape changes, instead of the paper's
  parameter-free option A (zero padding), because quantizers and BN folding need real layers.
* ``resnet18``: ImageNet ResNet-18. For ``input_size <= 64`` the stem becomes conv3x3 stride 1
  without max pool (the usual CIFAR adaptation). ``width_mult`` scales every width (stem
  included): ``width_mult=0.5`` (32/64/128/256) at 96 px is the Imagenette network of the
  learned-quantization thesis (Chinbat 2025), an initial conv block and four residual stages
  small enough to train on a CPU.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from ._checks import boolean, positive_float
from .factory import register_model
from .layers import Add, init_weights

__all__ = ["BasicBlock", "ResNet"]

#: inputs up to this size use the small-input (CIFAR) stem
SMALL_INPUT_MAX = 64


class BasicBlock(nn.Module):
    """Two conv3x3-BN layers plus a shortcut, summed by :class:`Add` and followed by ReLU.

    The shortcut is the identity, or ``1x1 conv (stride) -> BN`` when the shape changes.

    >>> block = BasicBlock(16, 32, stride=2)
    >>> block(torch.zeros(1, 16, 8, 8)).shape
    torch.Size([1, 32, 4, 4])
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample: Optional[nn.Sequential] = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.add = Add()
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))  # (B, out, H/s, W/s)
        out = self.bn2(self.conv2(out))  # (B, out, H/s, W/s)
        identity = x if self.downsample is None else self.downsample(x)  # (B, out, H/s, W/s)
        return self.relu2(self.add(out, identity))


class ResNet(nn.Module):
    """Stem, ``len(widths)`` stages of basic blocks (stride 1 then 2), global pool, Linear.

    ``stem="cifar"`` is conv3x3 stride 1 with ``widths[0]`` channels; ``stem="imagenet"`` is
    conv7x7 stride 2 with ``stem_width`` (default 64) channels and a 3x3 stride-2 max pool.

    >>> model = ResNet(blocks=[1, 1, 1], widths=[16, 32, 64], num_classes=10)
    >>> model(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        blocks: Sequence[int],
        widths: Sequence[int],
        num_classes: int = 10,
        in_channels: int = 3,
        stem: str = "cifar",
        zero_init_residual: bool = True,
        stem_width: Optional[int] = None,
    ):
        super().__init__()
        if stem == "imagenet":
            stem_width = stem_width or 64
            self.conv1 = nn.Conv2d(in_channels, stem_width, 7, 2, 3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(3, 2, 1)
        else:
            stem_width = stem_width or widths[0]
            self.conv1 = nn.Conv2d(in_channels, stem_width, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU()
        self.stage_names = []
        channels = stem_width
        for index, (count, width) in enumerate(zip(blocks, widths)):
            stride = 1 if index == 0 else 2
            stage = [BasicBlock(channels if i == 0 else width, width, stride if i == 0 else 1)
                     for i in range(count)]
            self.stage_names.append(f"layer{index + 1}")
            self.add_module(self.stage_names[-1], nn.Sequential(*stage))
            channels = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, num_classes)
        init_weights(self)
        if zero_init_residual:  # each block starts as (almost) the identity
            for module in self.modules():
                if isinstance(module, BasicBlock):
                    nn.init.zeros_(module.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))  # (B, stem, H or H/2, W or W/2)
        x = self.maxpool(x)  # (B, stem, H/4, W/4) for the ImageNet stem
        for name in self.stage_names:
            x = getattr(self, name)(x)  # channels widths[i], spatial /2 from the second stage on
        x = self.flatten(self.avgpool(x))  # (B, widths[-1])
        return self.fc(x)  # (B, num_classes)


_RESNET_ARGS = {"zero_init_residual": (True, boolean)}


def _register_cifar_resnet(depth: int, description: str) -> None:
    def build(num_classes, in_channels, input_size, zero_init_residual) -> nn.Module:
        n = (depth - 2) // 6
        return ResNet([n] * 3, [16, 32, 64], num_classes, in_channels, "cifar", zero_init_residual)

    build.__name__ = f"_build_resnet{depth}"
    register_model(
        f"resnet{depth}",
        description=description,
        dataset="CIFAR-10",
        min_input_size=8,  # total stride 4: last feature map >= 2x2
        args=_RESNET_ARGS,
    )(build)


_register_cifar_resnet(8, "MLPerf Tiny ResNet-8 (16/32/64, one block per stage)")
for _depth in (20, 32, 44, 56):
    _register_cifar_resnet(
        _depth, f"CIFAR ResNet-{_depth} (He et al. 2016), 1x1 conv+BN shortcuts (option B)"
    )


@register_model(
    "resnet18",
    description="ResNet-18 (He et al. 2016); CIFAR stem (conv3x3 s1, no max pool) at <= 64 px; "
                "width_mult scales every width",
    dataset="CIFAR-10",
    min_input_size=16,  # CIFAR stem, total stride 8: last feature map >= 2x2
    args={**_RESNET_ARGS, "width_mult": (1.0, positive_float)},
)
def _build_resnet18(num_classes, in_channels, input_size, zero_init_residual, width_mult) -> nn.Module:
    stem = "cifar" if input_size <= SMALL_INPUT_MAX else "imagenet"
    widths = [max(1, round(w * width_mult)) for w in (64, 128, 256, 512)]
    return ResNet([2, 2, 2, 2], widths, num_classes, in_channels, stem, zero_init_residual,
                  stem_width=widths[0])
