"""Small modules that make quantization points visible in a model, and the scalar layer.

``Add`` is a residual addition as a module (``forward(a, b) = a + b``), so ``prepare`` can find
residual adds by type and put activation quantizers on their inputs.

``ScalarLayer`` is the scalar layer of Zhuang, Shen, Tan, Liu, Reid (Towards Effective
Low-bitwidth Convolutional Neural Networks, Section 3.6): one trainable scalar multiplying the
logits before the softmax, initialised to 0.01, "to promote convergence" of networks whose
low-bit weights and activations make large logits. :func:`add_scalar_layer` gives any model one
(a submodule ``scalar_layer`` and a forward hook, so the model's class, module names and
forward are untouched); convert, the exporters and the integer executor keep it.

>>> import torch
>>> Add()(torch.ones(2), torch.ones(2))
tensor([2., 2.])
>>> m = add_scalar_layer(torch.nn.Linear(2, 2))
>>> torch.allclose(m(torch.ones(1, 2)), 0.01 * torch.nn.functional.linear(torch.ones(1, 2), m.weight, m.bias))
True
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ConfigError

SCALAR_INIT = 0.01  # the paper's initial value


class Add(nn.Module):
    """Element-wise addition of two tensors (a residual connection)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class ScalarLayer(nn.Module):
    """``x * scale`` with one trainable scalar ``scale``."""

    def __init__(self, init: float = SCALAR_INIT):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale

    def extra_repr(self) -> str:
        return f"scale={float(self.scale.detach()):.4g}"


def _scale_output(module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
    return module.scalar_layer(output)


def add_scalar_layer(model: nn.Module, init: float = SCALAR_INIT) -> nn.Module:
    """Multiply ``model``'s output by a trainable scalar (``model.scalar_layer``), in place.

    Registry models record it in ``lowbit_spec["scalar_layer"]``, so files exported from them
    rebuild it. Raises ConfigError for a non-positive ``init`` or a second scalar layer.
    """
    if isinstance(init, bool) or not isinstance(init, (int, float)) or not (math.isfinite(init) and init > 0):
        raise ConfigError(f"scalar_layer must be a positive initial value (the paper's is "
                          f"{SCALAR_INIT}), got {init!r}")
    if isinstance(getattr(model, "scalar_layer", None), ScalarLayer):
        raise ConfigError(f"{type(model).__name__} already has a scalar layer")
    if "scalar_layer" in dict(model.named_children()) or hasattr(model, "scalar_layer"):
        raise ConfigError(f"{type(model).__name__} already has an attribute 'scalar_layer'")
    p = next(model.parameters(), None)
    model.scalar_layer = ScalarLayer(init).to(device=p.device if p is not None else None)
    model.register_forward_hook(_scale_output)
    spec = getattr(model, "lowbit_spec", None)
    if isinstance(spec, dict):
        spec["scalar_layer"] = float(init)
    return model
