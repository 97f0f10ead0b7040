"""Run a converted model outside training: the integer reference executor and the fake-quant
reconstruction. Both run the model's *own* forward with every quantized layer swapped, so they
work for any model ``prepare`` supports (pooling, ReLU, flatten, residual adds stay as written).

>>> import torch
>>> from lowbit import calibrate, prepare
>>> from lowbit.models import create_model
>>> model = prepare(create_model("mlp", hidden=16)).eval()
>>> x = torch.randn(8, 1, 28, 28)
>>> calibrate(model, [x])
>>> ex = IntegerExecutor(model, fold_bn=False)
>>> ex.modes()
{'fc1': 'integer', 'fc2': 'integer'}
>>> bool((ex(x).argmax(1) == model(x).argmax(1)).all())
True
>>> torch.equal(FakeQuantExecutor(model, fold_bn=False)(x), model(x))   # same float ops
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import torch
from torch import nn

from .packed import load_packed
from .rebuild import build_runtime
from .runtime import IntegerLayer, make_dequant, make_integer
from .source import Exportable, exportable


def _source(source, fold_bn: bool, example_input) -> Exportable:
    if isinstance(source, (str, Path)):
        return load_packed(source)
    return exportable(source, fold_bn=fold_bn, example_input=example_input)


class _Executor(nn.Module):
    _make = None

    def __init__(self, source, *, model: Optional[nn.Module] = None, allow_import: bool = False,
                 fold_bn: bool = True, example_input: Optional[torch.Tensor] = None):
        super().__init__()
        self.source = _source(source, fold_bn, example_input)
        self.model = build_runtime(self.source, type(self)._make, model, allow_import)

    @torch.no_grad()
    def forward(self, *inputs, **kw_inputs):
        """The model's own forward (any positional and keyword inputs) on the runtime layers."""
        return self.model(*inputs, **kw_inputs)


class IntegerExecutor(_Executor):
    """Integer arithmetic for every quantized layer (see :class:`lowbit.export.runtime.IntegerLayer`).

    ``source``: a prepared+calibrated model, a QuantizedModel, an Exportable or a packed file
    path. ``model``: the architecture to run (default: rebuilt from the source).
    """

    _make = staticmethod(make_integer)

    def modes(self) -> Dict[str, str]:
        """How each Conv/Linear ran: integer, float-input, float-weight, scaled-slices, inexact."""
        return {m.name: m.mode for m in self.model.modules() if isinstance(m, IntegerLayer)}


class FakeQuantExecutor(_Executor):
    """Dequantized weights and fake-quantized activations: the fake-quant model rebuilt from
    integer codes (bit-identical logits when no BN was folded)."""

    _make = staticmethod(make_dequant)
