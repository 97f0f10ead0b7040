"""Batched augmentation on uint8 tensors: every op works on the whole batch at once.

The primitive ops live in :mod:`lowbit.data.transforms`. Order inside :func:`apply_augment`:
center crop -> pad + random crop -> horizontal flip -> random resized crop -> normalise
(with a random resized crop the flip is folded into its sampling grid: the crop is mirrored).
Random draws happen in that order from one generator, so the output is a pure function of
(batch, augment, generator state).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch

from ..errors import ConfigError, DataError
from . import transforms as T

Pair = Tuple[float, float]


def _positive_int(name: str, value: object, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"Augment.{name} must be an int >= {low}, got {value!r}")


def _pair(name: str, value: Sequence[float], low: float, high: float) -> Pair:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"Augment.{name} must be a pair (low, high), got {value!r}") from None
    if not (low < lo <= hi <= high):
        raise ConfigError(f"Augment.{name} needs {low} < low <= high <= {high}, got {value!r}")
    return lo, hi


@dataclass(frozen=True)
class Augment:
    """A batched augmentation + normalisation recipe (validated on construction).

    ``crop_padding``: zero-pad by this much and take a random crop of the input size.
    ``random_resized_crop``: output size of a random-area, random-aspect crop resampled
    bilinearly (``rrc_scale`` = area fraction, ``rrc_ratio`` = width/height range).
    ``center_crop``: deterministic center crop (eval). ``mean``/``std``: per-channel (or one
    shared value) in [0, 1] pixel units.

    >>> Augment(crop_padding=4, flip=True, mean=(0.5,), std=(0.25,)).is_random
    True
    """

    crop_padding: int = 0
    flip: bool = False
    random_resized_crop: Optional[int] = None
    rrc_scale: Pair = (0.35, 1.0)
    rrc_ratio: Pair = (3 / 4, 4 / 3)
    center_crop: Optional[int] = None
    mean: Tuple[float, ...] = (0.0,)
    std: Tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        _positive_int("crop_padding", self.crop_padding, allow_zero=True)
        if not isinstance(self.flip, bool):
            raise ConfigError(f"Augment.flip must be true/false, got {self.flip!r}")
        for name in ("random_resized_crop", "center_crop"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        if self.random_resized_crop is not None and self.crop_padding:
            raise ConfigError("Augment: use either crop_padding or random_resized_crop, not both")
        object.__setattr__(self, "rrc_scale", _pair("rrc_scale", self.rrc_scale, 0.0, 1.0))
        object.__setattr__(self, "rrc_ratio", _pair("rrc_ratio", self.rrc_ratio, 0.0, math.inf))
        self._set_stats()

    def _set_stats(self) -> None:
        mean, std = tuple(map(float, self.mean)), tuple(map(float, self.std))
        if not mean or len(mean) != len(std):
            raise ConfigError(f"Augment.mean and .std need the same non-zero length, got "
                              f"{self.mean!r} / {self.std!r}")
        if any(not math.isfinite(s) or s <= 0 for s in std) or not all(map(math.isfinite, mean)):
            raise ConfigError(f"Augment.std must be finite and > 0 (mean finite), got {std}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @property
    def is_random(self) -> bool:
        """Whether the output depends on the generator."""
        return bool(self.crop_padding or self.flip or self.random_resized_crop)


def _normalise(batch: torch.Tensor, mean: Tuple[float, ...], std: Tuple[float, ...]):
    """uint8-scale (B, C, H, W) -> float32 ``(x / 255 - mean) / std``."""
    x = batch.to(torch.float32)
    if len(mean) not in (1, x.shape[1]):
        raise DataError(f"Augment has {len(mean)} mean/std values but the images have "
                        f"{x.shape[1]} channels; use the dataset's mean/std")
    shift = torch.tensor(mean, dtype=torch.float32).mul_(255).view(1, -1, 1, 1)  # (1, C, 1, 1)
    scale = torch.tensor(std, dtype=torch.float32).mul_(255).reciprocal_().view(1, -1, 1, 1)
    return x.sub_(shift).mul_(scale)


def apply_augment(batch: torch.Tensor, aug: Augment,
                  generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Augment and normalise a uint8 batch (B, C, H, W) -> float32 (B, C, h, w).

    >>> x = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    >>> g = torch.Generator().manual_seed(0)
    >>> apply_augment(x, Augment(crop_padding=4, flip=True), g).shape
    torch.Size([8, 3, 32, 32])
    """
    if batch.dtype != torch.uint8 or batch.dim() != 4:
        raise DataError(f"apply_augment expects uint8 (B, C, H, W), got {batch.dtype} "
                        f"{tuple(batch.shape)}")
    bsz = batch.shape[0]
    if aug.center_crop is not None:
        batch = T.center_crop(batch, aug.center_crop)  # (B, C, c, c)
    if aug.crop_padding:
        batch, _ = T.random_crop(batch, aug.crop_padding, generator)  # (B, C, H, W)
    flips = T.sample_flips(bsz, generator) if aug.flip else None  # (B,) bool
    if aug.random_resized_crop is None:
        if flips is not None:
            batch = T.flip_where(batch, flips)
        return _normalise(batch, aug.mean, aug.std).contiguous()
    height, width = batch.shape[-2:]
    boxes = T.sample_rrc_boxes(bsz, height, width, aug.rrc_scale, aug.rrc_ratio, generator)
    x = T.resized_crop(batch.to(torch.float32), boxes, aug.random_resized_crop, flips)  # (B,C,S,S)
    return _normalise(x, aug.mean, aug.std).contiguous()
