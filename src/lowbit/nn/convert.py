"""convert(model): integer weights, scales and zero points per layer (a QuantizedModel).

The QuantizedModel is everything export writes and the executors run: exporters read it and
never the quantizer modules. Each QParams carries what its quantizer knows (rounding, whether
a zero point is stored). With ``fold_bn=True`` every batch norm that directly follows a
Conv/Linear is folded, found with one hooked forward pass: after a quantized layer into its
per-output-channel weight scales and its bias (integer codes untouched), after an unquantized
layer into its float weight and bias (``fold_structure``, as :func:`lowbit.account` counts).

>>> import torch
>>> from torch import nn
>>> from lowbit import prepare, calibrate
>>> m = prepare(nn.Sequential(nn.Linear(4, 3)))
>>> calibrate(m, [torch.randn(8, 4)])
>>> qm = convert(m)
>>> qm.layers["0"].weight_codes.dtype
torch.int32
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch
from torch import nn

from ..errors import ConfigError
from ..quantizers.base import QParams, dequantize_codes
from ..quantizers.granularity import Granularity
from .graph import bn_factors, find_bn_pairs, fold_affine, fold_bias
from .modules import QuantAdd
from .walk import quant_layers


@dataclass
class QuantizedLayer:
    """One quantized layer: integer weight codes + qparams, bias, and input qparams."""

    name: str
    op: str                                   # conv1d | conv2d | linear | add
    attrs: Dict[str, Any]
    weight_codes: Optional[torch.Tensor] = None
    weight_qparams: Optional[QParams] = None
    weight_float: Optional[torch.Tensor] = None  # weight left in float by the spec
    bias: Optional[torch.Tensor] = None
    bias_codes: Optional[torch.Tensor] = None
    bias_qparams: Optional[QParams] = None
    input_qparams: List[Optional[QParams]] = field(default_factory=list)
    folded_bn: Optional[str] = None

    def dequantized_weight(self) -> torch.Tensor:
        if self.weight_codes is None:
            return self.weight_float
        return dequantize_codes(self.weight_codes, self.weight_qparams)

    def dequantized_bias(self) -> Optional[torch.Tensor]:
        if self.bias_codes is not None:
            return dequantize_codes(self.bias_codes, self.bias_qparams)
        return self.bias


@dataclass
class QuantizedModel:
    """All quantized layers of a model plus the float state of everything else."""

    layers: Dict[str, QuantizedLayer]
    float_state: Dict[str, torch.Tensor]
    arch: Optional[Dict[str, Any]] = None
    quant_spec: Optional[Dict[str, Any]] = None
    folded_bn: List[str] = field(default_factory=list)  # BNs folded into quantized layers
    # (layer, bn) pairs whose BN was folded into the layer's float weight and bias: before
    # training (lowbit.fold_batchnorm) or, with fold_bn, after an unquantized Conv/Linear
    fold_structure: List[List[str]] = field(default_factory=list)
    fold_bn: bool = False

    def summary(self) -> List[Dict[str, Any]]:
        rows = []
        for name, layer in self.layers.items():
            qp = layer.weight_qparams
            rows.append({"name": name, "op": layer.op,
                         "weight_bits": None if qp is None else qp.bits.tolist(),
                         "input_bits": [None if q is None else q.max_bits for q in layer.input_qparams]})
        return rows


def layer_attrs(mod: nn.Module) -> Dict[str, Any]:
    """The attributes of a Conv/Linear that convert records (and a rebuild checks)."""
    if isinstance(mod, nn.Linear):
        return {"in_features": mod.in_features, "out_features": mod.out_features}
    pad = mod.padding if isinstance(mod.padding, str) else list(mod.padding)
    return {"stride": list(mod.stride), "padding": pad, "dilation": list(mod.dilation),
            "groups": mod.groups, "padding_mode": mod.padding_mode}


def _qparams(q, x: Optional[torch.Tensor] = None) -> QParams:
    """``q.qparams(x)`` completed with what only the module knows (rounding, stored zero point)."""
    return dataclasses.replace(q.qparams(x), rounding=q.rounding,
                               stored_zero_point=bool(q.has_zero_point()))


def _act_qparams(q) -> Optional[QParams]:
    if q is None or not q.enabled:
        return None
    return _qparams(q)


def _convert_layer(name: str, mod: nn.Module) -> QuantizedLayer:
    if isinstance(mod, QuantAdd):
        return QuantizedLayer(name, "add", {}, input_qparams=[_act_qparams(q) for q in mod.input_quantizers])
    op = "linear" if isinstance(mod, nn.Linear) else ("conv1d" if isinstance(mod, nn.Conv1d) else "conv2d")
    layer = QuantizedLayer(name, op, layer_attrs(mod), input_qparams=[_act_qparams(mod.input_quantizer)])
    wq, w = mod.weight_quantizer, mod.weight.detach()
    if wq is not None and wq.enabled:
        layer.weight_codes, layer.weight_qparams = wq.quantize(w), _qparams(wq, w)
    else:
        layer.weight_float = w.clone()
    if mod.bias is not None:
        bq = mod.bias_quantizer
        if mod.int_bias_active():  # floats on the int32 accumulator grid: exact in every runtime
            layer.bias = mod.quantized_bias().detach().clone()
        elif bq is not None and bq.enabled:
            b = mod.bias.detach()
            layer.bias_codes, layer.bias_qparams = bq.quantize(b), _qparams(bq, b)
        else:
            layer.bias = mod.bias.detach().clone()
    return layer


@torch.no_grad()
def convert(model: nn.Module, *, fold_bn: bool = False,
            example_input: Optional[torch.Tensor] = None) -> QuantizedModel:
    """Integer codes and quantization parameters of every quantized layer of ``model``.

    ``fold_bn``: fold batch norms that directly follow a Conv/Linear (see the module
    docstring); needs ``example_input`` (a tensor, tuple or dict) unless the model comes from
    the registry. Raises ConfigError if an enabled quantizer was never calibrated, or if
    quantized weights cannot absorb a batch norm (log2, per-column scales).
    """
    layers = {name: _convert_layer(name, mod) for name, mod in quant_layers(model)}
    if not layers:
        raise ConfigError("the model has no quantized layers; call lowbit.prepare(model, spec) first")
    qm = QuantizedModel(layers, _float_state(model), getattr(model, "lowbit_spec", None),
                        _spec_dict(model), fold_bn=fold_bn,
                        fold_structure=[list(p) for p in getattr(model, "lowbit_folded_pairs", [])])
    if fold_bn:
        _fold(qm, model, example_input)
    return qm


def _float_state(model: nn.Module) -> Dict[str, torch.Tensor]:
    """Every tensor of the state dict but quantized layers' weights, biases and quantizers."""
    skip = set()
    for name, mod in quant_layers(model):
        for key in mod.state_dict(keep_vars=True):
            if key.split(".")[0] in ("weight", "bias") or "quantizer" in key:
                skip.add(f"{name}.{key}")
    return {k: v.detach().clone() for k, v in model.state_dict().items()
            if k not in skip and "quantizer" not in k and isinstance(v, torch.Tensor)}


