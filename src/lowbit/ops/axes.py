"""Shapes for quantization granularity: per-tensor, per-channel along any axis, per-group.

Quantization parameters are stored compactly (a scalar, a (C,) vector, or a (C, G) matrix
of groups) and broadcast against the tensor with these helpers.

>>> import torch
>>> x = torch.zeros(8, 3, 3, 3)
>>> broadcast_shape(x, axis=0)
(8, 1, 1, 1)
>>> to_groups(torch.zeros(4, 12), group_size=4).shape
torch.Size([4, 3, 4])
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from ..errors import ConfigError


def normalize_axis(axis: int, ndim: int) -> int:
    """Map a possibly negative axis into ``0..ndim-1`` with a clear error when out of range."""
    if not -ndim <= axis < ndim:
        raise ConfigError(f"axis {axis} is out of range for a tensor with {ndim} dimensions")
    return axis % ndim


def broadcast_shape(x: torch.Tensor, axis: Optional[int]) -> Tuple[int, ...]:
    """Shape that a per-``axis`` vector takes to broadcast against ``x`` (all ones if None)."""
    shape = [1] * x.dim()
    if axis is not None:
        axis = normalize_axis(axis, x.dim())
        shape[axis] = x.shape[axis]
    return tuple(shape)


def reduce_dims(ndim: int, axis: Optional[int]) -> Tuple[int, ...]:
    """Dimensions to reduce over when computing a statistic per ``axis`` (all if None)."""
    if axis is None:
        return tuple(range(ndim))
    axis = normalize_axis(axis, ndim)
    return tuple(d for d in range(ndim) if d != axis)


def per_axis(param: torch.Tensor, x: torch.Tensor, axis: Optional[int]) -> torch.Tensor:
    """View a compact parameter (scalar or (C,)) so it broadcasts against ``x``."""
    if param.dim() == 0 or axis is None:
        return param.reshape(()) if param.numel() == 1 else param
    return param.reshape(broadcast_shape(x, axis))


def to_groups(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """View ``x`` as (rows, n_groups, group_size): rows = dim 0, the rest flattened and chunked.

    A (O, I) weight with group size G becomes (O, I // G, G); a conv weight (O, I, kh, kw) is
    grouped along its flattened I*kh*kw fan-in. Group parameters have shape (O, I // G).
    """
    if x.dim() < 2:
        raise ConfigError("per-group quantization needs a tensor with at least 2 dimensions")
    fan_in = x[0].numel()
    if group_size < 1 or fan_in % group_size:
        raise ConfigError(
            f"group_size {group_size} must divide the fan-in {fan_in} of a {tuple(x.shape)} tensor; "
            f"choose a divisor of {fan_in} or use per-channel quantization"
        )
    return x.reshape(x.shape[0], fan_in // group_size, group_size)
