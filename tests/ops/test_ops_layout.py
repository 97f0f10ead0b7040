"""Canonical views for the compiled kernels: same memory, same values, every layout."""

import pytest
import torch

from lowbit.ops.layout import canonical


@pytest.mark.parametrize("shape,pshape,fmt,want", [
    ((6, 4, 3, 3), (6, 1, 1, 1), torch.contiguous_format, ((6, 36), (6, 1))),
    ((6, 4, 3, 3), (6, 1, 1, 1), torch.channels_last, ((6, 36), (6, 1))),
    ((5, 7), (5, 1), torch.contiguous_format, ((5, 7), (5, 1))),
    ((2, 4, 5, 5), (), torch.channels_last, ((200,), ())),
    ((2, 3, 8), (1, 1, 1), torch.contiguous_format, ((48,), ())),
])
def test_views_share_memory_and_restore_the_layout(shape, pshape, fmt, want):
    x = torch.randn(shape)
    x = x.contiguous(memory_format=fmt) if x.dim() == 4 else x
    p = torch.rand(pshape) + 0.5
    view, (q,), restore = canonical(x, [p])
    assert (tuple(view.shape), tuple(q.shape)) == want
    assert view.data_ptr() == x.data_ptr()
    back = restore(view * q)
    assert back.shape == x.shape and back.stride() == x.stride()
    assert torch.equal(back, x * p)


def test_other_layouts_pass_through():
    x = torch.randn(4, 6)
    col = torch.rand(1, 6)  # per column: not per dim 0
    view, params, restore = canonical(x, [col, 3])
    assert view is x and params[0] is col and params[1] == 3 and restore(view) is view
    expanded = torch.randn(4, 1).expand(4, 6)  # overlapping strides have no flat view
    assert canonical(expanded, [torch.tensor(1.0)])[0] is expanded
