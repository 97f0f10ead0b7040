"""Small models and quantization specs shared by the export tests."""

from __future__ import annotations

from typing import Dict

import torch
from torch import nn

from lowbit import LayerOverride, QuantizerConfig, QuantSpec, calibrate, prepare
from lowbit.nn.layers import Add


class SmallNet(nn.Module):
    """conv-BN-ReLU, conv-BN + residual Add, global pool, Linear: every op the zoo uses."""

    def __init__(self, in_channels: int = 3, width: int = 9, classes: int = 5):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.add = Add()
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu1(self.bn1(self.conv1(x)))  # (B, W, H, W)
        z = self.bn2(self.conv2(y))  # (B, W, H, W)
        out = self.relu2(self.add(z, y))
        return self.fc(self.flatten(self.pool(out)))  # (B, classes)


class Conv1dNet(nn.Module):
    """Conv1d with reflect padding + BN + ReLU + Linear."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 6, 3, padding=1, padding_mode="reflect", bias=True)
        self.bn = nn.BatchNorm1d(6)
        self.relu = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(6 * 16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.relu(self.bn(self.conv(x)))))


def q(kind: str = "lsq", bits=4, **kw) -> QuantizerConfig:
    return QuantizerConfig(kind=kind, bits=bits, **kw)


SPECS: Dict[str, QuantSpec] = {
    "lsq_w4a4": QuantSpec(weight=q(granularity="channel"), act=q()),
    "lsq_w8a8_tensor": QuantSpec(weight=q(bits=8), act=q(bits=8)),
    "uniform_asym": QuantSpec(weight=q("uniform", 8, granularity="channel", symmetric=False),
                              act=q("uniform", 8, symmetric=False)),
    "dorefa_w3a3": QuantSpec(weight=q("dorefa", 3, granularity="channel"), act=q("dorefa", 3)),
    "learned_range": QuantSpec(weight=q("learned_range", 4, granularity="channel", bits_min=2),
                               act=q("learned_range", 6)),
    # filled grids: every level of the integer bits (mix_learned_bits' q+/d of 2.6 and 5.3
    # fill to 3 and 7 levels)
    "learned_range_filled": QuantSpec(
        weight=q("learned_range", 4, granularity="channel", bits_min=2, fill_levels=True),
        act=q("learned_range", 6, fill_levels=True)),
    "nested": QuantSpec(weight=q("nested", None, granularity="row"), act=q(bits=8)),
    "pow2_w2a2": QuantSpec(weight=q("pow2", 2, granularity="channel"), act=q("pow2", 2)),
    "log2_w4": QuantSpec(weight=q("log2", 4, granularity="channel"), act=q(bits=8)),
    "group": QuantSpec(weight=q(granularity="group", group_size=9), act=q()),
    "column": QuantSpec(weight=q(granularity="column"), act=q()),
    "bias_q": QuantSpec(weight=q(granularity="channel"), act=q(), bias=q("uniform", 8)),
    "float_weight_fc": QuantSpec(weight=q(granularity="channel"), act=q(),
                                 overrides=(LayerOverride("fc", weight="float"),)),
    "skip_first": QuantSpec(weight=q(granularity="channel"), act=q(),
                            overrides=(LayerOverride("conv1", skip=True),)),
    "residual_w2a3": QuantSpec(weight=q(bits=2, granularity="channel"), act=q(bits=3), residual=True,
                               overrides=(LayerOverride("@first", weight={"bits": 8}, act={"bits": 8}),)),
}
#: specs whose weights cannot absorb a BN (convert raises ConfigError with fold_bn=True)
NO_FOLD = {"log2_w4", "column"}


def randomize_bn(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics and affine parameters (some gammas negative)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(n, generator=g))
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


def mix_learned_bits(model: nn.Module) -> None:
    """Give learned_range weight quantizers different bits per channel."""
    from lowbit.quantizers import LearnedRangeQuantizer

    for m in model.modules():
        if isinstance(m, LearnedRangeQuantizer) and m.role == "weight" and m.step.numel() > 1:
            n = torch.arange(m.step.numel()) % 4
            m.set_step_and_range(qplus=m.step * torch.tensor([1.0, 2.6, 5.3, 100.0])[n].reshape(m.qplus.shape))


def build(name: str, net: str = "small", seed: int = 0):
    """(prepared + calibrated model in eval mode, example batch) for spec ``name``."""
    torch.manual_seed(seed)
    model = SmallNet() if net == "small" else Conv1dNet()
    randomize_bn(model, seed)
    x = torch.randn(16, 3, 8, 8) if net == "small" else torch.randn(16, 4, 16)
    qm = prepare(model, SPECS[name])
    calibrate(qm, [x])
    mix_learned_bits(qm)
    return qm.eval(), x
