"""prepare(model, spec): attach fake quantizers to a model's Conv/Linear layers (and Adds).

>>> import torch
>>> from torch import nn
>>> from lowbit import prepare, QuantSpec, QuantizerConfig
>>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 30 * 30, 10))
>>> qmodel = prepare(model, QuantSpec(weight=QuantizerConfig(bits=4, granularity="channel"),
...                                   act=QuantizerConfig(bits=4)))
>>> type(qmodel[0]).__name__
'QuantConv2d'
>>> qmodel(torch.randn(2, 3, 32, 32)).shape   # training mode: activations init from this batch
torch.Size([2, 10])
"""

from __future__ import annotations

import copy
from typing import Mapping, Optional, Tuple

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from ..quantizers import QUANTIZERS, make_quantizer
from ..quantizers.base import Quantizer
from .graph import find_bn_pairs
from .layers import Add
from .modules import check_wrappable, is_quant_layer, unwrap_layer, wrap_add, wrap_layer
from .resolve import LayerPlan, nothing_matches, plan_layers, warn_unquantized
from .spec import QuantSpec
from .walk import quant_layers, weight_quantizers

QUANTIZER_SLOTS = ("weight_quantizer", "input_quantizer", "bias_quantizer", "input_quantizers")


def _device_of(module: nn.Module) -> Tuple[torch.device, torch.dtype]:
    for p in module.parameters():
        return p.device, p.dtype
    return torch.device("cpu"), torch.float32


def _int_bias_applies(plan: LayerPlan) -> bool:
    """Whether the layer's bias can live on its accumulator grid (see QuantSpec.int_bias)."""
    w, a = plan.weight, plan.act
    if w is None or a is None or plan.module.bias is None:
        return False  # a float operand: the runtime adds a float bias too
    for role, cfg in (("weight", w), ("input", a)):
        if not QUANTIZERS.get(cfg.kind).affine_grid:
            grid_kinds = [name for name, cls in QUANTIZERS.items() if cls.affine_grid]
            raise ConfigError(f"int_bias: layer {plan.name!r} has a {cfg.kind!r} {role} quantizer, "
                              f"which has no affine accumulator grid; use one of "
                              f"{', '.join(grid_kinds)} or set int_bias: false")
    if w.granularity == "group" or (w.granularity == "channel" and w.axis != 0):
        raise ConfigError(f"int_bias: layer {plan.name!r} has {w.granularity} weight scales "
                          f"(axis {w.axis}); the accumulator grid needs per-tensor or per-output-"
                          "channel (axis 0) weight scales")
    return True


