"""Switch quantization state of a prepared model: what phases of a recipe change.

>>> import torch
>>> from torch import nn
>>> from lowbit import prepare
>>> m = prepare(nn.Sequential(nn.Linear(4, 4)))
>>> set_quant_state(m, weights=False, act_bits=4)["weights"]
1
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, Iterator, Optional

from torch import nn

from ..ops.ranges import check_bits
from .walk import quantizers


def set_quant_state(model: nn.Module, *, weights: Optional[bool] = None,
                    acts: Optional[bool] = None, weight_bits: Optional[int] = None,
                    act_bits: Optional[int] = None, freeze: Optional[bool] = None,
                    learn_bits: Optional[bool] = None) -> Dict[str, int]:
    """Enable/disable, re-bit, freeze or unfreeze the quantizers of a prepared model.

    ``None`` leaves a setting unchanged. ``weight_bits`` / ``act_bits`` change the default
    bit-width of that role: every quantizer follows it except those whose bits a spec override
    sets (``bits_pinned``, e.g. a first layer held at 8 bits), which keep their own.
    Returns how many weight and activation quantizers were touched.
    """
    counts = {"weights": 0, "acts": 0}
    for name, bits in (("weight_bits", weight_bits), ("act_bits", act_bits)):
        if bits is not None:
            check_bits(bits, name)
    for _, q in quantizers(model):
        is_w = q.role == "weight"
        enabled, bits = (weights, weight_bits) if is_w else (acts, act_bits)
        if enabled is not None:
            (q.enable if enabled else q.disable)()
        if bits is not None and not getattr(q, "bits_pinned", False):
            q.set_bits(bits)
        if freeze is not None:
            (q.freeze if freeze else q.unfreeze)()
        if learn_bits is not None and q.can_learn_bits:
            q.set_learn_bits(learn_bits)
        counts["weights" if is_w else "acts"] += 1
    return counts


def project_quantizers(model: nn.Module) -> None:
    """Restore quantizer invariants after an optimizer step (positive scales, bit bounds)."""
    for _, q in quantizers(model):
        if not q.frozen:
            q.project_()


def quantizer_parameters(model: nn.Module):
    """Parameters owned by quantizers (for a separate optimizer group)."""
    seen = set()
    for _, q in quantizers(model):
        for p in q.parameters(recurse=False):
            if id(p) not in seen:
                seen.add(id(p))
                yield p


@contextmanager
def quantizers_disabled(model: nn.Module) -> Iterator[nn.Module]:
    """Temporarily pass every quantizer through (for shape probes that need no calibration)."""
    qs = [q for _, q in quantizers(model)]
    states = [q.enabled for q in qs]
    for q in qs:
        q.enabled = False
    try:
        yield model
    finally:
        for q, state in zip(qs, states):
            q.enabled = state
