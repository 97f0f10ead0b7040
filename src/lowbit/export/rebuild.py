"""Rebuild a runnable model from an Exportable: architecture, folded structure, swapped layers.

The architecture comes from (first match): a ``model`` you pass (any module of the same
architecture, float or prepared), the live model the Exportable was made from, the lowbit
registry (``model_ref["arch"]``), or, only with ``allow_import=True`` (``--allow-import``),
your own class ``"package.module:Class"`` or model factory ``"package.module:build"``
(importing runs code of *your* environment; the file itself never holds code). Registry
models are first built on the ``meta`` device and checked against the stored shapes, so a
tampered architecture cannot allocate a huge model.

Then BNs folded away become ``nn.Identity`` (their layer gains a bias), all remaining float
state is loaded strictly, and every quantized layer is replaced by the module
``make(layer, module)`` returns (see :mod:`lowbit.export.runtime`), which adopts the
architecture's layer at that name.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Dict, Optional

import torch
from torch import nn

from ..errors import ConfigError, FormatError
from ..models import create_model
from ..models.user import (ALLOW_IMPORT, IMPORT_PATH_RE, build_from_factory, call_constructor,
                           import_object)
from ..nn.convert import QuantizedLayer, layer_attrs
from ..nn.layers import Add, ScalarLayer, add_scalar_layer
from ..nn.prepare import QUANTIZER_SLOTS
from ..nn.walk import set_module
from . import checks as C

LAYER_TYPES = {"conv1d": nn.Conv1d, "conv2d": nn.Conv2d, "linear": nn.Linear, "add": Add}


def _get(root: nn.Module, name: str, err) -> nn.Module:
    try:
        return root.get_submodule(name)
    except AttributeError:
        raise err(f"the architecture has no module {name!r} named by the export") from None


def _registry(arch: Any, device: Optional[str]) -> nn.Module:
    what = "manifest model.arch"
    C.need(isinstance(arch, dict), f"{what} must be a JSON object")
    name = C.get_str(arch, "name", what)
    sizes = {k: C.get_int(arch, k, what, 1, hi) for k, hi in
             (("num_classes", 1_000_000), ("in_channels", 4096), ("input_size", 16384))}
    kwargs = arch.get("kwargs") or {}
    C.need(isinstance(kwargs, dict), f"{what}: kwargs must be a JSON object")
    try:
        with torch.device(device or "cpu"):
            return create_model(name, **sizes, **kwargs)
    except ConfigError as exc:
        raise FormatError(f"the stored architecture cannot be built: {exc}") from None
    except (RuntimeError, ValueError, TypeError, OverflowError, MemoryError, IndexError) as exc:
        # values the model's validators accept but torch cannot build (e.g. widths of 2^40)
        raise FormatError(f"the stored architecture cannot be built: {type(exc).__name__}: "
                          f"{str(exc)[:200]}") from None


def _user_code(ref: Dict[str, Any], allow_import: bool) -> nn.Module:
    """Your class (``source: module``) or factory (``source: factory``), imported only with
    ``allow_import`` (see :mod:`lowbit.models.user`)."""
    factory = ref.get("source") == "factory"
    key, kw_key = ("factory", "args") if factory else ("class", "kwargs")
    path = ref.get(key)
    C.need(isinstance(path, str) and IMPORT_PATH_RE.fullmatch(path) is not None,
           f"manifest model.{key} {str(path)[:80]!r} is not 'package.module:name'")
    kwargs = ref.get(kw_key) or {}
    C.need(isinstance(kwargs, dict), f"manifest model.{kw_key} must be a JSON object")
    if not allow_import:
        raise ConfigError(f"this model was exported from your own {key} {path}; pass model=<an "
                          f"instance of it> (Python), or {ALLOW_IMPORT} to import it from your "
                          "environment (nothing is ever imported from the file itself)")
    if factory:
        return build_from_factory(path, kwargs, allow_import)
    obj = import_object(path, allow_import, "model class")
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise ConfigError(f"{path} is not an nn.Module class")
    return call_constructor(obj, path, kwargs)


def construct(ref: Dict[str, Any], allow_import: bool = False, device: Optional[str] = None) -> nn.Module:
    """Build the float architecture a model reference names (see the module docstring), with
    the scalar layer it records (registry ``arch.scalar_layer`` or ``model.scalar_layer``)."""
    C.need(isinstance(ref, dict), "manifest 'model' must be a JSON object")
    source = ref.get("source")
    if source == "registry":
        model = _registry(ref.get("arch"), device)
    elif source in ("module", "factory"):
        model = _user_code(ref, allow_import)
    else:
        raise ConfigError("the export records no architecture; pass model=<an instance of it>")
    return _with_scalar_layer(model, ref)


def _with_scalar_layer(model: nn.Module, ref: Dict[str, Any]) -> nn.Module:
    """Give ``model`` the scalar layer the reference records, unless it has one (its trained
    value comes with the float state)."""
    arch = ref.get("arch") if ref.get("source") == "registry" else ref
    scalar = arch.get("scalar_layer") if isinstance(arch, dict) else None
    if scalar is None or isinstance(getattr(model, "scalar_layer", None), ScalarLayer):
        return model
    C.need(isinstance(scalar, (int, float)) and not isinstance(scalar, bool) and scalar > 0,
           f"manifest scalar_layer must be a positive number, got {str(scalar)[:40]!r}")
    return add_scalar_layer(model, float(scalar))


def _apply_structure(base: nn.Module, ex, err) -> None:
    for layer, bn in ex.quantized.fold_structure:
        mod = _get(base, layer, err)
        if not isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            raise err(f"fold structure names {layer!r}, which is not a Conv/Linear layer")
        if mod.bias is None:
            w = mod.weight
            mod.bias = nn.Parameter(torch.zeros(w.shape[0], dtype=w.dtype, device=w.device))
        _get(base, bn, err)
        set_module(base, bn, nn.Identity())
    for bn in ex.quantized.folded_bn:
        _get(base, bn, err)
        set_module(base, bn, nn.Identity())


def check_layer(name: str, layer: QuantizedLayer, mod: nn.Module, err) -> None:
    """The module at ``name`` must have the op, weight shape and attributes of ``layer``."""
    if not isinstance(mod, LAYER_TYPES[layer.op]):
        raise err(f"layer {name!r} is {type(mod).__name__} in the architecture, {layer.op} in the export")
    if layer.op == "add":
        return
    w = layer.weight_codes if layer.weight_codes is not None else layer.weight_float
    if tuple(w.shape) != tuple(mod.weight.shape):
        raise err(f"layer {name!r}: weight shape {list(w.shape)} in the export, "
                  f"{list(mod.weight.shape)} in the architecture")
    if layer_attrs(mod) != layer.attrs:
        raise err(f"layer {name!r}: attributes {layer.attrs} in the export, {layer_attrs(mod)} "
                  "in the architecture")


OWNED = ("weight", "bias") + QUANTIZER_SLOTS


def _owned(key: str, layers) -> bool:
    """Whether ``key`` is the weight, bias or quantizer state of a quantized layer (stored in
    the layer's QuantizedLayer, not in the float state)."""
    parts = key.split(".")
    return any(".".join(parts[:i]) in layers and parts[i] in OWNED for i in range(1, len(parts)))


def check_structure(base: nn.Module, ex, err) -> None:
    """Quantized layers match, and the remaining state has exactly the stored keys and shapes."""
    layers = ex.quantized.layers
    for name, layer in layers.items():
        check_layer(name, layer, _get(base, name, err), err)
    got = {k: tuple(v.shape) for k, v in base.state_dict().items() if not _owned(k, layers)}
    want = {k: tuple(v.shape) for k, v in {**ex.quantized.float_state, **ex.int_state}.items()}
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    wrong = [k for k in want if k in got and got[k] != want[k]]
    if missing or extra or wrong:
        raise err(f"the stored state does not match the architecture: missing {missing[:5]}, "
                  f"unexpected {extra[:5]}, wrong shape {wrong[:5]}")


def check_architecture(ex, err=FormatError) -> None:
    """The stored layers and state fit the registry architecture ``ex`` names, checked on the
    ``meta`` device (no memory): before a loader decodes codes, and before a model is built."""
    meta = construct(ex.model_ref, False, "meta")
    _apply_structure(meta, ex, err)
    check_structure(meta, ex, err)


def build_base(ex, model: Optional[nn.Module] = None, allow_import: bool = False) -> nn.Module:
    """The float architecture of ``ex`` with folded BNs replaced (quantized layers untouched)."""
    from_file = model is None and ex.model is None
    err = FormatError if from_file else ConfigError
    if model is not None or ex.model is not None:
        base = _with_scalar_layer(copy.deepcopy(model if model is not None else ex.model).cpu(),
                                  ex.model_ref)
    else:
        if ex.model_ref.get("source") == "registry":  # shapes first, without memory
            check_architecture(ex, err)
        base = construct(ex.model_ref, allow_import)
    _apply_structure(base, ex, err)
    check_structure(base, ex, err)
    return base.eval()


def build_runtime(ex, make: Callable[..., nn.Module], model: Optional[nn.Module] = None,
                  allow_import: bool = False) -> nn.Module:
    """``build_base`` + float state loaded + every quantized layer replaced by
    ``make(layer, module)``, where ``module`` is the architecture's layer at that name (the
    runtime layer adopts its class, attributes and remaining state)."""
    base = build_base(ex, model, allow_import)
    state = {**ex.quantized.float_state, **ex.int_state}
    missing, unexpected = base.load_state_dict(state, strict=False)
    missing = [k for k in missing if not _owned(k, ex.quantized.layers)]
    if missing or unexpected:  # check_structure makes this unreachable; keep the guard
        raise ConfigError(f"state does not fit the model: missing {missing[:5]}, "
                          f"unexpected {unexpected[:5]}")
    for name, layer in ex.quantized.layers.items():
        set_module(base, name, make(layer, base.get_submodule(name)))
    return base.eval()
