"""Size accounting: packed weight bits, quantization overhead, biases, activation bits.

Read-only: it measures a model, it never changes one. The storage rules here are the ones the
packed exporter writes, so ``size_bytes_packed`` equals the packed file's size minus its header:

* weight codes: ``ceil(sum_s bits_s * n_s / 8)`` bytes per layer (one bit stream per layer);
* per slice (tensor, channel or group): a float32 scale (4 bytes), a float32 zero point when the
  quantizer is asymmetric, and a uint8 bit-width when slices differ in bits;
* each activation quantizer: a float32 scale (and zero point when asymmetric);
* biases: float32 unless a bias quantizer is configured (then packed like weights);
* every other tensor needed at inference (unfolded batch norms, unquantized layers): float32.

Activation memory follows Schaefer et al., eq. 2: the feature map entering every Conv/Linear (both
inputs of residual adds), elements x bits, summed over layers (``act_bits_total``) and its
maximum (``act_bits_max``); unquantized inputs count 32 bits.

>>> import torch
>>> from torch import nn
>>> from lowbit import prepare, QuantSpec, QuantizerConfig
>>> m = prepare(nn.Sequential(nn.Linear(10, 4)), QuantSpec(
...     weight=QuantizerConfig(kind="uniform", bits=4), act=QuantizerConfig(kind="uniform", bits=8, signed=True)))
>>> cost = account(m, torch.zeros(1, 10))
>>> cost.layers[0].weight_bits, cost.size_bytes_packed    # 40*4 bits; 20 + 4 scale + 4 act scale + 16 bias
(160, 44)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

import torch
from torch import nn

from .nn.control import quantizers_disabled
from .nn.graph import example_input_for, find_bn_pairs
from .nn.inputs import first_tensor, model_device, run_model
from .nn.layers import Add
from .nn.modules import QuantAdd, QuantMixin
from .nn.resolve import UNSUPPORTED
from .quantizers.base import Quantizer

FLOAT_BITS = 32
SCALE_BYTES = 4
ZERO_POINT_BYTES = 4
BITS_FIELD_BYTES = 1
_LAYER_TYPES = (nn.Conv1d, nn.Conv2d, nn.Linear)

__all__ = ["account", "LayerCost", "ModelCost", "tensor_storage_bytes", "FLOAT_BITS"]


def tensor_storage_bytes(bits: torch.Tensor, per_slice: int, has_zero_point: bool) -> Dict[str, int]:
    """Bytes to store a quantized tensor: packed codes and per-slice overhead.

    >>> tensor_storage_bytes(torch.tensor([4, 2]), per_slice=9, has_zero_point=True)
    {'codes': 7, 'scale': 8, 'zero_point': 8, 'bits': 2}
    """
    bits = bits.reshape(-1)
    slices = bits.numel()
    mixed = slices > 1 and bool((bits != bits[0]).any())
    return {"codes": (int(bits.sum()) * per_slice + 7) // 8, "scale": SCALE_BYTES * slices,
            "zero_point": ZERO_POINT_BYTES * slices if has_zero_point else 0,
            "bits": BITS_FIELD_BYTES * slices if mixed else 0}


@dataclass
class LayerCost:
    """Cost of one Conv/Linear/Add layer (bits and bytes, activations for one input)."""

    name: str
    op: str
    params: int
    bias_params: int
    bits: List[int]                 # weight bits per slice ([32] when float)
    weight_bits: int                # packed code bits: sum over slices of bits x elements
    weight_bytes: int
    overhead_bytes: int             # scales, zero points, per-slice bit-widths, act qparams
    bias_bytes: int
    act_elements: List[int]         # elements of each input feature map (per sample)
    act_bits_each: List[int]        # bit-width of each input (32 when float)
    folded_bn: Optional[str] = None

    @property
    def act_bits(self) -> int:
        return sum(e * b for e, b in zip(self.act_elements, self.act_bits_each))

    @property
    def total_bytes(self) -> int:
        return self.weight_bytes + self.overhead_bytes + self.bias_bytes


@dataclass
class ModelCost:
    """Totals over layers plus the float tensors stored beside them."""

    layers: List[LayerCost]
    other_float_bytes: int
    float32_bytes: int
    input_shape: List[int] = field(default_factory=list)
    float_modules: List[Dict[str, object]] = field(default_factory=list)  # see float_modules()

    @property
    def weight_bits_total(self) -> int:
        return sum(l.weight_bits for l in self.layers)

    @property
    def act_bits_total(self) -> int:
        return sum(l.act_bits for l in self.layers)

    @property
    def act_bits_max(self) -> int:
        return max((l.act_bits for l in self.layers), default=0)

    @property
    def size_bytes_packed(self) -> int:
        return sum(l.total_bytes for l in self.layers) + self.other_float_bytes

    @property
    def compression(self) -> float:
        return self.float32_bytes / max(self.size_bytes_packed, 1)

    def to_dict(self) -> Dict[str, object]:
        layers = []
        for l in self.layers:
            d = asdict(l)
            d["act_bits"], d["total_bytes"] = l.act_bits, l.total_bytes
            layers.append(d)
        return {"layers": layers, "weight_bits_total": self.weight_bits_total,
                "act_bits_total": self.act_bits_total, "act_bits_max": self.act_bits_max,
                "size_bytes_packed": self.size_bytes_packed, "other_float_bytes": self.other_float_bytes,
                "float32_bytes": self.float32_bytes, "compression": self.compression,
                "input_shape": self.input_shape, "float_modules": self.float_modules}


def _act_storage(q: Optional[Quantizer]):
    """(bits, overhead bytes) of an activation quantizer; float inputs cost 32 bits, no overhead."""
    if q is None or not q.enabled:
        return FLOAT_BITS, 0
    bits, has_zp = q.storage()
    return int(bits.max()), SCALE_BYTES + (ZERO_POINT_BYTES if has_zp else 0)


def _weight_storage(q: Optional[Quantizer], w: torch.Tensor):
    """(bits per slice, code bits, bytes of codes, overhead bytes)."""
    if q is None or not q.enabled:
        return [FLOAT_BITS], FLOAT_BITS * w.numel(), 4 * w.numel(), 0
    bits, has_zp = q.storage(w.detach())
    per_slice = q.granularity.per_param_count(w.shape)
    st = tensor_storage_bytes(bits, per_slice, has_zp)
    return (bits.reshape(-1).tolist(), int(bits.sum()) * per_slice, st["codes"],
            st["scale"] + st["zero_point"] + st["bits"])


def input_sizes(model: nn.Module, x) -> Dict[str, List[int]]:
    """Per-sample element count of each input of every Conv/Linear/Add, from one forward pass.

    >>> input_sizes(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), torch.zeros(2, 4))
    {'0': [4], '2': [3]}
    """
    sizes: Dict[str, List[int]] = {}
    batch = max(first_tensor(x).shape[0], 1)

    def record(name: str, args) -> None:  # a pre-hook must return None to keep its input
        sizes.setdefault(name, [a.numel() // batch for a in args if isinstance(a, torch.Tensor)])

    handles = []
    for name, mod in model.named_modules():
        if isinstance(mod, _LAYER_TYPES + (Add,)):
            handles.append(mod.register_forward_pre_hook(lambda m, args, n=name: record(n, args)))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad(), quantizers_disabled(model):
            run_model(model, x, model_device(model))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return sizes


def _folded_weight(mod: nn.Module, wq: Optional[Quantizer], cost: LayerCost) -> None:
    """Adjust a layer's cost for a batch norm folded into its scales (as convert/export do)."""
    out_ch = mod.weight.shape[0]
    cost.bias_bytes = 4 * out_ch  # folding always leaves a float bias
    if wq is None or not wq.enabled or wq.granularity.mode != "tensor":
        return
    bits, has_zp = wq.storage(mod.weight.detach())
    st = tensor_storage_bytes(bits.reshape(-1).expand(out_ch), 1, has_zp)  # now one scale per channel
    cost.overhead_bytes += st["scale"] + st["zero_point"] - SCALE_BYTES - (ZERO_POINT_BYTES if has_zp else 0)


