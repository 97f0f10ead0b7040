"""ONNX (QDQ) and QONNX writers: trace the model's own forward with export-friendly layers.

The model is rebuilt (:mod:`lowbit.export.rebuild`, BNs folded by default), each quantized layer
is swapped for an :class:`~lowbit.export.onnx_layers.OnnxLayer`, and the result is traced with
the TorchScript exporter (``torch.onnx.export(..., dynamo=False)``), which lowers our autograd
functions to QuantizeLinear/DequantizeLinear or QONNX ``Quant`` nodes. Afterwards int4/uint4
initializers are retyped, the opset is raised to 21 when asked (the tracer stops at 20; 21 only
adds types), the lowbit summary is stored in ``metadata_props["lowbit.manifest"]``, and the model
passes ``onnx.checker`` (full check for QDQ).

>>> import torch, tempfile, os
>>> from lowbit import calibrate, prepare
>>> from lowbit.models import create_model
>>> model = prepare(create_model("mlp", hidden=16))
>>> calibrate(model, [torch.randn(8, 1, 28, 28)])
>>> path = os.path.join(tempfile.mkdtemp(), "mlp.onnx")
>>> proto = export_onnx(model, path)
>>> sorted({n.op_type for n in proto.graph.node})
['DequantizeLinear', 'Flatten', 'Gemm', 'QuantizeLinear', 'Relu']
"""

from __future__ import annotations

import io
import json
import warnings
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..errors import ConfigError
from ..files import write_bytes
from ..nn.inputs import inputs_to, run_model, split_inputs
from .onnx_layers import OnnxOptions, make_onnx
from .onnx_ops import QONNX_DOMAIN, require_onnx
from .rebuild import build_runtime
from .source import Exportable, exportable

MANIFEST_KEY = "lowbit.manifest"


def io_names(inputs, outputs) -> Tuple[List[str], List[str]]:
    """ONNX input and output names: ``input`` (one positional tensor), ``input0..`` (several),
    keyword inputs by their names; ``logits`` (one output), ``logits, output1, ..`` or the keys
    of a dict output."""
    args, kwargs = split_inputs(inputs)
    names = ["input"] if len(args) == 1 and not kwargs else [f"input{i}" for i in range(len(args))]
    leaves = torch.utils._pytree.tree_leaves(outputs)
    if isinstance(outputs, dict) and len(leaves) == len(outputs):
        out = [str(k) for k in outputs]
    else:
        out = ["logits"] + [f"output{i}" for i in range(1, len(leaves))]
    return names + list(kwargs), out


@torch.no_grad()
def used_layers(module: nn.Module, inputs, layers) -> Tuple[Set[str], Any]:
    """(names of the quantized layers one forward pass calls, the outputs)."""
    called, handles = set(), []
    for name in layers:
        handles.append(module.get_submodule(name).register_forward_pre_hook(
            lambda m, a, n=name: called.add(n)))
    try:
        out = run_model(module, inputs)
    finally:
        for h in handles:
            h.remove()
    return called, out


def _trace(module: nn.Module, inputs, opset: int, qonnx: bool, dynamic_batch: bool, outputs):
    onnx, buf = require_onnx(), io.BytesIO()
    args, kwargs = split_inputs(inputs)
    in_names, out_names = io_names(inputs, outputs)
    axes = {n: {0: "batch"} for n in in_names + out_names} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buf, kwargs=kwargs or None, dynamo=False,
                          opset_version=min(opset, 20), input_names=in_names,
                          output_names=out_names, dynamic_axes=axes,
                          keep_initializers_as_inputs=True,  # no deduplication: names survive
                          custom_opsets={QONNX_DOMAIN: 1} if qonnx else None)
    proto = onnx.load_from_string(buf.getvalue())
    inits = {i.name for i in proto.graph.initializer}
    keep = [i for i in proto.graph.input if i.name not in inits]
    del proto.graph.input[:]
    proto.graph.input.extend(keep)
    return proto


def _retype(proto, conversions: Dict[str, str]) -> None:
    """Give the listed initializers their real integer type (int4/uint4/uint16)."""
    onnx = require_onnx()
    found = set()
    for i, init in enumerate(proto.graph.initializer):
        target = conversions.get(init.name)
        if target is None:
            continue
        values = onnx.numpy_helper.to_array(init).astype(np.int64)
        new = onnx.helper.make_tensor(init.name, getattr(onnx.TensorProto, target), list(values.shape),
                                      values.reshape(-1).tolist())
        proto.graph.initializer[i].CopyFrom(new)
        found.add(init.name)
    missing = sorted(set(conversions) - found)
    if missing:
        raise RuntimeError(f"ONNX export lost initializers {missing[:3]} (exporter changed?)")


