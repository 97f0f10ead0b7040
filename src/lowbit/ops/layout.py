"""Canonical 1-D / 2-D views for elementwise kernels: one compiled graph for every layer shape.

Fake quantization is elementwise between a tensor ``x`` and parameters that are either scalars
(per-tensor) or one value per index of dimension 0 (per output channel). Seen through a view
that lists ``x`` in memory order, every layer of every shape is ``(N,)`` with scalar
parameters, or ``(C, n)`` with ``(C, 1)`` parameters; a compiled kernel then needs one graph
per rank, not one per layer shape and memory format (4-D convolution weights, 2-D linear
weights, channels-last activations, 3-D transformer activations, ...). The views share memory
with ``x``: no copy, the same values element by element.

>>> import torch
>>> x = torch.randn(8, 3, 4, 4).contiguous(memory_format=torch.channels_last)
>>> flat, params, restore = canonical(x, [torch.ones(8, 1, 1, 1)])
>>> tuple(flat.shape), tuple(params[0].shape), restore(flat).stride() == x.stride()
((8, 48), (8, 1), True)
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import torch

Restore = Callable[[torch.Tensor], torch.Tensor]


def _memory_order(x: torch.Tensor, keep_first: bool) -> Optional[List[int]]:
    """A permutation of x's dims, outermost in memory first (dim 0 kept first if asked), under
    which x is contiguous; None if there is none (overlapping or expanded strides)."""
    rest = range(1, x.dim()) if keep_first else range(x.dim())
    order = sorted(rest, key=lambda d: (-x.stride(d), d))
    perm = ([0] if keep_first else []) + order
    return perm if x.permute(perm).is_contiguous() else None


def _per_channel(p: torch.Tensor, x: torch.Tensor) -> bool:
    return p.dim() == x.dim() and p.shape[0] == x.shape[0] and all(s == 1 for s in p.shape[1:])


def canonical(x: torch.Tensor, params: Sequence) -> Tuple[torch.Tensor, List, Restore]:
    """(view of ``x``, ``params`` reshaped to broadcast against it, restore). Tensor params
    must all be scalars (one element) or all per-dim-0; otherwise (e.g. group or column
    slices) ``x`` and ``params`` come back unchanged. Non-tensor params pass through."""
    tensors = [p for p in params if isinstance(p, torch.Tensor)]
    same = lambda: (x, list(params), lambda y: y)  # noqa: E731
    if x.dim() == 0:
        return same()
    if all(p.numel() == 1 for p in tensors):
        perm, lead = _memory_order(x, keep_first=False), None
    elif x.dim() > 1 and all(p.numel() == 1 or _per_channel(p, x) for p in tensors):
        perm, lead = _memory_order(x, keep_first=True), x.shape[0]
    else:
        return same()
    if perm is None:
        return same()
    xp = x.permute(perm)
    view = xp.reshape(-1) if lead is None else xp.reshape(lead, -1)
    inverse = [perm.index(d) for d in range(x.dim())]

    def shaped(p):
        if not isinstance(p, torch.Tensor):
            return p
        return p.reshape(()) if p.numel() == 1 else p.reshape(lead, 1)

    return view, [shaped(p) for p in params], lambda y: y.reshape(xp.shape).permute(inverse)
