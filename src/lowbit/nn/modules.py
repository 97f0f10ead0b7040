"""Quantized versions of Conv1d/Conv2d/Linear (and their subclasses) and Add.

``wrap_layer`` turns a layer, in place, into ``Quant<Cls>``: a subclass of the layer's own class
that adds ``weight_quantizer``, ``input_quantizer`` and optionally ``bias_quantizer``. It wraps
the *tensors* the layer uses, never its computation:

* ``forward`` fake-quantizes the input, then runs the layer's **own** ``forward`` (the class's
  ``forward``: a weight-standardized or "same"-padding convolution keeps what it adds);
* while that forward runs, ``self.weight`` and ``self.bias`` read the fake-quantized tensors;
  at every other moment they are the layer's Parameters, so ``state_dict`` keys, optimizers,
  ``layer.weight.data``, in-place edits and batch-norm folding are those of the float layer.

With every quantizer disabled the prepared layer computes exactly what the original computed.
(``torch.nn.utils.parametrize`` does the same kind of swap, but moves the Parameter to
``parametrizations.weight.original``, which would rename every key of float checkpoints.)

>>> import torch
>>> from torch import nn
>>> from lowbit.quantizers import make_quantizer, QuantizerConfig
>>> lin = nn.Linear(4, 2)
>>> wq = make_quantizer(QuantizerConfig(kind="uniform", bits=2), "weight", lin.weight.shape)
>>> wq.init_from_tensor(lin.weight)
>>> q = wrap_layer(lin, wq, None)
>>> type(q).__name__, isinstance(q.weight, nn.Parameter)   # outside forward: the Parameter
('QuantLinear', True)
>>> x = torch.randn(3, 4)
>>> torch.equal(q(x), x @ wq(q.weight).t() + q.bias)       # inside forward: quantized weight
True
"""

from __future__ import annotations

import inspect
from typing import Dict, Optional, Type

import torch
from torch import nn

from ..errors import ConfigError
from ..ops.affine import fake_quantize_bias
from ..quantizers.base import Quantizer
from .layers import Add

#: the classes whose ``forward`` is the plain convolution / matrix product
BASE_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Linear)


def base_layer_class(cls: type) -> Optional[type]:
    """The torch class (Conv1d, Conv2d or Linear) that ``cls`` derives from, if any."""
    return next((b for b in BASE_LAYERS if issubclass(cls, b)), None)


def has_own_forward(cls: type) -> bool:
    """Whether a Conv/Linear subclass replaces the plain ``forward`` of its torch base class."""
    base = base_layer_class(cls)
    return base is not None and cls.forward is not base.forward


def _tensor_property(name: str) -> property:
    def get(self):
        active = self.__dict__.get("_lowbit_active")
        if active is not None:  # inside forward: the fake-quantized tensor
            active["read"].add(name)
            return active[name]
        try:
            return self._parameters[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no {name!r}") from None

    return property(get, doc=f"The layer's {name}: fake-quantized while ``forward`` runs, "
                              "the Parameter otherwise.")


class QuantMixin:
    """Adds fake quantization of inputs, weights and biases to a Conv/Linear (sub)class."""

    _lowbit_float_class: Type[nn.Module]
    weight = _tensor_property("weight")
    bias = _tensor_property("bias")

    def quantized_weight(self) -> torch.Tensor:
        w, wq = self._parameters["weight"], self.weight_quantizer
        return w if wq is None else wq(w)

    def quantized_bias(self) -> Optional[torch.Tensor]:
        b = self._parameters.get("bias")
        if b is not None and self.int_bias_active():
            return fake_quantize_bias(b, self.accumulator_scale())
        bq: Optional[Quantizer] = self.bias_quantizer
        return b if (bq is None or b is None) else bq(b)

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

    def _quantize_input(self, args, kwargs):
        aq = self.input_quantizer
        if aq is None:
            return args, kwargs
        if args:
            return (aq(args[0]),) + tuple(args[1:]), kwargs
        name = _input_name(self._lowbit_float_class)
        if name in kwargs:
            kwargs = dict(kwargs, **{name: aq(kwargs[name])})
        return args, kwargs

    def forward(self, *args, **kwargs):
        args, kwargs = self._quantize_input(args, kwargs)
        active = {"weight": self.quantized_weight(), "bias": self.quantized_bias(), "read": set()}
        outer = self.__dict__.get("_lowbit_active")
        self.__dict__["_lowbit_active"] = active
        try:
            out = self._lowbit_float_class.forward(self, *args, **kwargs)
        finally:
            self.__dict__["_lowbit_active"] = outer
        wq = self.weight_quantizer
        if "weight" not in active["read"] and wq is not None and wq.enabled:
            raise ConfigError(
                f"{self._lowbit_float_class.__name__}.forward never reads self.weight, so lowbit "
                "cannot quantize its weight; exclude this layer (quant.exclude) or make its "
                "forward use self.weight")
        return out

    def __reduce_ex__(self, protocol):
        # the Quant<Cls> classes are made at run time, so pickle cannot find them by name:
        # pickle the float class (importable) and make its quantized class again on load
        return _rebuild_quant, (self._lowbit_float_class,), self.__getstate__()


_INPUT_NAMES: Dict[type, str] = {}


def _input_name(cls: type) -> str:
    """The name of the first argument of ``cls.forward`` after ``self`` (e.g. ``input``)."""
    if cls not in _INPUT_NAMES:
        params = list(inspect.signature(cls.forward).parameters)
        _INPUT_NAMES[cls] = params[1] if len(params) > 1 else "input"
    return _INPUT_NAMES[cls]


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


def check_wrappable(name: str, module: nn.Module) -> None:
    """Refuse, by name and with the reason, a layer whose tensors lowbit cannot wrap."""
    cls = type(module)
    what = f"layer {name!r} ({cls.__name__})"
    if torch.nn.utils.parametrize.is_parametrized(module):
        raise ConfigError(f"{what} computes its weight with torch.nn.utils.parametrize; lowbit "
                          "quantizes the Parameters a layer owns: call torch.nn.utils.parametrize."
                          "remove_parametrizations(layer, 'weight') first, or exclude the layer")
    for attr in ("weight", "bias"):
        if any(attr in vars(c) for c in cls.__mro__ if c not in (nn.Module, object)):
            raise ConfigError(f"{what} defines {attr!r} as a class attribute or property; lowbit "
                              "can only quantize a weight and bias held as Parameters; exclude "
                              "the layer (quant.exclude)")
    if not isinstance(module._parameters.get("weight"), nn.Parameter):
        raise ConfigError(f"{what}: its weight is not a Parameter of the layer (a hook such as "
                          "torch.nn.utils.weight_norm computes it); remove the hook "
                          "(torch.nn.utils.remove_weight_norm) or exclude the layer")


def wrap_layer(module: nn.Module, weight_q: Optional[Quantizer], input_q: Optional[Quantizer],
               bias_q: Optional[Quantizer] = None, name: str = "") -> nn.Module:
    """Turn a Conv/Linear ``module`` (in place) into its quantized subclass."""
    check_wrappable(name, module)
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
    for key in ("lowbit_int_bias", "_lowbit_active"):
        module.__dict__.pop(key, None)
    module.__class__ = float_cls
    return module
