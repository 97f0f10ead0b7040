"""Primitive batched image ops on (B, C, H, W) tensors; no per-image Python loops.

Random ops take a ``torch.Generator`` (None: torch's global RNG) and return what they drew,
so tests can check the result against an explicit per-sample computation.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from ..errors import DataError

Pair = Tuple[float, float]


def center_crop(batch: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, size, size), top-left at ((H-size)//2, (W-size)//2).

    >>> center_crop(torch.arange(16).view(1, 1, 4, 4), 2).flatten().tolist()
    [5, 6, 9, 10]
    """
    height, width = batch.shape[-2:]
    if size > height or size > width:
        raise DataError(f"center_crop={size} is larger than the images ({height}x{width}); "
                        "load the dataset at a larger image_size")
    top, left = (height - size) // 2, (width - size) // 2
    return batch[..., top:top + size, left:left + size]


def sample_offsets(batch_size: int, padding: int, generator: Optional[torch.Generator]):
    """Per-sample (top, left) crop offsets in [0, 2*padding]: two (B,) int64 tensors.

    >>> top, left = sample_offsets(3, 4, torch.Generator().manual_seed(0))
    >>> top.shape, bool(top.max() <= 8)
    (torch.Size([3]), True)
    """
    offsets = torch.randint(0, 2 * padding + 1, (2, batch_size), generator=generator)
    return offsets[0], offsets[1]


def crop_at(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, height: int,
            width: int) -> torch.Tensor:
    """Per-sample crops with one flat ``gather``.

    ``out[b] = images[b, :, top[b]:top[b] + height, left[b]:left[b] + width]`` for every b.

    >>> x = torch.arange(16).view(1, 1, 4, 4)
    >>> crop_at(x, torch.tensor([1]), torch.tensor([2]), 2, 2).flatten().tolist()
    [6, 7, 10, 11]
    """
    b, c, full_h, full_w = images.shape
    if len(top) and (int(top.min()) < 0 or int(left.min()) < 0 or int(top.max()) + height > full_h
                     or int(left.max()) + width > full_w):
        raise DataError(f"crop offsets out of range for {height}x{width} crops of "
                        f"{full_h}x{full_w} images")
    rows = top[:, None] + torch.arange(height)  # (B, h)
    cols = left[:, None] + torch.arange(width)  # (B, w)
    flat = (rows[:, :, None] * full_w + cols[:, None, :]).view(b, 1, height * width)  # (B,1,hw)
    out = images.reshape(b, c, full_h * full_w).gather(2, flat.expand(b, c, height * width))
    return out.view(b, c, height, width)  # (B, C, h, w)


def random_crop(batch: torch.Tensor, padding: int, generator: Optional[torch.Generator]):
    """Zero-pad by ``padding`` and crop back to (H, W) at random per-sample offsets.

    Returns the crops (B, C, H, W) and the (top, left) offsets into the padded batch.

    >>> out, (top, left) = random_crop(torch.ones(2, 3, 8, 8), 2, None)
    >>> out.shape
    torch.Size([2, 3, 8, 8])
    """
    height, width = batch.shape[-2:]
    top, left = sample_offsets(batch.shape[0], padding, generator)
    padded = F.pad(batch, (padding,) * 4)  # (B, C, H + 2p, W + 2p), zeros
    return crop_at(padded, top, left, height, width), (top, left)


def sample_flips(batch_size: int, generator: Optional[torch.Generator]) -> torch.Tensor:
    """(B,) bool mask, each True with probability 1/2.

    >>> sample_flips(4, torch.Generator().manual_seed(0)).dtype
    torch.bool
    """
    return torch.rand(batch_size, generator=generator) < 0.5