def _spec_dict(model: nn.Module) -> Optional[Dict[str, Any]]:
    spec = getattr(model, "lowbit_quant_spec", None)
    return spec.to_dict() if spec is not None else None


def _fold(qm: QuantizedModel, model: nn.Module, example_input) -> None:
    """Fold every BN that follows a Conv/Linear: into the quantized layer, else into the float
    weight and bias in ``qm.float_state``; the BN's own state leaves the float state."""
    modules = dict(model.named_modules())
    pairs = find_bn_pairs(model, example_input)
    for layer_name, bn_name in pairs:
        layer = qm.layers.get(layer_name)
        if layer is None or layer.op == "add":
            continue
        fold_into_layer(layer, *bn_factors(modules[bn_name]))
        layer.folded_bn = bn_name
        qm.folded_bn.append(bn_name)
    _drop_state(qm.float_state, qm.folded_bn)
    state = qm.float_state
    for layer_name, bn_name in pairs:
        if layer_name in qm.layers or bn_name in qm.folded_bn:
            continue
        state[f"{layer_name}.weight"], state[f"{layer_name}.bias"] = fold_affine(
            state[f"{layer_name}.weight"], state.get(f"{layer_name}.bias"), *bn_factors(modules[bn_name]))
        _drop_state(state, [bn_name])
        qm.fold_structure.append([layer_name, bn_name])


def _drop_state(state: Dict[str, torch.Tensor], modules: List[str]) -> None:
    for key in [k for k in state if any(k.startswith(m + ".") for m in modules)]:
        del state[key]


def fold_into_layer(layer: QuantizedLayer, mult: torch.Tensor, offset: torch.Tensor) -> None:
    """Absorb ``y * mult + offset`` (per output channel) into a layer's weight scales and bias."""
    out_ch = mult.shape[0]
    bias = layer.dequantized_bias()
    layer.bias_codes = layer.bias_qparams = None
    if layer.weight_codes is None:
        layer.weight_float, layer.bias = fold_affine(layer.weight_float, bias, mult, offset)
        return
    layer.bias = fold_bias(bias, mult, offset)
    qp = layer.weight_qparams
    if qp.kind != "affine":
        raise ConfigError(f"{layer.name}: cannot fold batch norm into {qp.kind} weights; "
                          "fold before training (lowbit.fold_batchnorm) instead")
    if qp.granularity.mode == "channel" and qp.granularity.axis != 0:
        raise ConfigError(f"{layer.name}: per-column weight scales cannot absorb a per-output "
                          "batch norm; use per-channel (axis 0) or per-tensor weights")
    layer.weight_qparams = _scaled_qparams(qp, mult, out_ch)


def _scaled_qparams(qp: QParams, mult: torch.Tensor, out_ch: int) -> QParams:
    if qp.granularity.mode == "group":
        scale = qp.scale * mult.reshape(-1, 1)
        expand = lambda t: t  # noqa: E731
        gran = qp.granularity
    else:
        expand = lambda t: t.reshape(-1).expand(out_ch).clone() if t.numel() == 1 else t  # noqa: E731
        scale = expand(qp.scale) * mult
        gran = Granularity("channel", 0)
    return dataclasses.replace(qp, scale=scale, zero_point=expand(qp.zero_point), qmin=expand(qp.qmin),
                               qmax=expand(qp.qmax), bits=expand(qp.bits), granularity=gran,
                               extra=dict(qp.extra))
