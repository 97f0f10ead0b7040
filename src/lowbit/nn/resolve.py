"""Match modules to quantization settings: layer types, name patterns, overrides.

Used by :func:`lowbit.prepare`; kept apart so the matching rules are tested on their own.
"""

from __future__ import annotations

import fnmatch
import re
import warnings
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

from torch import nn

from ..errors import ConfigError
from ..quantizers.config import QuantizerConfig
from .layers import Add
from .spec import FLOAT, LAYER_TYPES, QuantSpec

TYPE_CLASSES = {"conv": (nn.Conv1d, nn.Conv2d), "conv1d": (nn.Conv1d,), "conv2d": (nn.Conv2d,),
                "linear": (nn.Linear,)}
# ``@conv`` / ``@linear`` (``@dense``) select layers by type, e.g. a threshold per layer type
TYPE_PATTERNS = {"@conv": TYPE_CLASSES["conv"], "@linear": TYPE_CLASSES["linear"],
                 "@dense": TYPE_CLASSES["linear"]}
UNSUPPORTED = (nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
               nn.MultiheadAttention, nn.LSTM, nn.GRU, nn.RNN, nn.Embedding)


@dataclass
class LayerPlan:
    """The resolved settings of one module."""

    name: str
    module: nn.Module
    weight: Optional[QuantizerConfig]
    act: Optional[QuantizerConfig]
    bias: Optional[QuantizerConfig]
    pinned: Tuple[str, ...] = ()   # roles ("weight", "act") whose bits an override sets


def _matches(pattern: str, name: str, first: str, last: str,
             module: Optional[nn.Module] = None) -> bool:
    if pattern in TYPE_PATTERNS:
        return isinstance(module, TYPE_PATTERNS[pattern])
    if pattern == "@first":
        return name == first
    if pattern == "@last":
        return name == last
    if pattern.startswith("re:"):
        return re.fullmatch(pattern[3:], name) is not None
    return fnmatch.fnmatchcase(name, pattern)


def match_names(pattern: str, names: List[str]) -> List[str]:
    """The ``names`` that ``pattern`` matches, with the override rules (glob, ``re:<regex>``,
    ``@first`` / ``@last`` = the first / last of ``names``).

    >>> match_names("layer1.*", ["conv1", "layer1.0.conv1", "fc"]), match_names("@last", ["a", "b"])
    (['layer1.0.conv1'], ['b'])
    """
    first, last = (names[0], names[-1]) if names else ("", "")
    return [n for n in names if _matches(pattern, n, first, last)]


def opaque_parent(model: nn.Module, name: str) -> Optional[str]:
    """The unsupported module (e.g. nn.MultiheadAttention) that contains ``name``, if any.

    Such modules use their children's weights directly (MultiheadAttention never calls its
    ``out_proj`` Linear), so a quantizer on a child would silently do nothing.
    """
    parts = name.split(".")
    for i in range(1, len(parts)):
        parent = ".".join(parts[:i])
        if isinstance(model.get_submodule(parent), UNSUPPORTED):
            return parent
    return None


def candidates(model: nn.Module, spec: QuantSpec) -> List[Tuple[str, nn.Module]]:
    """Modules of the requested types (and Adds when ``residual``), in registration order.

    Layers inside unsupported modules (see :func:`opaque_parent`) are left out.
    """
    classes = tuple(c for t in spec.layers for c in TYPE_CLASSES[t])
    found = []
    for name, mod in model.named_modules():
        if not name:
            continue
        if (isinstance(mod, classes) or (spec.residual and isinstance(mod, Add))) and \
                opaque_parent(model, name) is None:
            found.append((name, mod))
    return found


def name_list(names: List[str], limit: int = 40) -> str:
    """``names`` for an error message: the first ``limit``, then how many more.

    >>> name_list(["a", "b", "c"], limit=2)
    'a, b, ... (1 more)'
    """
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def check_patterns(model: nn.Module, spec: QuantSpec, cands: List[Tuple[str, nn.Module]]) -> None:
    """Every override/exclude pattern must match a quantizable module; say which exist."""
    all_names = [n for n, _ in model.named_modules() if n]
    cand_names = [n for n, _ in cands]
    first, last = (cand_names[0], cand_names[-1]) if cand_names else ("", "")
    patterns = [o.pattern for o in spec.overrides] + list(spec.exclude)
    for pattern in patterns:
        if any(_matches(pattern, n, first, last, m) for n, m in cands):
            continue
        other = [n for n, m in model.named_modules() if n and _matches(pattern, n, first, last, m)]
        if other:
            mod = dict(model.named_modules())[other[0]]
            parent = opaque_parent(model, other[0])
            why = (f" (it lives inside {type(model.get_submodule(parent)).__name__} {parent!r}, "
                   "which uses its weights without calling it, so a quantizer there would do "
                   "nothing)" if parent else "")
            raise ConfigError(
                f"pattern {pattern!r} matches {other[0]!r} ({type(mod).__name__}), which lowbit "
                f"cannot quantize with layers={list(spec.layers)}{why}; quantizable layers: "
                f"{name_list(cand_names)}")
        raise ConfigError(f"pattern {pattern!r} matches no layer; layers that exist: "
                          f"{name_list(cand_names or all_names)}")


