"""Look-alikes of layers and models from third-party model libraries, written here (tiny).

* ``StdConv2d``: a weight-standardized convolution (BiT-style ResNets): its forward standardizes
  the weight per output channel before convolving, so it is not linear in the weight.
* ``Conv2dSame``: TensorFlow "same" padding computed from the input size (EfficientNet ports).
* ``PatchNet``: a forward that reads ``conv.stride``, ``conv.kernel_size``, ``conv.padding`` and
  ``conv.weight`` (MobileNet-style padding helpers, ViT patch embeddings).
* ``TokenNet``: two inputs, ``input_ids`` and keyword ``attention_mask`` (every transformer),
  an embedding left in float, attention from nn.Linear, a head used only without a mask.
* ``Conv1D``: GPT-2's dense layer: weight ``(in, out)``, ``addmm``; not an nn.Linear subclass.
* ``MatmulLinear``: an nn.Linear subclass with its own forward (``x @ W^T + b``, 3-D inputs).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class StdConv2d(nn.Conv2d):
    """Weight-standardized convolution: ``conv(x, (w - mean_o) / sqrt(var_o + eps))``."""

    def __init__(self, *args, eps: float = 1e-6, **kwargs):
        super().__init__(*args, **kwargs)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        flat = w.reshape(w.shape[0], -1)
        w = ((flat - flat.mean(1, keepdim=True)) / torch.sqrt(flat.var(1, unbiased=False, keepdim=True)
                                                               + self.eps)).reshape_as(w)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


def same_pad(x: torch.Tensor, k: int, s: int, d: int) -> torch.Tensor:
    """TF "SAME": pad so that out = ceil(in / s), the extra pixel on the bottom/right."""
    ih, iw = x.shape[-2:]
    ph = max((math.ceil(ih / s) - 1) * s + (k - 1) * d + 1 - ih, 0)
    pw = max((math.ceil(iw / s) - 1) * s + (k - 1) * d + 1 - iw, 0)
    return F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])


class Conv2dSame(nn.Conv2d):
    """Convolution with TensorFlow "same" padding (asymmetric for even totals)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = same_pad(x, self.kernel_size[0], self.stride[0], self.dilation[0])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class Conv1D(nn.Module):
    """GPT-2's dense layer: ``y = x @ W + b`` with W of shape (in, out)."""

    def __init__(self, nf: int, nx: int):
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.2)
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight)
        return out.reshape(x.shape[:-1] + (self.nf,))


class MatmulLinear(nn.Linear):
    """A Linear subclass with its own forward (``x @ W^T + b``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.matmul(x, self.weight.t())
        return y + self.bias if self.bias is not None else y


class StdConvNet(nn.Module):
    """StdConv -> GroupNorm -> ReLU -> StdConv -> BN -> ReLU -> pool -> Linear."""

    def __init__(self, classes: int = 5):
        super().__init__()
        self.conv1 = StdConv2d(3, 8, 3, padding=1, bias=False)
        self.gn = nn.GroupNorm(2, 8)
        self.conv2 = StdConv2d(8, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        x = F.relu(self.gn(self.conv1(x)))
        x = F.relu(self.bn(self.conv2(x)))
        return self.fc(x.mean((2, 3)))


class SameNet(nn.Module):
    """EfficientNet-port style: stride-2 "same" convs (one depthwise), BN, SiLU, Linear."""

    def __init__(self, classes: int = 5):
        super().__init__()
        self.stem = Conv2dSame(3, 8, 3, stride=2, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.dw = Conv2dSame(8, 8, 3, stride=2, groups=8, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.pw = nn.Conv2d(8, 12, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(12)
        self.fc = nn.Linear(12, classes)

    def forward(self, x):
        x = F.silu(self.bn1(self.stem(x)))
        x = F.silu(self.bn2(self.dw(x)))
        x = F.silu(self.bn3(self.pw(x)))
        return self.fc(x.mean((2, 3)))


class PatchNet(nn.Module):
    """Reads conv.stride / kernel_size / padding / weight: a padding helper and a patch embed."""

    def __init__(self, classes: int = 5):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=0)
        self.proj = nn.Conv2d(8, 16, 2, stride=2)  # patch embedding
        self.head = nn.Linear(16, classes)

    def forward(self, x):
        k, s, d = self.conv.kernel_size[0], self.conv.stride[0], self.conv.dilation[0]
        if s > 1 and self.conv.padding == (0, 0):  # MobileNet-style "pad only when striding"
            x = same_pad(x, k, s, d)
        x = x.to(self.conv.weight.dtype)
        x = F.relu(self.conv(x))
        assert x.shape[-1] % self.proj.kernel_size[0] == 0, "patch size must divide the width"
        tokens = self.proj(x).flatten(2).transpose(1, 2)  # (B, N, 16)
        assert tokens.shape[-1] == self.proj.weight.shape[0]
        return self.head(tokens.mean(1))


class TokenNet(nn.Module):
    """forward(input_ids, attention_mask=None): embedding, one attention block of Linears with
    a MatmulLinear projection, masked mean pooling and ``fc``; without a mask, mean pooling and
    ``fc_nomask`` (so a trace with a mask never calls ``fc_nomask``)."""

    def __init__(self, vocab: int = 50, dim: int = 16, classes: int = 4):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = MatmulLinear(dim, dim)
        self.ln = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, classes)
        self.fc_nomask = nn.Linear(dim, classes)

    def forward(self, input_ids, attention_mask=None):
        h = self.embed(input_ids)  # (B, T, D)
        att = self.q(h) @ self.k(h).transpose(1, 2) / math.sqrt(h.shape[-1])  # (B, T, T)
        if attention_mask is not None:
            att = att.masked_fill(attention_mask[:, None, :] == 0, -1e4)
        h = self.ln(h + self.proj(torch.softmax(att, -1) @ self.v(h)))
        if attention_mask is None:
            return self.fc_nomask(h.mean(1))
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        return self.fc((h * m).sum(1) / m.sum(1).clamp(min=1))


class GPT2Net(nn.Module):
    """Dense layers are Conv1D only (so ``prepare`` finds nothing to quantize)."""

    def __init__(self, dim: int = 8, classes: int = 3):
        super().__init__()
        self.c_fc = Conv1D(4 * dim, dim)
        self.c_proj = Conv1D(classes, 4 * dim)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


def image_batch(n: int = 64, size: int = 16, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=gen)


def token_batch(n: int = 64, t: int = 7, vocab: int = 50, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (n, t), generator=gen)
    mask = (torch.rand(n, t, generator=gen) > 0.2).long()
    mask[:, 0] = 1
    return ids, mask


class Fragile(nn.Module):
    """A class whose constructor raises something other than TypeError/ValueError by default."""

    def __init__(self, boom: bool = True):
        super().__init__()
        if boom:
            raise RuntimeError("needs its weights file\n(a second line)")
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        return self.fc(x)
