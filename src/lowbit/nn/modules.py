"""Quantized versions of Conv1d/Conv2d/Linear and Add, made by swapping the class in place.

A wrapped layer keeps its own parameters (same names, same tensors), so float checkpoints
and optimizers keep working; it gains ``weight_quantizer``, ``input_quantizer`` and optionally
``bias_quantizer`` submodules. ``forward`` fake-quantizes the input and the weight and calls
the original operation.
"""

from __future__ import annotations

from typing import Dict, Optional, Type

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.affine import fake_quantize_bias
from ..quantizers.base import Quantizer
from .layers import Add


class QuantMixin:
    """Adds fake quantization of inputs, weights and biases to a Conv/Linear subclass."""

    _lowbit_float_class: Type[nn.Module]

    def quantized_weight(self) -> torch.Tensor:
        wq: Optional[Quantizer] = self.weight_quantizer
        return self.weight if wq is None else wq(self.weight)

    def quantized_bias(self) -> Optional[torch.Tensor]:
        if self.bias is not None and self.int_bias_active():
            return fake_quantize_bias(self.bias, self.accumulator_scale())
        bq: Optional[Quantizer] = self.bias_quantizer
        return self.bias if (bq is None or self.bias is None) else bq(self.bias)

    def int_bias_active(self) -> bool:
        """Whether the bias is rounded to the accumulator grid now (QuantSpec.int_bias; both
        operands quantized: a phase that disables one runs with the float bias)."""
        wq, aq = self.weight_quantizer, self.input_quantizer
        return bool(getattr(self, "lowbit_int_bias", False) and wq is not None and aq is not None
                    and wq.enabled and aq.enabled)

    def accumulator_scale(self) -> torch.Tensor:
        """``s_x * s_w``: the step of the integer accumulator, ``[out]`` or a scalar."""
        s_w = self.weight_quantizer.effective_scale().reshape(-1)
        return self.input_quantizer.effective_scale().reshape(()) * s_w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_quantizer is not None:
            x = self.input_quantizer(x)
        return self._lowbit_op(x, self.quantized_weight(), self.quantized_bias())

    def _lowbit_op(self, x, w, b):
        if isinstance(self, nn.Linear):
            return F.linear(x, w, b)
        return self._conv_forward(x, w, b)

    def __reduce_ex__(self, protocol):
        # the Quant<Cls> classes are made at run time, so pickle cannot find them by name:
        # pickle the float class (importable) and make its quantized class again on load
        return _rebuild_quant, (self._lowbit_float_class,), self.__getstate__()


def _rebuild_quant(float_cls: type) -> nn.Module:
    """Unpickling of a wrapped layer: an empty instance of ``quant_class(float_cls)``
    (``torch.save(prepared_model)`` / ``copy.deepcopy`` then restore its state)."""
    return quant_class(float_cls).__new__(quant_class(float_cls))


class QuantAdd(Add):
    """Residual add whose two inputs are fake-quantized (``input_quantizers[0/1]``)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        qa, qb = self.input_quantizers
        return qa(a) + qb(b)


_CLASS_CACHE: Dict[type, type] = {}


def quant_class(float_cls: type) -> type:
    """The quantized subclass of ``float_cls`` (created once, cached)."""
    if issubclass(float_cls, Add):
        return QuantAdd
    if float_cls not in _CLASS_CACHE:
        cls = type(f"Quant{float_cls.__name__}", (QuantMixin, float_cls),
                    {"_lowbit_float_class": float_cls, "__module__": __name__})
        _CLASS_CACHE[float_cls] = cls
    return _CLASS_CACHE[float_cls]


def is_quant_layer(module: nn.Module) -> bool:
    return isinstance(module, (QuantMixin, QuantAdd))


def wrap_layer(module: nn.Module, weight_q: Optional[Quantizer], input_q: Optional[Quantizer],
               bias_q: Optional[Quantizer] = None) -> nn.Module:
    """Turn a Conv/Linear ``module`` (in place) into its quantized subclass."""
    module.__class__ = quant_class(type(module))
    module.register_module("weight_quantizer", weight_q)
    module.register_module("input_quantizer", input_q)
    module.register_module("bias_quantizer", bias_q)
    return module


def wrap_add(module: Add, quant_a: Quantizer, quant_b: Quantizer) -> nn.Module:
    """Turn an ``Add`` (in place) into :class:`QuantAdd` quantizing both inputs."""
    float_cls = type(module)
    module.__class__ = QuantAdd
    module._lowbit_float_class = float_cls
    module.input_quantizers = nn.ModuleList([quant_a, quant_b])
    return module


def unwrap_layer(module: nn.Module) -> nn.Module:
    """Undo :func:`wrap_layer` in place (quantizers are dropped)."""
    if not is_quant_layer(module):
        return module
    float_cls = module._lowbit_float_class
    for name in ("weight_quantizer", "input_quantizer", "bias_quantizer", "input_quantizers"):
        if name in module._modules:
            del module._modules[name]
    module.__dict__.pop("lowbit_int_bias", None)
    module.__class__ = float_cls
    return module
