"""RuntimeLayer: the base of the inference layers that replace a quantized Conv/Linear.

A runtime layer (integer, fake-quant or ONNX flavour) is an instance of a subclass of the
replaced layer's *own* class, made per (flavour, class) like ``prepare``'s ``Quant<Cls>``:
``IntegerConv2d``, ``DequantLinear``, ``OnnxStdConv2d``. It adopts the replaced module's
attributes, extra parameters, buffers and children, so whatever the model reads from the layer
(``stride``, ``kernel_size``, ``padding``, ``in_features``, ``weight.shape``, ...) is there,
and ``weight`` / ``bias`` are tensor attributes: the deployed (dequantized) values. ``forward``
runs the class's own forward with the runtime tensors as its weight and bias
(:meth:`RuntimeLayer.float_forward_with`), so a "same"-padding or weight-standardized
convolution keeps what it adds.

Without a module (``IntegerLayer(layer)``) the layer stands in for a plain Conv1d/Conv2d/Linear
built from the attributes :func:`lowbit.convert` recorded.

>>> import torch
>>> from lowbit import calibrate, prepare
>>> from lowbit.export import exportable
>>> from lowbit.export.runtime import DequantLayer
>>> m = prepare(torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, stride=2)))
>>> calibrate(m, [torch.randn(2, 2, 8, 8)])
>>> rt = DequantLayer(exportable(m, example_input=torch.zeros(1, 2, 8, 8)).quantized.layers["0"])
>>> type(rt).__name__, rt.stride, rt.kernel_size, tuple(rt.weight.shape)
('DequantConv2d', (2, 2), (3, 3), (4, 2, 3, 3))
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
from torch import nn

from ..errors import ConfigError
from ..nn.convert import QuantizedLayer
from ..nn.modules import has_own_forward, is_quant_layer
from ..nn.prepare import QUANTIZER_SLOTS

OP_CLASSES = {"conv1d": nn.Conv1d, "conv2d": nn.Conv2d, "linear": nn.Linear}
_MODULE_KEYS = frozenset(vars(nn.Module()))  # what nn.Module.__init__ sets up itself
_NOT_ADOPTED = frozenset({"_lowbit_active", "lowbit_int_bias"})
_BASE_NAMES = ("name", "op", "attrs", "own_forward", "runtime_weight", "runtime_bias")


def float_class(module: nn.Module) -> type:
    """The user's class of a float or prepared layer."""
    return module._lowbit_float_class if is_quant_layer(module) else type(module)


def stand_in(layer: QuantizedLayer) -> nn.Module:
    """A plain Conv1d/Conv2d/Linear (on the meta device) with the attributes of ``layer``."""
    a = layer.attrs
    w = layer.weight_codes if layer.weight_codes is not None else layer.weight_float
    with torch.device("meta"):
        if layer.op == "linear":
            return nn.Linear(a["in_features"], a["out_features"], bias=False)
        pad = a["padding"] if isinstance(a["padding"], str) else tuple(a["padding"])
        return OP_CLASSES[layer.op](
            w.shape[1] * a["groups"], w.shape[0], tuple(w.shape[2:]), stride=tuple(a["stride"]),
            padding=pad, dilation=tuple(a["dilation"]), groups=a["groups"], bias=False,
            padding_mode=a["padding_mode"])


_CLASSES: Dict[Tuple[type, type], type] = {}


def runtime_class(kind: type, base: type) -> type:
    """The ``kind`` (IntegerLayer, DequantLayer, OnnxLayer) subclass of ``base`` (cached)."""
    if "_runtime_float_class" in vars(kind):
        return kind
    if (kind, base) not in _CLASSES:
        name = kind.__name__.replace("Layer", "") + base.__name__
        _CLASSES[(kind, base)] = type(name, (kind, base), {"_runtime_float_class": base,
                                                           "__module__": kind.__module__})
    return _CLASSES[(kind, base)]


class RuntimeLayer(nn.Module):
    """Base class; flavours call :meth:`_adopt` first in ``__init__`` (see module docstring)."""

    _runtime_float_class: type = nn.Module
    _own_names: Tuple[str, ...] = ()  # attributes a flavour sets (checked against the class's)

    def __new__(cls, layer: Optional[QuantizedLayer] = None, *args, module=None, **kwargs):
        if layer is None or "_runtime_float_class" in vars(cls):  # copy / unpickle
            return super().__new__(cls)
        base = float_class(module) if module is not None else OP_CLASSES[layer.op]
        return super().__new__(runtime_class(cls, base))

    weight = property(lambda self: self._runtime_tensor("weight"),
                      doc="The deployed weight (dequantized); during forward what it runs with.")
    bias = property(lambda self: self._runtime_tensor("bias"),
                    doc="The deployed bias (or None); during forward what it runs with.")

    def _adopt(self, layer: QuantizedLayer, module: Optional[nn.Module]) -> None:
        """Take over ``module``'s attributes, extra parameters, buffers and children."""
        module = stand_in(layer) if module is None else module
        nn.Module.__init__(self)
        attrs = {k: v for k, v in vars(module).items() if k not in _MODULE_KEYS | _NOT_ADOPTED}
        params = {k: p for k, p in module._parameters.items() if k not in ("weight", "bias")}
        children = {k: m for k, m in module._modules.items() if k not in QUANTIZER_SLOTS}
        clash = sorted((set(attrs) | set(params) | set(module._buffers) | set(children))
                       & set(_BASE_NAMES + self._own_names))
        if clash:
            raise ConfigError(f"layer {layer.name!r} ({float_class(module).__name__}) has "
                              f"attribute(s) {', '.join(clash)}, names lowbit's runtime layer "
                              "uses itself; rename them in your class to run or export it")
        self.__dict__.update(attrs)
        self._parameters.update(params)
        self._buffers.update(module._buffers)
        self._non_persistent_buffers_set.update(module._non_persistent_buffers_set)
        self._modules.update(children)
        self.name, self.op, self.attrs = layer.name, layer.op, dict(layer.attrs)
        self.own_forward = has_own_forward(self._runtime_float_class)

    def _runtime_buffer(self, name: str, value: Optional[torch.Tensor]) -> None:
        self.register_buffer(f"runtime_{name}", value, persistent=False)

    def _runtime_tensor(self, name: str) -> Optional[torch.Tensor]:
        override = self.__dict__.get("_runtime_override")
        if override is not None:
            return override[name]
        return self._buffers.get(f"runtime_{name}")

    def float_forward(self, x, *args, **kwargs):
        """The replaced class's own forward, with this layer's ``weight`` and ``bias``."""
        return self._runtime_float_class.forward(self, x, *args, **kwargs)

    def float_forward_with(self, x, weight, bias, *args, **kwargs):
        """The replaced class's own forward with ``weight`` and ``bias`` as its tensors."""
        outer = self.__dict__.get("_runtime_override")
        self.__dict__["_runtime_override"] = {"weight": weight, "bias": bias}
        try:
            return self._runtime_float_class.forward(self, x, *args, **kwargs)
        finally:
            self.__dict__["_runtime_override"] = outer
