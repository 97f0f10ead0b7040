"""Evaluate an exported file on a dataset: packed (integer executor and/or fake-quant
reconstruction), ONNX (onnxruntime) or QONNX (the qonnx executor). Used by ``lowbit eval FILE``.

>>> res = evaluate_file("resnet20.lowbit", limit=1000)  # doctest: +SKIP
>>> res["results"]["integer"]["top1"]  # doctest: +SKIP
91.3
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

import numpy as np
import torch

from ..data import BatchLoader, eval_augment, load_split
from ..data.presets import stored_size
from ..errors import ConfigError, FormatError
from .executor import FakeQuantExecutor, IntegerExecutor
from .onnx_ops import QONNX_DOMAIN, require_onnx
from .packed import load_packed
from .safetensors_io import parse_json

Predict = Callable[[torch.Tensor], torch.Tensor]  # (B, C, H, W) -> (B, classes) logits
SAFE_DOMAINS = ("", "ai.onnx", QONNX_DOMAIN)  # what lowbit writes; qonnx imports no other name


def file_kind(path) -> str:
    """``packed`` or ``onnx`` (by content: safetensors files start with a small JSON header)."""
    p = Path(path)
    if not p.is_file():
        raise FormatError(f"no file at {p}")
    if p.stat().st_size == 0:
        raise FormatError(f"{p} is empty (0 bytes); export it again")
    with p.open("rb") as f:
        head = f.read(9)
    if len(head) == 9 and int.from_bytes(head[:8], "little") < (64 << 20) and head[8:9] == b"{":
        return "packed"
    return "onnx"


def onnx_metadata(path) -> Dict[str, Any]:
    """The lowbit summary stored in an exported ONNX file (empty if absent)."""
    try:
        proto = require_onnx().load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises its own DecodeError
        raise FormatError(f"{path} is neither a lowbit packed file nor ONNX: {exc}") from None
    if len(proto.graph.node) == 0:  # protobuf parses many byte strings as an empty model
        raise FormatError(f"{path} is neither a lowbit packed file nor an ONNX model (no graph)")
    props = {p.key: p.value for p in proto.metadata_props}
    text = props.get("lowbit.manifest")
    meta = parse_json(text, f"{path} lowbit.manifest") if text else {}
    if not isinstance(meta, dict):
        raise FormatError(f"{path}: lowbit.manifest must be a JSON object")
    check_external_data(path, proto)
    meta["_qonnx"] = any(n.domain == QONNX_DOMAIN for n in proto.graph.node)
    meta["_domains"] = node_domains(proto)
    dims = proto.graph.input[0].type.tensor_type.shape.dim if proto.graph.input else []
    meta["_input_shape"] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    return meta


def node_domains(proto) -> Set[str]:
    """Every operator domain the model's nodes name, in nested graphs and functions too."""
    out = {n.domain for g in _graphs(proto) for n in g.node}
    for f in proto.functions:
        out.add(f.domain)
        out.update(n.domain for n in f.node)
    return out


def _graphs(proto) -> List[Any]:
    """The main graph, every graph nested in a node attribute, and the functions' nodes' graphs."""
    out, todo = [], [proto.graph]
    nodes_of_functions = [n for f in proto.functions for n in f.node]
    while todo:
        g = todo.pop()
        out.append(g)
        for n in list(g.node) + (nodes_of_functions if g is proto.graph else []):
            for a in n.attribute:
                todo += ([a.g] if a.HasField("g") else []) + list(a.graphs)
    return out


def _tensors(proto) -> List[Any]:
    """Every TensorProto that can carry data: initializers and tensor-valued attributes."""
    out = []
    for g in _graphs(proto):
        out += list(g.initializer) + [t for s in g.sparse_initializer for t in (s.values, s.indices)]
        for n in g.node:
            for a in n.attribute:
                out += ([a.t] if a.HasField("t") else []) + list(a.tensors)
    return out