def flip_where(batch: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror (left-right) the samples where ``mask`` (B,) is True.

    >>> flip_where(torch.tensor([[[[1, 2]]], [[[3, 4]]]]), torch.tensor([True, False])).flatten()
    tensor([2, 1, 3, 4])
    """
    return torch.where(mask[:, None, None, None], batch.flip(-1), batch)


def _fallback_box(height: int, width: int, ratio: Pair) -> Tuple[float, float]:
    """Whole image, clamped to the ratio range (torchvision's fallback): (w, h)."""
    in_ratio = width / height
    if in_ratio < ratio[0]:
        return float(width), width / ratio[0]
    if in_ratio > ratio[1]:
        return height * ratio[1], float(height)
    return float(width), float(height)


def sample_rrc_boxes(batch_size: int, height: int, width: int, scale: Pair, ratio: Pair,
                     generator: Optional[torch.Generator], tries: int = 10) -> torch.Tensor:
    """Random-resized-crop boxes (B, 4) = (x0, y0, w, h) in pixel-edge units.

    Like torchvision: up to ``tries`` (area, aspect) candidates per sample, the first that
    fits wins, else the ratio-clamped whole image; vectorised over samples and tries.

    >>> boxes = sample_rrc_boxes(5, 32, 32, (0.35, 1.0), (0.75, 1.33), None)
    >>> boxes.shape, bool((boxes[:, 0] + boxes[:, 2] <= 32 + 1e-4).all())
    (torch.Size([5, 4]), True)
    """
    area = torch.rand(batch_size, tries, generator=generator) * (scale[1] - scale[0])
    area = (area + scale[0]) * (height * width)  # (B, T)
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(torch.rand(batch_size, tries, generator=generator)
                       * (log_hi - log_lo) + log_lo)  # (B, T)
    w, h = torch.sqrt(area * aspect), torch.sqrt(area / aspect)  # (B, T)
    fits = (w <= width) & (h <= height)
    first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # (B, 1) first fitting try
    fw, fh = _fallback_box(height, width, ratio)
    any_fit = fits.any(dim=1)
    w = torch.where(any_fit, w.gather(1, first)[:, 0], torch.tensor(fw))  # (B,)
    h = torch.where(any_fit, h.gather(1, first)[:, 0], torch.tensor(fh))  # (B,)
    corner = torch.rand(batch_size, 2, generator=generator)  # (B, 2) uniform position
    x0, y0 = corner[:, 0] * (width - w), corner[:, 1] * (height - h)
    return torch.stack([x0, y0, w, h], dim=1)  # (B, 4)


def resized_crop(images: torch.Tensor, boxes: torch.Tensor, size: int,
                 mirror: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Bilinear crops of float ``images`` (B, C, H, W) at ``boxes`` (B, 4) -> (B, C, size, size).

    One ``grid_sample`` call for the whole batch on an axis-aligned grid (built separably:
    ``affine_grid`` is several times slower on CPU); the box edges map to the output edges
    (``align_corners=False``). Samples where the (B,) bool ``mirror`` is True are also flipped
    left-right, for free, by negating the grid's x scale.

    >>> x = torch.arange(16.).view(1, 1, 4, 4)
    >>> torch.equal(resized_crop(x, torch.tensor([[0., 0., 4., 4.]]), 4), x)
    True
    """
    b, c, height, width = images.shape
    x0, y0, w, h = boxes.to(images.dtype).unbind(dim=1)  # each (B,)
    sign = 1.0 if mirror is None else 1.0 - 2.0 * mirror.to(images.dtype)  # (B,) or scalar
    base = (torch.arange(size, dtype=images.dtype) * 2 + 1) / size - 1  # (S,) pixel centres
    gx = (sign * w / width)[:, None] * base + ((2 * x0 + w) / width - 1)[:, None]  # (B, S)
    gy = (h / height)[:, None] * base + ((2 * y0 + h) / height - 1)[:, None]  # (B, S)
    grid = torch.stack([gx[:, None, :].expand(b, size, size),
                        gy[:, :, None].expand(b, size, size)], dim=-1)  # (B, S, S, 2) = (x, y)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border",
                         align_corners=False)  # (B, C, S, S)