def summary(ex: Exportable, fmt: str) -> Dict[str, Any]:
    """The JSON stored in ``metadata_props['lowbit.manifest']`` of exported ONNX files."""
    layers = []
    for layer in ex.quantized.layers.values():
        qp = layer.weight_qparams
        layers.append({"name": layer.name, "op": layer.op,
                       "weight_bits": None if qp is None else sorted(set(qp.bits.reshape(-1).tolist())),
                       "input_bits": [None if q is None else q.max_bits for q in layer.input_qparams],
                       "folded_bn": layer.folded_bn})
    return {"format": f"lowbit.{fmt}", "lowbit_version": __version__, "model": ex.model_ref,
            "data": ex.data, "input_shape": ex.input_shape, "fold_bn": ex.quantized.fold_bn,
            "folded_bn": ex.quantized.folded_bn, "layers": layers}


def _export(source, path, fmt: str, opts: OnnxOptions, *, fold_bn: bool, example_input,
            model: Optional[nn.Module], allow_import: bool, data, dynamic_batch: bool):
    onnx = require_onnx()
    if not 13 <= opts.opset <= 21:
        raise ConfigError(f"opset must be in 13..21, got {opts.opset}")
    ex = exportable(source, fold_bn=fold_bn, example_input=example_input, data=data)
    if data is not None:
        ex.data = dict(data)
    if example_input is None and not ex.input_shape:
        raise ConfigError("the input shape is unknown; pass example_input=torch.zeros(1, C, H, W)")
    runner = build_runtime(ex, make_onnx(opts), model, allow_import)
    x = inputs_to(example_input, torch.device("cpu")) if example_input is not None \
        else ex.example_input()
    called, outputs = used_layers(runner, x, ex.quantized.layers)
    unused = [n for n in ex.quantized.layers if n not in called]
    if unused:  # never traced: their initializers are not in the graph
        warnings.warn(f"ONNX export: quantized layer(s) {', '.join(unused[:5])} are not used by "
                      "the model's forward on this input and are left out of the graph")
        opts.conversions = {k: v for k, v in opts.conversions.items()
                            if not any(k.startswith(n + ".") for n in unused)}
    proto = _trace(runner, x, opts.opset, fmt == "qonnx", dynamic_batch, outputs)
    _retype(proto, opts.conversions)
    if opts.opset > 20:
        for op in proto.opset_import:
            if op.domain in ("", "ai.onnx"):
                op.version = opts.opset
    proto.producer_name, proto.producer_version = "lowbit", __version__
    onnx.helper.set_model_props(proto, {MANIFEST_KEY: json.dumps(summary(ex, fmt))})
    onnx.checker.check_model(proto, full_check=fmt == "qdq")
    if path is not None:
        write_bytes(path, proto.SerializeToString())  # atomic: never half a file
    return proto


def export_onnx(source, path=None, *, opset: int = 21, int4: bool = True, int32_bias: bool = False,
                int4_acts: bool = False, fold_bn: bool = True, example_input: Optional[torch.Tensor] = None,
                model: Optional[nn.Module] = None, allow_import: bool = False,
                data: Optional[Dict[str, Any]] = None, dynamic_batch: bool = True):
    """Write a QDQ ONNX model (runs in onnxruntime); returns the ``onnx.ModelProto``.

    ``source``: prepared+calibrated model, QuantizedModel, Exportable or a loaded packed file.
    ``example_input``: one batch: a tensor, a tuple of positional inputs, or a dict of keyword
    inputs (``{"input_ids": ids, "attention_mask": mask}``: ONNX inputs of those names; one
    positional tensor is named ``input``). Quantized layers the forward does not call are left
    out with a warning.
    ``int4``: 4-bit (and smaller) weights as int4/uint4 initializers (opset 21); otherwise int8
    containers. ``int4_acts``: exactly-4-bit activations as int4/uint4 too (default: 8-bit
    containers with a Clip, which onnxruntime runs with its integer kernels; its optimiser
    fails on 4-bit Q/DQ next to MaxPool). ``int32_bias``: biases as int32 with scale
    ``s_x * s_w`` (the form integer runtimes fuse into integer kernels; it rounds biases to the
    accumulator grid, which moves low-bit results off a fake-quant model trained with float
    biases: train with ``QuantSpec(int_bias=True)`` and both agree). Raises ConfigError for
    quantizers without a Q/DQ form (log2 or floor-rounded activations).
    """
    opts = OnnxOptions("qdq", opset, int4, int32_bias, int4_acts)
    return _export(source, path, "onnx", opts, fold_bn=fold_bn, example_input=example_input,
                   model=model, allow_import=allow_import, data=data, dynamic_batch=dynamic_batch)


def export_qonnx(source, path=None, *, opset: int = 13, fold_bn: bool = True,
                 example_input: Optional[torch.Tensor] = None, model: Optional[nn.Module] = None,
                 allow_import: bool = False, data: Optional[Dict[str, Any]] = None,
                 dynamic_batch: bool = False):
    """Write a QONNX model: ``Quant`` nodes (domain ``qonnx.custom_op.general``) with the real
    bit-width on every quantized activation and weight, float initializers (FINN / hls4ml).
    The batch size is fixed to the example input's (FINN wants static shapes)."""
    opts = OnnxOptions("qonnx", opset, False, False)
    return _export(source, path, "qonnx", opts, fold_bn=fold_bn, example_input=example_input,
                   model=model, allow_import=allow_import, data=data, dynamic_batch=dynamic_batch)
