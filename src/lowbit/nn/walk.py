"""Walk a prepared model: its quantized layers and their quantizers.

>>> from torch import nn
>>> from lowbit import prepare, QuantSpec, QuantizerConfig
>>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 30 * 30, 10))
>>> qmodel = prepare(model, QuantSpec(weight=QuantizerConfig(bits=4), act=QuantizerConfig(bits=4)))
>>> [name for name, _ in quant_layers(qmodel)]
['0', '3']
"""

from __future__ import annotations

from typing import Dict, Iterator, Optional, Tuple

from torch import nn

from ..quantizers.base import Quantizer
from .modules import QuantAdd, QuantMixin, is_quant_layer


def set_module(root: nn.Module, name: str, new: nn.Module) -> None:
    """Replace the submodule at the dotted ``name`` of ``root`` by ``new``."""
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, new)


def quant_layers(model: nn.Module) -> Iterator[Tuple[str, nn.Module]]:
    """(name, module) of every wrapped layer, in registration order."""
    for name, mod in model.named_modules():
        if is_quant_layer(mod):
            yield name, mod


def quantizers(model: nn.Module, role: Optional[str] = None) -> Iterator[Tuple[str, Quantizer]]:
    """(qualified name, quantizer) of every quantizer, optionally only ``weight`` or ``act``."""
    for name, mod in model.named_modules():
        if isinstance(mod, Quantizer) and (role is None or mod.role == role):
            yield name, mod


def weight_quantizers(model: nn.Module) -> Iterator[Tuple[str, nn.Module, Quantizer]]:
    """(layer name, layer, weight quantizer) for wrapped Conv/Linear layers with one."""
    for name, mod in quant_layers(model):
        if isinstance(mod, QuantMixin) and mod.weight_quantizer is not None:
            yield name, mod, mod.weight_quantizer


def act_quantizers(model: nn.Module) -> Iterator[Tuple[str, Quantizer]]:
    """(layer name, activation quantizer) for every quantized layer input and residual input."""
    for name, mod in quant_layers(model):
        if isinstance(mod, QuantAdd):
            for i, q in enumerate(mod.input_quantizers):
                yield f"{name}[{i}]", q
        elif mod.input_quantizer is not None:
            yield name, mod.input_quantizer


def quant_summary(model: nn.Module) -> Dict[str, Dict[str, object]]:
    """Per wrapped layer: type and the weight/input quantizer descriptions (for printing)."""
    out = {}
    for name, mod in quant_layers(model):
        if isinstance(mod, QuantAdd):
            out[name] = {"type": "Add", "inputs": [q.extra_repr() for q in mod.input_quantizers]}
        else:
            out[name] = {"type": mod._lowbit_float_class.__name__,
                         "weight": mod.weight_quantizer.extra_repr() if mod.weight_quantizer else "float",
                         "input": mod.input_quantizer.extra_repr() if mod.input_quantizer else "float"}
    return out