def check_external_data(path, proto) -> None:
    """Tensors stored outside the file must lie in the file's own folder: onnxruntime and
    qonnx would otherwise read whatever path the file names (``/etc/...``, ``../../...``)."""
    folder = Path(path).resolve().parent
    for t in _tensors(proto):
        if t.data_location != t.EXTERNAL:
            continue
        where = {e.key: e.value for e in t.external_data}.get("location", "")
        target = (folder / where).resolve()
        if not where or Path(where).is_absolute() or not target.is_relative_to(folder):
            raise FormatError(f"{path}: tensor {t.name!r} names external data at {where!r}, outside "
                              "the model's folder; lowbit reads external data only beside the model")


def check_domains(path, domains: Set[str], allow_import: bool) -> None:
    """qonnx looks up every non-standard node domain as a Python module and imports it; refuse
    files that name others than the standard and QONNX ones, unless ``allow_import``."""
    foreign = sorted(d for d in domains if d not in SAFE_DOMAINS)
    if foreign and not allow_import:
        raise ConfigError(f"{path} has nodes of operator domain(s) {', '.join(map(repr, foreign[:3]))}, "
                          "which the QONNX executor would import as Python modules; lowbit imports "
                          "nothing a file names unless you pass --allow-import (allow_import=True), "
                          "for files you trust")


def ort_predictor(path, threads: int = 0) -> Predict:
    """onnxruntime session as a predict function (static batch dims are fed one chunk at a time)."""
    try:
        import onnxruntime as ort  # optional (the onnx extra): only evaluating ONNX files needs it
    except ImportError:
        raise ConfigError("evaluating ONNX needs onnxruntime: pip install 'lowbit[onnx]'") from None

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    try:
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own error types for invalid models
        raise FormatError(f"{path}: onnxruntime cannot load it: {str(exc).splitlines()[0][:200]}") from None
    inp = sess.get_inputs()[0]
    fixed = inp.shape[0] if isinstance(inp.shape[0], int) else None

    def predict(x: torch.Tensor) -> torch.Tensor:
        step = fixed or x.shape[0]
        outs = [sess.run(None, {inp.name: x[i:i + step].numpy()})[0] for i in range(0, x.shape[0], step)]
        return torch.from_numpy(np.concatenate(outs))

    return predict


def qonnx_predictor(path, allow_import: bool = False) -> Predict:
    """QONNX model run by the qonnx reference executor (slow; for checking only). Files naming
    operator domains other than the standard and QONNX ones are refused (see
    :func:`check_domains`) before qonnx sees them."""
    proto = require_onnx().load(str(path), load_external_data=False)
    check_external_data(path, proto)
    check_domains(path, node_domains(proto), allow_import)
    try:  # optional (the qonnx extra): only evaluating QONNX files needs it
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.core.onnx_exec import execute_onnx
        from qonnx.util.cleanup import cleanup_model
    except ImportError:
        raise ConfigError("evaluating QONNX needs the qonnx package (pip install qonnx)") from None
    with _qonnx_errors(path):
        mw = cleanup_model(ModelWrapper(str(path)))  # shape inference, which execution needs
        name, out = mw.graph.input[0].name, mw.graph.output[0].name
        batch = mw.get_tensor_shape(name)[0]
    batch = batch if isinstance(batch, int) and batch > 0 else None

    def predict(x: torch.Tensor) -> torch.Tensor:
        step = batch or x.shape[0]
        with _qonnx_errors(path):
            outs = [execute_onnx(mw, {name: x[i:i + step].numpy()})[out] for i in range(0, x.shape[0], step)]
        return torch.from_numpy(np.concatenate(outs))

    return predict


