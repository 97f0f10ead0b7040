"""Is a layer's own ``forward`` linear in its input and weight? An exact probe.

Folding a batch norm into a layer's per-channel weight scales, and running a layer on integers
and rescaling afterwards, are both valid only when output channel ``o`` is a linear function of
the input and of weight row ``o``: ``f(x, w) = conv(x, w)`` with any zero padding, cropping or
reshaping around it is; a weight-standardized convolution (``conv(x, (w - mean) / std)``) is
not. The torch classes (Conv1d/Conv2d/Linear) are linear by construction; for a subclass that
overrides ``forward`` :func:`linear_probe` checks it on small random integers, where every sum
is exact in floating point, so each identity must hold bit for bit:

* additive in the input: ``f(x1 + x2, w) == f(x1, w) + f(x2, w)``;
* additive in the weight: ``f(x, w1 + w2) == f(x, w1) + f(x, w2)``;
* each output channel scales with its weight row: ``f(x, c[o] * w[o]) == c[o] * f(x, w)[o]``
  (``c`` powers of two);
* the bias adds per output channel: ``f(x, w, b) == f(x, w, 0) + b[o]``.

A forward that fails any of them (or raises on the probe) is treated as non-linear: batch
norms after it are not folded, and the integer executor runs it in floating point.

>>> import torch
>>> import torch.nn.functional as F
>>> conv = lambda x, w, b: F.conv2d(F.pad(x, (1, 1, 1, 1)), w, b)
>>> print(linear_probe(conv, (1, 2, 5, 5), (3, 2, 3, 3), out_axis=1))
None
>>> std = lambda x, w, b: F.conv2d(x, (w - w.mean()) / (w.std() + 1e-5), b)
>>> linear_probe(std, (1, 2, 5, 5), (3, 2, 3, 3), out_axis=1)
'input additivity'
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Sequence

import torch
from torch import nn

Forward = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _channel_view(t: torch.Tensor, ndim: int, axis: int) -> torch.Tensor:
    shape = [1] * ndim
    shape[axis] = -1
    return t.reshape(shape)


@torch.no_grad()
def linear_probe(f: Forward, x_shape: Sequence[int], w_shape: Sequence[int], out_axis: int,
                 dtype: torch.dtype = torch.float32, device=None) -> Optional[str]:
    """None if ``f(x, w, b)`` passes every identity of the module docstring, else the name of
    the first that fails. ``out_axis``: the output channel axis (1 for convs, -1 for linear)."""
    gen = torch.Generator().manual_seed(0)
    ints = lambda shape, lo=-2, hi=3: torch.randint(lo, hi, tuple(shape), generator=gen).to(device, dtype)  # noqa: E731
    x1, x2, w1, w2 = ints(x_shape), ints(x_shape), ints(w_shape), ints(w_shape)
    out = w_shape[0]
    zero, b = torch.zeros(out, dtype=dtype, device=device), ints((out,))
    c = torch.exp2(ints((out,), 0, 3))
    try:
        y = f(x1, w1, zero)
        if not isinstance(y, torch.Tensor) or y.dim() == 0 or y.shape[out_axis] != out:
            return "output channels"
        cv = _channel_view(c, y.dim(), out_axis)
        checks = (("input additivity", lambda: f(x1 + x2, w1, zero), lambda: y + f(x2, w1, zero)),
                  ("weight additivity", lambda: f(x1, w1 + w2, zero), lambda: y + f(x1, w2, zero)),
                  ("per-channel weight scaling", lambda: f(x1, w1 * _channel_view(c, len(w_shape), 0),
                                                           zero), lambda: y * cv),
                  ("bias", lambda: f(x1, w1, b), lambda: y + _channel_view(b, y.dim(), out_axis)))
        for name, got, want in checks:
            a, e = got(), want()
            if a.shape != e.shape or not torch.equal(a, e):
                return name
    except Exception as exc:  # a forward that cannot run on the probe is not known to be linear
        return f"probe raised {type(exc).__name__}"
    return None


@contextmanager
def swapped(module: nn.Module, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> Iterator[None]:
    """Temporarily give ``module`` these weight and bias tensors (its Parameters are restored)."""
    params = module._parameters
    saved = {k: params[k] for k in ("weight", "bias") if k in params}
    params["weight"], params["bias"] = weight, bias
    try:
        yield
    finally:
        for k in ("weight", "bias"):
            params.pop(k, None)
        params.update(saved)


def out_axis(module: nn.Module) -> int:
    """The output channel axis of ``module``'s output: -1 for Linear, 1 for convolutions."""
    return -1 if isinstance(module, nn.Linear) else 1


def module_is_linear(module: nn.Module, x: torch.Tensor) -> bool:
    """:func:`linear_probe` of a float or prepared Conv/Linear on inputs shaped like ``x``
    (quantizers, if any, must be disabled). Calls the class's forward directly: no hooks run."""
    forward = type(module).forward

    def f(xp, w, b):
        with swapped(module, w, b):
            return forward(module, xp)

    shape = (1,) + tuple(x.shape[1:]) if x.dim() > 1 else tuple(x.shape)
    w = module._parameters["weight"]
    return linear_probe(f, shape, tuple(w.shape), out_axis(module), w.dtype, w.device) is None