def _layer_cost(name: str, mod: nn.Module, elems: List[int]) -> LayerCost:
    if isinstance(mod, Add):
        qs = list(mod.input_quantizers) if isinstance(mod, QuantAdd) else [None, None]
        acts = [_act_storage(q) for q in qs]
        return LayerCost(name, "add", 0, 0, [], 0, 0, sum(o for _, o in acts), 0, list(elems),
                         [b for b, _ in acts])
    wq = mod.weight_quantizer if isinstance(mod, QuantMixin) else None
    aq = mod.input_quantizer if isinstance(mod, QuantMixin) else None
    bq = mod.bias_quantizer if isinstance(mod, QuantMixin) else None
    bits, wbits, wbytes, overhead = _weight_storage(wq, mod.weight)
    abits, aover = _act_storage(aq)
    bias_bytes, nb = 0, 0
    if mod.bias is not None:
        nb = mod.bias.numel()
        _, _, bias_bytes, bover = _weight_storage(bq, mod.bias)
        bias_bytes += bover
    op = "linear" if isinstance(mod, nn.Linear) else ("conv1d" if isinstance(mod, nn.Conv1d) else "conv2d")
    return LayerCost(name, op, mod.weight.numel(), nb, bits, wbits, wbytes, overhead + aover,
                     bias_bytes, list(elems[:1]), [abits])


