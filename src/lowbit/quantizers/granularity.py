"""How one set of quantization parameters maps onto a tensor.

``tensor``: one scale. ``channel``: one per index of ``axis``. ``group``: one per row and
chunk of ``group_size`` along the flattened fan-in. Parameters are stored compactly
(``param_shape``) and expanded against a *view* of the tensor.

>>> import torch
>>> g = Granularity("group", group_size=4)
>>> g.param_shape((8, 12))
(8, 3)
>>> w = torch.randn(8, 12)
>>> g.expand(torch.ones(8, 3), g.view(w)).shape
torch.Size([8, 3, 1])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch

from ..ops.axes import normalize_axis, to_groups


@dataclass(frozen=True)
class Granularity:
    mode: str = "tensor"
    axis: int = 0
    group_size: Optional[int] = None

    def param_shape(self, x_shape: Sequence[int]) -> Tuple[int, ...]:
        """Compact shape of a per-granularity parameter for a tensor of ``x_shape``."""
        if self.mode == "tensor":
            return ()
        if self.mode == "channel":
            return (int(x_shape[normalize_axis(self.axis, len(x_shape))]),)
        g = to_groups(torch.empty(tuple(x_shape), device="meta"), self.group_size)
        return (g.shape[0], g.shape[1])

    def view(self, x: torch.Tensor) -> torch.Tensor:
        """The tensor as quantized: grouped (rows, groups, group_size) for ``group``."""
        return to_groups(x, self.group_size) if self.mode == "group" else x

    def restore(self, y: torch.Tensor, x_shape: Sequence[int]) -> torch.Tensor:
        return y.reshape(tuple(x_shape)) if self.mode == "group" else y

    def expand(self, param: torch.Tensor, xv: torch.Tensor) -> torch.Tensor:
        """Broadcast a compact parameter against the view ``xv``."""
        if self.mode == "tensor":
            return param
        if self.mode == "group":
            return param.unsqueeze(-1)
        shape = [1] * xv.dim()
        axis = normalize_axis(self.axis, xv.dim())
        shape[axis] = xv.shape[axis]
        return param.reshape(shape)

    def reduce_dims(self, xv: torch.Tensor) -> Tuple[int, ...]:
        """Dimensions of the view that one parameter value spans."""
        if self.mode == "tensor":
            return tuple(range(xv.dim()))
        if self.mode == "group":
            return (xv.dim() - 1,)
        axis = normalize_axis(self.axis, xv.dim())
        return tuple(d for d in range(xv.dim()) if d != axis)

    def per_param_count(self, x_shape: Sequence[int]) -> int:
        """Number of tensor elements that share one parameter value."""
        n = 1
        for d in x_shape:
            n *= int(d)
        count = 1
        for d in self.param_shape(x_shape):
            count *= d
        return max(n // max(count, 1), 1)

    def flat_slices(self, xv: torch.Tensor) -> torch.Tensor:
        """(num_params, elements_per_param) view for per-slice statistics (quantiles)."""
        if self.mode == "tensor":
            return xv.reshape(1, -1)
        if self.mode == "group":
            return xv.reshape(-1, xv.shape[-1])
        axis = normalize_axis(self.axis, xv.dim())
        return xv.movedim(axis, 0).reshape(xv.shape[axis], -1)
