"""The JSON manifest of a packed file: schema, encoding and validated decoding.

Top level (``format_version`` 1)::

    {"format": "lowbit.packed", "version": 1, "lowbit_version": "0.1.0",
     "model": {"source": "registry", "arch": {name, num_classes, in_channels, input_size, kwargs}}
              | {"source": "module", "class": "pkg.mod:Class", "kwargs": {...} | null}
              | {"source": "factory", "factory": "pkg.mod:build", "args": {...}}
              | {"source": "unknown"},
     "quant_spec": {...} | null,            # informational (QuantSpec.to_dict())
     "input_shape": [1, 3, 32, 32], "data": {"dataset": "cifar10", ...} | null,
     "fold_bn": true, "folded_bn": ["bn1", ...],          # BNs folded into quantized layers
     "fold_structure": [["conv0", "bn0"], ...],          # BNs folded into float weights
     "layers": [{"name", "op", "attrs", "folded_bn", "weight", "bias", "inputs"}, ...],
     "float_state": {"key": [shape], ...},                # stored as f:<key> float32
     "int_state": {"key": {"dtype": "int64", "shape": [], "values": [..]}},
     "payload_bytes": N}

A layer's ``weight``/``bias`` is a quantized-tensor entry (:mod:`lowbit.export.qtensor`), or
``{"float": [shape]}`` (float32 array ``q:<layer>.weight`` / ``q:<layer>.bias``), or null;
``inputs`` holds one activation entry (or null) per input.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np
import torch

from ..errors import FormatError
from ..nn.convert import QuantizedLayer, QuantizedModel
from . import checks as C
from .qtensor import decode_act, encode_act, encode_qtensor, plan_qtensor
from .rebuild import check_architecture
from .source import Exportable

FORMAT, VERSION = "lowbit.packed", 1
OPS = ("conv1d", "conv2d", "linear", "add")
INT_DTYPES = {"int64": torch.int64, "int32": torch.int32, "int16": torch.int16,
              "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool}
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
MAX_DECODED_BYTES = 1 << 30  # decoded integer codes per file (int8 up to 8 bits: 1 byte a weight)


# ----- encoding ---------------------------------------------------------------------------
def _encode_tensor(prefix: str, codes, qp, float_value, arrays) -> Any:
    if codes is not None:
        desc, arr = encode_qtensor(prefix, codes, qp)
        arrays.update(arr)
        return desc
    if float_value is None:
        return None
    arrays[prefix] = float_value.detach().float().numpy().astype("<f4")
    return {"float": list(float_value.shape)}


def _encode_layer(layer: QuantizedLayer, arrays: Dict[str, np.ndarray]) -> Dict[str, Any]:
    p = f"q:{layer.name}"
    inputs = []
    for i, qp in enumerate(layer.input_qparams):
        if qp is None:
            inputs.append(None)
            continue
        desc, arr = encode_act(f"{p}.input{i}", qp)
        arrays.update(arr)
        inputs.append(desc)
    return {"name": layer.name, "op": layer.op, "attrs": layer.attrs, "folded_bn": layer.folded_bn,
            "weight": _encode_tensor(f"{p}.weight", layer.weight_codes, layer.weight_qparams,
                                     layer.weight_float, arrays),
            "bias": _encode_tensor(f"{p}.bias", layer.bias_codes, layer.bias_qparams, layer.bias, arrays),
            "inputs": inputs}


def _int_state(ex: Exportable) -> Dict[str, Any]:
    names = {v: k for k, v in INT_DTYPES.items()}
    return {k: {"dtype": names[v.dtype], "shape": list(v.shape), "values": v.reshape(-1).tolist()}
            for k, v in ex.int_state.items() if v.dtype in names}


def encode_manifest(ex: Exportable, version: str) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    """(manifest, arrays) of an Exportable."""
    qm, arrays = ex.quantized, {}
    layers = [_encode_layer(layer, arrays) for layer in qm.layers.values()]
    for key, t in qm.float_state.items():
        arrays[f"f:{key}"] = t.detach().float().numpy().astype("<f4")
    manifest = {
        "format": FORMAT, "version": VERSION, "lowbit_version": version, "model": ex.model_ref,
        "quant_spec": qm.quant_spec, "input_shape": list(ex.input_shape), "data": ex.data,
        "fold_bn": bool(qm.fold_bn), "folded_bn": list(qm.folded_bn),
        "fold_structure": [list(p) for p in qm.fold_structure], "layers": layers,
        "float_state": {k: list(v.shape) for k, v in qm.float_state.items()},
        "int_state": _int_state(ex), "payload_bytes": int(sum(a.nbytes for a in arrays.values())),
    }
    return manifest, arrays


# ----- decoding ---------------------------------------------------------------------------
def _check_attrs(op: str, attrs: Any, shape: List[int], what: str) -> Dict[str, Any]:
    C.need(isinstance(attrs, dict), f"{what}: attrs must be a JSON object")
    if op == "add":
        C.need(attrs == {}, f"{what}: add layers have no attributes")
        return attrs
    if op == "linear":
        C.need(len(shape) == 2 and attrs == {"in_features": shape[1], "out_features": shape[0]},
               f"{what}: linear attrs {attrs} do not match weight shape {shape}")
        return attrs
    dims = 1 if op == "conv1d" else 2
    C.need(len(shape) == dims + 2, f"{what}: a {op} weight has {dims + 2} dimensions")
    C.need(set(attrs) == {"stride", "padding", "dilation", "groups", "padding_mode"},
           f"{what}: conv attrs must be stride, padding, dilation, groups, padding_mode")
    for key in ("stride", "dilation"):
        C.int_list(attrs[key], f"{what} {key}", dims, 1, 1 << 16)
    pad = attrs["padding"]
    C.need(pad in ("same", "valid") or isinstance(pad, list), f"{what}: bad padding")
    if isinstance(pad, list):
        C.int_list(pad, f"{what} padding", dims, 0, 1 << 16)
    C.get_int(attrs, "groups", what, 1, 1 << 20)
    C.get_str(attrs, "padding_mode", what, PADDING_MODES)
    return attrs


def _decode_tensor(prefix: str, d: Any, arrays, used, pending) -> Tuple[Any, Any, Any]:
    """(codes, qparams, float tensor) of a weight/bias entry; codes are a ``meta`` placeholder
    whose decoder is appended to ``pending``."""
    if d is None:
        return None, None, None
    if isinstance(d, dict) and set(d) == {"float"}:
        shape = C.shape_of(d["float"], prefix)
        return None, None, torch.from_numpy(C.finite(C.array(arrays, prefix, "float32", shape, used), prefix))
    codes, qp, decode = plan_qtensor(prefix, d, arrays, used)
    pending.append(decode)
    return codes, qp, None


def _decode_layer(d: Any, arrays, used, pending: list) -> QuantizedLayer:
    C.need(isinstance(d, dict), "each manifest layer must be a JSON object")
    name = C.layer_name(d.get("name"), "layer name")
    what, p = f"layer {name!r}", f"q:{name}"
    op = C.get_str(d, "op", what, OPS)
    inputs = d.get("inputs")
    C.need(isinstance(inputs, list) and len(inputs) == (2 if op == "add" else 1),
           f"{what}: inputs must list {2 if op == 'add' else 1} entries")
    layer = QuantizedLayer(name, op, {}, input_qparams=[
        None if a is None else decode_act(f"{p}.input{i}", a, arrays, used) for i, a in enumerate(inputs)])
    folded = d.get("folded_bn")
    layer.folded_bn = None if folded is None else C.layer_name(folded, f"{what} folded_bn")
    if op == "add":
        C.need(d.get("weight") is None and d.get("bias") is None, f"{what}: add has no weights")
        layer.attrs = _check_attrs(op, d.get("attrs"), [], what)
        return layer
    weight: list = []
    layer.weight_codes, layer.weight_qparams, layer.weight_float = _decode_tensor(
        f"{p}.weight", d.get("weight"), arrays, used, weight)
    C.need(layer.weight_codes is not None or layer.weight_float is not None, f"{what}: no weight")
    shape = list((layer.weight_codes if layer.weight_codes is not None else layer.weight_float).shape)
    layer.attrs = _check_attrs(op, d.get("attrs"), shape, what)
    bias: list = []
    layer.bias_codes, layer.bias_qparams, layer.bias = _decode_tensor(f"{p}.bias", d.get("bias"),
                                                                      arrays, used, bias)
    b = layer.bias_codes if layer.bias_codes is not None else layer.bias
    C.need(b is None or list(b.shape) == shape[:1], f"{what}: bias shape must be [{shape[0]}]")
    pending += [(layer, "weight_codes", f) for f in weight] + [(layer, "bias_codes", f) for f in bias]
    return layer


def _decode_int_state(d: Any) -> Dict[str, torch.Tensor]:
    C.need(isinstance(d, dict), "manifest int_state must be a JSON object")
    out = {}
    for key, e in d.items():
        C.layer_name(key, "int_state key")
        dtype = INT_DTYPES.get(C.get_str(e, "dtype", f"int_state {key}"))
        C.need(dtype is not None, f"int_state {key}: unsupported dtype")
        shape = C.shape_of(e.get("shape"), f"int_state {key}")
        values = e.get("values")
        C.need(isinstance(values, list) and len(values) == int(np.prod(shape)) <= 1 << 20
               and all(type(v) in (int, bool) for v in values), f"int_state {key}: bad values")
        try:
            out[key] = torch.tensor(values, dtype=dtype).reshape(shape)
        except (OverflowError, RuntimeError):
            raise FormatError(f"int_state {key}: values do not fit {dtype}") from None
    return out


def _decode_float_state(d: Any, arrays, used) -> Dict[str, torch.Tensor]:
    C.need(isinstance(d, dict), "manifest float_state must be a JSON object")
    out = {}
    for key, shape in d.items():
        C.layer_name(key, "float_state key")
        name = f"f:{key}"
        arr = C.array(arrays, name, "float32", C.shape_of(shape, name), used)
        out[key] = torch.from_numpy(C.finite(arr, name))
    return out


def _name_pairs(v: Any, what: str) -> List[List[str]]:
    C.need(isinstance(v, list) and len(v) <= 1 << 16, f"manifest {what} must be a list")
    return [[C.layer_name(a, what), C.layer_name(b, what)] for a, b in
            (p if isinstance(p, list) and len(p) == 2 else (None, None) for p in v)]


def decode_manifest(m: Dict[str, Any], arrays: Dict[str, np.ndarray],
                    max_decoded_bytes: int = MAX_DECODED_BYTES) -> Exportable:
    """Validate a manifest against the file's arrays and rebuild the Exportable.

    Codes are unpacked last: only after every shape, byte count and name has been checked,
    the decoded size of all codes is within ``max_decoded_bytes``, and (for registry models)
    the layer shapes match the architecture, built on the ``meta`` device without memory. A
    file that claims huge tensors is refused before it costs memory.
    """
    used: set = set()
    pending: List[Tuple[QuantizedLayer, str, Any]] = []
    layers_in = m.get("layers")
    C.need(isinstance(layers_in, list) and layers_in, "manifest 'layers' must be a non-empty list")
    layers = {}
    for d in layers_in:
        layer = _decode_layer(d, arrays, used, pending)
        C.need(layer.name not in layers, f"layer {layer.name!r} appears twice")
        layers[layer.name] = layer
    folded = m.get("folded_bn")
    C.need(isinstance(folded, list), "manifest folded_bn must be a list")
    folded = [C.layer_name(b, "folded_bn") for b in folded]
    C.need({l.folded_bn for l in layers.values() if l.folded_bn} == set(folded),
           "manifest folded_bn disagrees with the layers' folded_bn")
    C.need(m.get("quant_spec") is None or isinstance(m.get("quant_spec"), dict),
           "manifest quant_spec must be an object or null")
    qm = QuantizedModel(layers, _decode_float_state(m.get("float_state"), arrays, used),
                        None, m.get("quant_spec"), folded,
                        _name_pairs(m.get("fold_structure"), "fold_structure"), bool(m.get("fold_bn")))
    unused = sorted(set(arrays) - used)
    C.need(not unused, f"the file holds tensors the manifest does not describe: {unused[:5]}")
    C.need(m.get("payload_bytes") == int(sum(a.nbytes for a in arrays.values())),
           "manifest payload_bytes disagrees with the stored tensors")
    ref = m.get("model")
    C.need(isinstance(ref, dict), "manifest 'model' must be a JSON object")
    qm.arch = ref.get("arch") if ref.get("source") == "registry" else None
    data = m.get("data")
    C.need(data is None or isinstance(data, dict), "manifest 'data' must be an object or null")
    shape = C.shape_of(m.get("input_shape"), "input_shape")
    C.need(int(np.prod(shape)) <= 1 << 26, "manifest input_shape is absurdly large")
    ex = Exportable(qm, ref, shape, _decode_int_state(m.get("int_state")), data)
    _check_before_decoding(ex, pending, max_decoded_bytes)
    for layer, attr, decode in pending:
        setattr(layer, attr, decode())
    return ex


def _check_before_decoding(ex: Exportable, pending, max_decoded_bytes: int) -> None:
    """The decoded size cap, and the layer shapes against a registry architecture."""
    size = sum(getattr(l, a).numel() * getattr(l, a).element_size() for l, a, _ in pending)
    C.need(size <= max_decoded_bytes,
           f"the file's integer codes decode to {size:,} bytes, more than the {max_decoded_bytes:,} "
           "allowed per file; if you trust it, load it with load_packed(path, "
           "max_decoded_bytes=...)")
    if ex.model_ref.get("source") == "registry":
        check_architecture(ex)
