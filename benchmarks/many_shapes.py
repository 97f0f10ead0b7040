"""A model with many distinct layer shapes, and the first-steps probe of ``overhead.py --many-shapes``.

The model is EfficientNet-B0-like and written the way third-party model libraries write it: 10
MBConv blocks with 3x3 and 5x5 depthwise convolutions, squeeze-and-excitation made of
nn.Linear layers (2-D inputs), SiLU, widths 16..640: 53 quantized layers of 40 distinct weight
shapes, 4-D channels-last and 2-D activations.

Run alone (one fresh process per measurement; ``overhead.py --many-shapes`` drives it)::

    LOWBIT_COMPILE=1 python -m benchmarks.many_shapes --steps 50

It prints one JSON line: seconds of ``lowbit.calibrate`` (one batch), of each training step
(forward, cross-entropy, backward, SGD, ``project_quantizers``), and the fast kernels'
compile statistics (signatures compiled, seconds their first calls took, eager calls).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

import lowbit
from lowbit.ops import kernels

try:  # the compile policy (absent from lowbit versions that compiled at the first call)
    from lowbit.ops.compiled import compile_stats
except ImportError:
    compile_stats = {}

# (in, out, depthwise kernel, stride, expansion)
BLOCKS = [(16, 24, 3, 2, 6), (24, 24, 3, 1, 6), (24, 40, 5, 2, 6), (40, 40, 5, 1, 6),
          (40, 80, 3, 2, 6), (80, 80, 3, 1, 6), (80, 112, 5, 1, 6), (112, 112, 5, 1, 6),
          (112, 192, 5, 2, 6), (192, 320, 3, 1, 6)]


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(channels, reduced), nn.Linear(reduced, channels)

    def forward(self, x):  # (B, C, H, W)
        w = torch.sigmoid(self.fc2(F.silu(self.fc1(x.mean((2, 3))))))  # (B, C)
        return x * w[:, :, None, None]


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.expand, self.bn0 = nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid)
        self.dw = nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.se = SqueezeExcite(mid, max(1, cin // 4))
        self.project, self.bn2 = nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = F.silu(self.bn1(self.dw(F.silu(self.bn0(self.expand(x))))))
        y = self.bn2(self.project(self.se(y)))
        return x + y if self.residual else y


def build_model(num_classes: int = 10) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.SiLU(),
                         *[MBConv(*b) for b in BLOCKS], nn.Conv2d(320, 640, 1, bias=False),
                         nn.BatchNorm2d(640), nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(640, num_classes))


def probe(steps: int, batch: int, size: int) -> dict:
    """Prepare (W4A4 LSQ, per-channel weights), calibrate on one batch, train ``steps`` steps."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 3, size, size, generator=gen).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), generator=gen)
    spec = lowbit.QuantSpec(weight=lowbit.QuantizerConfig(kind="lsq", bits=4, granularity="channel"),
                            act=lowbit.QuantizerConfig(kind="lsq", bits=4))
    model = lowbit.prepare(build_model(), spec).to(memory_format=torch.channels_last)
    start = time.perf_counter()
    lowbit.calibrate(model, [x])
    calibrate_s = time.perf_counter() - start
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    step_s = []
    model.train()
    for _ in range(steps):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        lowbit.nn.project_quantizers(model)
        step_s.append(time.perf_counter() - start)
    layers = [m for _, m in lowbit.nn.quant_layers(model)]
    return {"calibrate_s": calibrate_s, "step_s": step_s, "fast_kernels": kernels.fast_kernels_enabled(),
            "compile": dict(compile_stats), "quantized_layers": len(layers),
            "distinct_weight_shapes": len({tuple(m.weight.shape) for m in layers})}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=64, help="input height and width")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps(probe(args.steps, args.batch, args.size)))


if __name__ == "__main__":
    main()