def _check_folded(model: nn.Module, example_input) -> None:
    """int_bias rounds biases to the grid of the deployed layers: refuse batch norms that would
    still be folded into them later. Seeing which layer feeds a BN takes one forward pass, on
    ``example_input`` or the registry model's own input; without either, any BN is refused."""
    bns = [n for n, m in model.named_modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    if not bns:
        return
    if example_input is None and getattr(model, "lowbit_spec", None) is None:
        raise ConfigError(
            f"int_bias rounds biases to the accumulator grid of the deployed layers, and "
            f"{type(model).__name__} has {len(bns)} batch norm(s) (e.g. {bns[0]}) that may still "
            "be folded into them; fold them first (lowbit.fold_batchnorm(model, x, inplace=True)) "
            "or pass prepare(..., example_input=x) so lowbit can see which layers they follow")
    pairs = find_bn_pairs(model, example_input)
    if pairs:
        raise ConfigError(
            f"int_bias rounds biases to the accumulator grid of the deployed layers, but "
            f"{len(pairs)} batch norm(s) still follow quantized layers (e.g. {pairs[0][1]} after "
            f"{pairs[0][0]}); fold them first: recipes set model.fold_bn: true, Python calls "
            f"lowbit.fold_batchnorm(model, x, inplace=True)")


def _wrap(plan: LayerPlan, int_bias: bool = False) -> None:
    mod = plan.module
    device, dtype = _device_of(mod)
    if isinstance(mod, Add):
        qa = make_quantizer(plan.act, "act", name=f"{plan.name}[0]")
        qb = make_quantizer(plan.act, "act", name=f"{plan.name}[1]")
        wrap_add(mod, qa, qb)
        _pin(plan, None, qa, qb)
        return
    wq = aq = bq = None
    if plan.weight is not None:
        wq = make_quantizer(plan.weight, "weight", mod.weight.shape, name=plan.name)
        wq.init_from_tensor(mod.weight)
    if plan.act is not None:
        aq = make_quantizer(plan.act, "act", name=plan.name)
    if plan.bias is not None and mod.bias is not None:
        bq = make_quantizer(plan.bias.replace(granularity="tensor"), "weight", mod.bias.shape,
                            name=f"{plan.name}.bias")
        bq.init_from_tensor(mod.bias)
    wrap_layer(mod, wq, aq, bq, plan.name)
    mod.lowbit_int_bias = bool(int_bias and _int_bias_applies(plan))
    _pin(plan, wq, aq)
    for q in (wq, aq, bq):
        if q is not None:
            q.to(device=device, dtype=dtype)


def _pin(plan: LayerPlan, weight_q: Optional[Quantizer], *act_qs: Optional[Quantizer]) -> None:
    """Mark quantizers whose bit-width an override sets: a phase's bit change leaves them alone."""
    for role, qs in (("weight", (weight_q,)), ("act", act_qs)):
        for q in qs:
            if q is not None:
                q.bits_pinned = role in plan.pinned


def prepare(model: nn.Module, spec: Optional[QuantSpec] = None, *, inplace: bool = False,
            example_input=None) -> nn.Module:
    """Return ``model`` with fake quantizers on the layers ``spec`` selects.

    Any nn.Conv1d/Conv2d/Linear, including subclasses with their own ``forward``, is wrapped
    (see :mod:`lowbit.nn.modules`). Weight quantizers are initialised from the weights at once
    (with their observer); activation quantizers need :func:`lowbit.calibrate` (or they
    initialise from the first training batch). ``example_input`` (one batch) lets
    ``spec.int_bias`` check that no batch norm is left to fold on models outside the registry.
    Raises ConfigError for patterns that match nothing, unquantizable modules or layers it
    cannot wrap, naming them and the reason.
    """
    spec = spec if spec is not None else QuantSpec()
    if not isinstance(model, nn.Module):
        raise ConfigError(f"prepare needs an nn.Module, got {type(model).__name__}")
    if any(is_quant_layer(m) for m in model.modules()):
        raise ConfigError("this model is already prepared; call prepare on the float model")
    if not inplace:
        model = copy.deepcopy(model)
    if spec.int_bias:
        _check_folded(model, example_input)
    plans = plan_layers(model, spec)
    if not plans:
        raise ConfigError(nothing_matches(model, spec))
    for plan in plans:
        if not isinstance(plan.module, Add):
            check_wrappable(plan.name, plan.module)
    for plan in plans:
        _wrap(plan, spec.int_bias)
    warn_unquantized(model)  # once per float layer type (LSTM, MultiheadAttention, ...)
    model.lowbit_quant_spec = spec
    return model


def float_copy(model: nn.Module) -> nn.Module:
    """A float copy of a prepared model: the same modules, names and current weights, with
    every quantizer removed (it computes what the model computes with quantizers off).

    >>> from torch import nn
    >>> q = prepare(nn.Sequential(nn.Linear(4, 2)))
    >>> type(float_copy(q)[0]).__name__, type(q[0]).__name__
    ('Linear', 'QuantLinear')
    """
    twin = copy.deepcopy(model)
    for _, mod in list(quant_layers(twin)):
        unwrap_layer(mod)
    twin.__dict__.pop("lowbit_quant_spec", None)
    return twin


def is_quantizer_key(key: str) -> bool:
    return any(f"{slot}." in key for slot in QUANTIZER_SLOTS)


def load_float_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                          reinit_weights: bool = True) -> None:
    """Load a float model's state dict into a prepared model.

    Every float tensor must match; only quantizer state may be missing. Weight quantizers are
    then re-initialised from the loaded weights (their scales depend on them).
    """
    missing, unexpected = model.load_state_dict(dict(state_dict), strict=False)
    missing = [k for k in missing if not is_quantizer_key(k)]
    if missing or unexpected:
        raise CheckpointError(
            "the float checkpoint does not match this model: "
            f"missing {missing[:8]}{'...' if len(missing) > 8 else ''}, "
            f"unexpected {list(unexpected)[:8]}{'...' if len(unexpected) > 8 else ''}")
    if reinit_weights:
        for _, mod, wq in weight_quantizers(model):
            wq.init_from_tensor(mod.weight)