@contextlib.contextmanager
def _qonnx_errors(path):
    """qonnx raises bare Exceptions (and assertions) for graphs it cannot run: one line instead."""
    try:
        yield
    except (ConfigError, FormatError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise FormatError(f"{path}: the qonnx executor cannot run it: "
                          f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}") from None


def eval_loader(dataset: str, data_dir=None, image_size: Optional[int] = None,
                limit: Optional[int] = None, batch_size: int = 256):
    """The standard evaluation loader of ``dataset``'s test split."""
    test = load_split(dataset, "test", data_dir, image_size=stored_size(dataset, image_size), limit=limit)
    return BatchLoader(test, batch_size, augment=eval_augment(dataset, image_size), prefetch=False)


@torch.no_grad()
def run_all(predictors: Dict[str, Predict], loader: Iterable) -> Dict[str, Any]:
    """Top-1 of every predictor and their pairwise top-1 agreement with the first one."""
    preds: Dict[str, list] = {k: [] for k in predictors}
    labels = []
    for x, y in loader:
        labels.append(y)
        for k, f in predictors.items():
            preds[k].append(f(x).argmax(dim=1))
    y = torch.cat(labels)
    out = {k: {"top1": 100.0 * float((torch.cat(v) == y).float().mean())} for k, v in preds.items()}
    first = next(iter(preds))
    for k in list(preds)[1:]:
        out[k][f"agreement_with_{first}"] = 100.0 * float(
            (torch.cat(preds[k]) == torch.cat(preds[first])).float().mean())
    return {"n": int(y.numel()), "results": out}


def _packed_predictors(path, executor: str, allow_import: bool) -> Tuple[Dict[str, Predict], Dict, list]:
    ex = load_packed(path)
    kinds = ["integer", "fake_quant"] if executor == "both" else [executor]
    classes = {"integer": IntegerExecutor, "fake_quant": FakeQuantExecutor}
    if any(k not in classes for k in kinds):
        raise ConfigError(f"executor must be integer, fake_quant or both, got {executor!r}")
    return {k: classes[k](ex, allow_import=allow_import) for k in kinds}, ex.data or {}, ex.input_shape


def check_input_shape(path, shape, loader, dataset: str) -> None:
    """The model's input (C, H, W) must be the test images' (a model for MNIST cannot run on
    CIFAR-10); unknown dimensions match anything."""
    first = next(iter(loader), None)
    if first is None or not shape:
        return
    want, got = list(shape)[1:], list(first[0].shape[1:])
    if len(want) != len(got) or any(w not in (None, 0, g) for w, g in zip(want, got)):
        raise ConfigError(f"{path} takes inputs of shape {want} (C, H, W) but the {dataset} test "
                          f"images are {got}; evaluate it on the dataset it was trained on "
                          "(--dataset, default: the one the file records)")


def evaluate_file(path, *, dataset: Optional[str] = None, data_dir=None, limit: Optional[int] = None,
                  executor: str = "integer", batch_size: int = 256,
                  allow_import: bool = False) -> Dict[str, Any]:
    """Top-1 of an exported file on the test split of ``dataset`` (default: the file's own)."""
    kind = file_kind(path)
    if kind == "packed":
        predictors, data, shape = _packed_predictors(path, executor, allow_import)
    else:
        meta = onnx_metadata(path)
        data, shape = meta.get("data") or {}, meta["_input_shape"]
        predictors = {"qonnx" if meta["_qonnx"] else "onnxruntime":
                      qonnx_predictor(path, allow_import) if meta["_qonnx"] else ort_predictor(path)}
    dataset = dataset or data.get("dataset")
    if not dataset:
        raise ConfigError(f"{path} does not record its dataset; pass --dataset (e.g. cifar10)")
    image_size = data.get("image_size") if isinstance(data.get("image_size"), int) else None
    loader = eval_loader(dataset, data_dir, image_size, limit, batch_size)
    check_input_shape(path, shape, loader, dataset)
    res = run_all(predictors, loader)
    res.update({"file": str(path), "kind": kind, "dataset": dataset})
    return res
