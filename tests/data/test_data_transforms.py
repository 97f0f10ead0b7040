"""Primitive batched ops checked against explicit per-sample computations."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lowbit.data import transforms as T
from lowbit.errors import DataError

FAST = settings(max_examples=40, deadline=None)


def _batch(b, c, h, w, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, c, h, w), dtype=torch.uint8, generator=gen)


@FAST
@given(b=st.integers(1, 6), c=st.integers(1, 3), h=st.integers(1, 12), w=st.integers(1, 12),
       pad=st.integers(0, 5), seed=st.integers(0, 2**31))
def test_random_crop_equals_explicit_slice_of_padded(b, c, h, w, pad, seed):
    x = _batch(b, c, h, w, seed)
    out, (top, left) = T.random_crop(x, pad, torch.Generator().manual_seed(seed))
    padded = F.pad(x, (pad,) * 4)
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert int(top.max()) <= 2 * pad and int(left.max()) <= 2 * pad
    for i in range(b):
        t, l = int(top[i]), int(left[i])
        assert torch.equal(out[i], padded[i, :, t:t + h, l:l + w])


def test_crop_with_padding_zero_is_identity():
    x = _batch(5, 3, 8, 8)
    out, (top, left) = T.random_crop(x, 0, torch.Generator().manual_seed(1))
    assert torch.equal(out, x) and top.eq(0).all() and left.eq(0).all()
    zero = torch.zeros(5, dtype=torch.int64)
    assert torch.equal(T.crop_at(x, zero, zero, 8, 8), x)


def test_crop_at_rejects_out_of_range_offsets():
    with pytest.raises(DataError, match="out of range"):
        T.crop_at(_batch(1, 1, 4, 4), torch.tensor([1]), torch.tensor([0]), 4, 4)


def test_padding_is_zero():
    x = torch.full((64, 1, 4, 4), 255, dtype=torch.uint8)
    out, (top, left) = T.random_crop(x, 2, torch.Generator().manual_seed(0))
    shifted = (top != 2) | (left != 2)
    assert (out[shifted] == 0).flatten(1).any(1).all()  # every moved crop shows some padding
    assert (out[~shifted] == 255).all()


def test_flip_twice_is_identity_and_mask_respected():
    x = _batch(16, 3, 5, 7)
    mask = T.sample_flips(16, torch.Generator().manual_seed(3))
    once = T.flip_where(x, mask)
    assert torch.equal(T.flip_where(once, mask), x)
    assert torch.equal(once[mask], x[mask].flip(-1)) and torch.equal(once[~mask], x[~mask])
    assert 0 < int(mask.sum()) < 16


def test_center_crop_matches_slice_and_rejects_too_large():
    x = _batch(2, 3, 10, 12)
    assert torch.equal(T.center_crop(x, 6), x[..., 2:8, 3:9])
    with pytest.raises(DataError, match="larger than the images"):
        T.center_crop(x, 11)


def test_resized_crop_identity_and_integer_box():
    x = _batch(3, 3, 16, 16).float()
    whole = torch.tensor([[0.0, 0.0, 16.0, 16.0]]).repeat(3, 1)
    assert torch.allclose(T.resized_crop(x, whole, 16), x, atol=1e-2)  # 0..255 scale
    box = torch.tensor([[2.0, 5.0, 8.0, 8.0], [0.0, 0.0, 8.0, 8.0], [8.0, 8.0, 8.0, 8.0]])
    out = T.resized_crop(x, box, 8)
    for i, (x0, y0, _, _) in enumerate(box.long().tolist()):
        assert torch.allclose(out[i], x[i, :, y0:y0 + 8, x0:x0 + 8], atol=1e-2)


def _affine_reference(x, boxes, size):
    """The textbook version: an affine_grid theta per sample, then grid_sample."""
    b, c, h, w = x.shape
    x0, y0, bw, bh = boxes.unbind(1)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = bw / w, (2 * x0 + bw) / w - 1
    theta[:, 1, 1], theta[:, 1, 2] = bh / h, (2 * y0 + bh) / h - 1
    grid = F.affine_grid(theta, [b, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@FAST
@given(b=st.integers(1, 6), h=st.integers(2, 20), w=st.integers(2, 20), size=st.integers(1, 16),
       seed=st.integers(0, 2**31))
def test_resized_crop_matches_affine_grid_reference(b, h, w, size, seed):
    gen = torch.Generator().manual_seed(seed)
    x = _batch(b, 3, h, w, seed).float()
    boxes = T.sample_rrc_boxes(b, h, w, (0.1, 1.0), (0.5, 2.0), gen)
    assert torch.allclose(T.resized_crop(x, boxes, size), _affine_reference(x, boxes, size),
                          atol=1e-2)


@FAST
@given(b=st.integers(1, 8), size=st.integers(1, 12), seed=st.integers(0, 2**31))
def test_mirror_in_resized_crop_equals_flipping_its_output(b, size, seed):
    gen = torch.Generator().manual_seed(seed)
    x = _batch(b, 2, 10, 14, seed).float()
    boxes = T.sample_rrc_boxes(b, 10, 14, (0.2, 1.0), (0.5, 2.0), gen)
    mask = T.sample_flips(b, gen)
    want = T.flip_where(T.resized_crop(x, boxes, size), mask)
    assert torch.allclose(T.resized_crop(x, boxes, size, mask), want, atol=1e-2)


@FAST
@given(b=st.integers(1, 32), h=st.integers(4, 64), w=st.integers(4, 64),
       lo=st.floats(0.05, 1.0), seed=st.integers(0, 2**31))
def test_rrc_boxes_inside_image_and_follow_scale(b, h, w, lo, seed):
    scale, ratio = (lo, 1.0), (3 / 4, 4 / 3)
    boxes = T.sample_rrc_boxes(b, h, w, scale, ratio, torch.Generator().manual_seed(seed))
    x0, y0, bw, bh = boxes.unbind(1)
    eps = 1e-3
    assert (x0 >= -eps).all() and (y0 >= -eps).all()
    assert (x0 + bw <= w + eps).all() and (y0 + bh <= h + eps).all()
    area = bw * bh / (h * w)
    aspect = bw / bh
    fw, fh = T._fallback_box(h, w, ratio)
    fallback = torch.isclose(bw, torch.tensor(fw)) & torch.isclose(bh, torch.tensor(fh))
    ok = (area >= lo - eps) & (aspect >= ratio[0] - eps) & (aspect <= ratio[1] + eps)
    assert (ok | fallback).all()


def test_rrc_fallback_is_ratio_clamped_whole_image():
    boxes = T.sample_rrc_boxes(4, 10, 100, (0.99, 1.0), (1.0, 1.0), None)
    assert torch.allclose(boxes[:, 2:], torch.tensor([10.0, 10.0]).expand(4, 2))
    assert math.isclose(T._fallback_box(10, 10, (0.5, 2.0))[0], 10.0)