def _apply(base: Optional[QuantizerConfig], change, role: str) -> Optional[QuantizerConfig]:
    if change is None:
        return base
    if change == FLOAT:
        return None
    if base is None:
        raise ConfigError(f"override {role}: {change} changes a quantizer that the spec leaves in "
                          f"float; set the base {role} config first")
    return base.replace(**change)


def plan_layers(model: nn.Module, spec: QuantSpec) -> List[LayerPlan]:
    """Resolve the settings of every quantizable module (skipped/excluded ones omitted)."""
    cands = candidates(model, spec)
    check_patterns(model, spec, cands)
    first, last = (cands[0][0], cands[-1][0]) if cands else ("", "")
    plans = []
    for name, mod in cands:
        if any(_matches(p, name, first, last, mod) for p in spec.exclude):
            continue
        weight, act, bias, skip, pinned = spec.weight, spec.act, spec.bias, False, set()
        for o in spec.overrides:
            if _matches(o.pattern, name, first, last, mod):
                weight, act = _apply(weight, o.weight, "weight"), _apply(act, o.act, "act")
                skip = skip or o.skip
                pinned |= {role for role, change in (("weight", o.weight), ("act", o.act))
                           if isinstance(change, Mapping) and "bits" in change}
                bias = _apply(bias, o.bias, "bias")
        if skip or (isinstance(mod, Add) and act is None):
            continue
        plans.append(LayerPlan(name, mod, weight, act, bias, tuple(sorted(pinned))))
    return plans


def nothing_matches(model: nn.Module, spec: QuantSpec) -> str:
    """The message for a model in which ``spec`` selects no layer: which module types hold
    weights there, and how to include them."""
    found: Dict[str, List[str]] = {}
    for name, mod in model.named_modules():
        if name and any(True for _ in mod.parameters(recurse=False)):
            found.setdefault(type(mod).__name__, []).append(name)
    what = "; ".join(f"{t} x{len(n)} ({', '.join(n[:2])}{', ...' if len(n) > 2 else ''})"
                     for t, n in found.items()) or "none"
    hint = []
    other = [t for t in LAYER_TYPES if t not in spec.layers and
             any(isinstance(m, TYPE_CLASSES[t]) for m in model.modules())]
    if other:
        hint.append(f"add {other[0]!r} to quant.layers")
    custom = [t for t, names in found.items()
              if not isinstance(model.get_submodule(names[0]), UNSUPPORTED + (nn.Conv1d, nn.Conv2d,
                                                                               nn.Linear, Add))
              and "weight" in dict(model.get_submodule(names[0]).named_parameters(recurse=False))]
    if custom:
        hint.append(f"{'/'.join(custom)} {'is' if len(custom) == 1 else 'are'} not nn.Conv1d/"
                    "Conv2d/Linear (or a subclass): replace such layers by nn.Linear / nn.Conv2d "
                    "(e.g. a GPT-2 style Conv1D by nn.Linear with the weight transposed)")
    return (f"no layer matches layers={list(spec.layers)} in {type(model).__name__}, nothing to "
            f"quantize; modules with parameters: {what}" + (f"; {'; '.join(hint)}" if hint else ""))


# layers with weights that lowbit leaves in float; prepare names them once per type
FLOAT_LOOKING = UNSUPPORTED + (nn.LSTMCell, nn.GRUCell, nn.RNNCell, nn.Bilinear, nn.EmbeddingBag)


class UnquantizedLayerWarning(UserWarning):
    """A layer with weights that lowbit leaves in float (e.g. LSTM, MultiheadAttention)."""


def warn_unquantized(model: nn.Module) -> None:
    """One warning per layer type that has weights but no lowbit quantizer (LSTM, GRU,
    MultiheadAttention, Embedding, ConvTranspose, ...), naming how many and one of them."""
    found: Dict[str, List[str]] = {}
    for name, mod in model.named_modules():
        if isinstance(mod, FLOAT_LOOKING) and opaque_parent(model, name) is None:
            found.setdefault(type(mod).__name__, []).append(name or "(the model)")
    for kind, names in found.items():
        warnings.warn(f"lowbit leaves {len(names)} {kind} layer(s) in float, e.g. {names[0]!r}: it "
                      "quantizes Conv1d/Conv2d/Linear weights and inputs (and residual adds); "
                      f"{kind} weights and activations stay float32", UnquantizedLayerWarning,
                      stacklevel=3)
