"""Small models shared by the lowbit.nn tests."""

import math

import pytest
import torch
from torch import nn

from lowbit.nn import Add


class Attention(nn.Module):
    """Multi-head self-attention built from nn.Linear layers (q, k, v, proj)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):  # (B, T, D)
        B, T, D = x.shape
        split = lambda t: t.reshape(B, T, self.heads, D // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))  # (B, H, T, D/H)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D // self.heads), dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(B, T, D))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attn(ln(x)), then x + mlp(ln(x)); residual adds as Add modules."""

    def __init__(self, dim: int = 16, heads: int = 2):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.add1, self.add2 = Add(), Add()

    def forward(self, x):
        x = self.add1(x, self.attn(self.ln1(x)))
        return self.add2(x, self.mlp(self.ln2(x)))


class MHABlock(nn.Module):
    """A block using nn.MultiheadAttention (not quantizable) plus a Linear head."""

    def __init__(self, dim: int = 16):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.head = nn.Linear(dim, 4)

    def forward(self, x):
        return self.head(self.attn(x, x, x, need_weights=False)[0])


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial running statistics and affine parameters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
    return model


@pytest.fixture
def helpers():
    from types import SimpleNamespace

    return SimpleNamespace(TransformerBlock=TransformerBlock, MHABlock=MHABlock,
                           randomize_batchnorm=randomize_batchnorm)