def _float_bytes(model: nn.Module, skip_prefixes: List[str], skip_keys: set) -> int:
    total = 0
    for key, t in model.state_dict().items():
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or "quantizer" in key:
            continue
        if key in skip_keys or any(key.startswith(p) for p in skip_prefixes):
            continue
        total += 4 * t.numel()
    return total


def account(model: nn.Module, example_input=None, *,
            fold_bn: bool = False) -> ModelCost:
    """Measure ``model`` (float or prepared) for one input of ``example_input``'s shape
    (a tensor, or a tuple / dict of inputs, see :mod:`lowbit.nn.inputs`).

    ``fold_bn`` counts batch norms that follow a Conv/Linear as folded into it (their tensors
    vanish; per-tensor weight scales become per-channel), as ``convert(fold_bn=True)`` and the
    exporter do.
    """
    x = example_input_for(model, example_input)
    sizes = input_sizes(model, x)
    layers, layer_keys = [], set()
    for name, mod in model.named_modules():
        if isinstance(mod, _LAYER_TYPES + (Add,)) and name in sizes:
            layers.append(_layer_cost(name, mod, sizes[name]))
            layer_keys |= {f"{name}.weight", f"{name}.bias"}
    folded = []
    if fold_bn:
        modules = dict(model.named_modules())
        by_name = {l.name: l for l in layers}
        for layer_name, bn_name in find_bn_pairs(model, x):
            mod = modules[layer_name]
            _folded_weight(mod, mod.weight_quantizer if isinstance(mod, QuantMixin) else None,
                           by_name[layer_name])
            by_name[layer_name].folded_bn = bn_name
            folded.append(bn_name + ".")
    return ModelCost(layers, _float_bytes(model, folded, layer_keys),
                     _float_bytes(model, [], set()), list(first_tensor(x).shape),
                     float_modules(model))


_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm)


def _float_reason(mod: nn.Module) -> str:
    if isinstance(mod, nn.MultiheadAttention):
        return ("nn.MultiheadAttention computes its projections without calling nn.Linear "
                "modules; build attention from nn.Linear layers to quantize it")
    if isinstance(mod, UNSUPPORTED):
        return f"lowbit does not quantize {type(mod).__name__}"
    if all(p.dim() < 2 for p in mod.parameters(recurse=False)):  # PReLU slopes, a scalar layer
        return (f"{type(mod).__name__} has no weight matrix (only per-channel or scalar "
                "parameters); lowbit keeps such parameters in float")
    return (f"{type(mod).__name__} is not a subclass of nn.Conv1d/Conv2d/Linear; lowbit "
            "quantizes only those (replace it by nn.Linear to quantize it)")


def float_modules(model: nn.Module) -> List[Dict[str, object]]:
    """Modules whose own parameters stay float32 (embeddings, attention without nn.Linear,
    recurrent layers, custom dense classes, elementwise parameters such as PReLU slopes or the
    scalar layer), with why. Conv/Linear layers (float or not) are in the layer table; norms
    are not listed.

    >>> [r["type"] for r in float_modules(nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 2)))]
    ['Embedding']
    """
    rows = []
    for name, mod in model.named_modules():
        if isinstance(mod, (Quantizer, Add) + _LAYER_TYPES + _NORMS):
            continue
        params = sum(p.numel() for p in mod.parameters(recurse=False))
        if params:
            rows.append({"name": name, "type": type(mod).__name__, "params": params,
                         "reason": _float_reason(mod)})
    return rows
