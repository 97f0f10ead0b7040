"""Exportable: a converted model plus everything needed to rebuild and run it.

Every writer (packed, ONNX, QONNX) and both executors take an :class:`Exportable`; the packed
loader returns one. :func:`exportable` makes one from a prepared and calibrated model:

1. ``convert(model, fold_bn=...)`` gives everything quantized: integer codes and complete
   QParams per layer, the float state with every BN that follows a Conv/Linear folded away
   (see :mod:`lowbit.nn.convert`). Writers and executors read only this, never the
   quantizer modules;
2. the architecture reference: the registry spec (``model.lowbit_spec``), a recipe's model
   factory, or, for a user's own module, ``"package.module:Class"`` with optional constructor
   kwargs; and the example input's shape.

>>> import torch
>>> from lowbit import calibrate, prepare
>>> from lowbit.models import create_model
>>> model = prepare(create_model("mlp", hidden=16))
>>> calibrate(model, [torch.randn(8, 1, 28, 28)])
>>> ex = exportable(model)
>>> list(ex.quantized.layers), ex.model_ref["source"], ex.input_shape
(['fc1', 'fc2'], 'registry', [1, 1, 28, 28])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch
from torch import nn

from ..errors import ConfigError
from ..models.user import factory_reference
from ..nn.convert import QuantizedModel, convert
from ..nn.graph import example_input_for
from ..nn.layers import ScalarLayer
from ..nn.inputs import first_tensor, inputs_to
from ..quantizers.base import QParams
from .rebuild import build_base


@dataclass
class Exportable:
    """A QuantizedModel with its architecture reference and input shape.

    ``int_state``: non-float buffers (e.g. ``num_batches_tracked``), kept in the manifest.
    Rebuilding replaces the BNs of ``quantized.fold_structure`` and ``quantized.folded_bn`` by
    Identity (see :mod:`lowbit.export.rebuild`).
    """

    quantized: QuantizedModel
    model_ref: Dict[str, Any]
    input_shape: List[int] = field(default_factory=list)
    int_state: Dict[str, torch.Tensor] = field(default_factory=dict)
    data: Optional[Dict[str, Any]] = None
    model: Optional[nn.Module] = field(default=None, repr=False)  # live source, never saved
    example: Any = field(default=None, repr=False)  # live example input (any form), never saved

    @property
    def fold_bn(self) -> bool:
        """Whether convert folded batch norms (``quantized.fold_bn``)."""
        return self.quantized.fold_bn

    @property
    def fold_structure(self) -> List[List[str]]:
        """(layer, batch norm) pairs folded into float weights (``quantized.fold_structure``)."""
        return self.quantized.fold_structure

    def example_input(self):
        """The example input it was made with (a tensor, tuple or dict; on the CPU), else zeros
        of ``input_shape``."""
        if self.example is not None:
            return inputs_to(self.example, torch.device("cpu"))
        return torch.zeros(self.input_shape or [1])

    def base_model(self, model: Optional[nn.Module] = None, allow_import: bool = False) -> nn.Module:
        """The float architecture with BNs folded away (see :mod:`lowbit.export.rebuild`)."""
        return build_base(self, model, allow_import)


def model_reference(model: nn.Module, module_kwargs: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """``{"source": "factory", "factory": ..., "args": ...}`` (built by a recipe's model
    factory), ``{"source": "registry", "arch": spec}`` or ``{"source": "module", "class": ...,
    "kwargs": ...}``."""
    factory = factory_reference(model)
    if factory and module_kwargs is None:
        return {"source": "factory", **factory}
    spec = getattr(model, "lowbit_spec", None)
    if isinstance(spec, dict) and module_kwargs is None:
        return {"source": "registry", "arch": spec}
    cls = type(model)
    ref = {"source": "module", "class": f"{cls.__module__}:{cls.__qualname__}",
           "kwargs": None if module_kwargs is None else dict(module_kwargs)}
    scalar = getattr(model, "scalar_layer", None)
    if isinstance(scalar, ScalarLayer):
        ref["scalar_layer"] = float(scalar.scale.detach())  # rebuilt by construct; the value is in the state
    return ref


def _cpu(qp: Optional[QParams]) -> Optional[QParams]:
    if qp is None:
        return None
    extra = {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in qp.extra.items()}
    return dataclasses.replace(qp, scale=qp.scale.detach().cpu(), zero_point=qp.zero_point.detach().cpu(),
                               qmin=qp.qmin.cpu(), qmax=qp.qmax.cpu(), bits=qp.bits.cpu(), extra=extra)


def to_cpu(qm: QuantizedModel) -> QuantizedModel:
    """A copy of ``qm`` with every tensor on the CPU (exports work on CPU tensors)."""
    t = lambda v: None if v is None else v.detach().cpu()  # noqa: E731
    layers = {name: dataclasses.replace(
        l, weight_codes=t(l.weight_codes), weight_qparams=_cpu(l.weight_qparams),
        weight_float=t(l.weight_float), bias=t(l.bias), bias_codes=t(l.bias_codes),
        bias_qparams=_cpu(l.bias_qparams), input_qparams=[_cpu(q) for q in l.input_qparams])
        for name, l in qm.layers.items()}
    return dataclasses.replace(qm, layers=layers, float_state={k: t(v) for k, v in qm.float_state.items()},
                               folded_bn=list(qm.folded_bn),
                               fold_structure=[list(p) for p in qm.fold_structure])


def _split_state(qm: QuantizedModel) -> Dict[str, torch.Tensor]:
    ints = {k: v for k, v in qm.float_state.items() if not v.is_floating_point()}
    qm.float_state = {k: v.float() for k, v in qm.float_state.items() if v.is_floating_point()}
    return ints


def exportable(source, *, fold_bn: bool = True, example_input=None,
               module_kwargs: Optional[Dict[str, Any]] = None,
               data: Optional[Dict[str, Any]] = None) -> Exportable:
    """An :class:`Exportable` from a prepared+calibrated model, a QuantizedModel or an Exportable.

    ``example_input``: one batch (a tensor, a tuple of positional inputs or a dict of keyword
    inputs); registry models build one themselves.

    Raises ConfigError for models that were never prepared or calibrated (from ``convert``).
    A QuantizedModel exports exactly as the model it was converted from (``fold_bn`` and
    ``example_input`` are then convert's); only registry architectures (``qm.arch``) can be
    rebuilt from it.
    """
    if isinstance(source, Exportable):
        return source
    if isinstance(source, QuantizedModel):
        source = to_cpu(source)
        ref = {"source": "registry", "arch": source.arch} if source.arch else {"source": "unknown"}
        shape = [1, source.arch["in_channels"], source.arch["input_size"], source.arch["input_size"]] \
            if source.arch else []
        return Exportable(source, ref, shape, _split_state(source), data)
    if not isinstance(source, nn.Module):
        raise ConfigError(f"cannot export a {type(source).__name__}; pass a prepared nn.Module, "
                          "a QuantizedModel or a lowbit.export.Exportable")
    model = source
    x = example_input_for(model, example_input)
    qm = to_cpu(convert(model, fold_bn=fold_bn, example_input=x))
    return Exportable(qm, model_reference(model, module_kwargs), list(first_tensor(x).shape),
                      _split_state(qm), data, model, x)
