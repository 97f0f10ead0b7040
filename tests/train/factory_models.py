"""Model factories of "your own package" for the factory-recipe tests (importable as
``factory_models:build`` because pytest puts this folder on sys.path)."""

import math

import torch.nn.functional as F
from torch import nn


class SameConv(nn.Conv2d):
    """TensorFlow "same" padding computed from the input size in forward."""

    def forward(self, x):
        ih, iw = x.shape[-2:]
        k, s = self.kernel_size[0], self.stride[0]
        ph = max((math.ceil(ih / s) - 1) * s + k - ih, 0)
        pw = max((math.ceil(iw / s) - 1) * s + k - iw, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class TinyNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, width: int):
        super().__init__()
        self.conv1, self.bn1 = SameConv(in_channels, width, 3, stride=2, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = SameConv(width, width, 3, stride=2, bias=False), nn.BatchNorm2d(width)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.fc(x.mean((2, 3)))


def build(in_channels: int = 1, num_classes: int = 10, width: int = 8) -> nn.Module:
    return TinyNet(in_channels, num_classes, width)


def broken(**kwargs):
    raise KeyError("no such weights\n(second line)")


def not_a_model(**kwargs):
    return 42
