"""The in-memory image dataset every loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Tuple

import numpy as np
import torch

from ..errors import DataError


@dataclass
class ImageSet:
    """A whole split held in memory as uint8 pixels.

    ``images`` is (N, C, H, W) uint8 and contiguous, ``labels`` (N,) int64 in
    ``[0, len(classes))``. ``mean``/``std`` are per-channel statistics of the train split in
    [0, 1] pixel units, used for normalisation.

    >>> s = ImageSet(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1]),
    ...              ["a", "b"], "toy", (0.5,), (0.25,))
    >>> len(s), s.num_classes, s.image_shape
    (2, 2, (1, 4, 4))
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: List[str]
    name: str
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    split: str = field(default="")

    def __post_init__(self) -> None:
        if isinstance(self.images, np.ndarray):
            self.images = torch.from_numpy(self.images)
        if isinstance(self.labels, np.ndarray):
            self.labels = torch.from_numpy(self.labels)
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DataError(f"{self.name}: images must be uint8 (N, C, H, W), got "
                            f"{self.images.dtype} {tuple(self.images.shape)}")
        self.images = self.images.contiguous()  # (N, C, H, W)
        self.labels = self.labels.to(torch.int64).reshape(-1).contiguous()  # (N,)
        if len(self.labels) != len(self.images):
            raise DataError(f"{self.name}: {len(self.images)} images but {len(self.labels)} labels")
        self.classes = [str(c) for c in self.classes]
        self.mean, self.std = tuple(map(float, self.mean)), tuple(map(float, self.std))
        self._check_ranges()

    def _check_ranges(self) -> None:
        if len(self.mean) != self.images.shape[1] or len(self.std) != self.images.shape[1]:
            raise DataError(f"{self.name}: mean/std need one value per channel "
                            f"({self.images.shape[1]}), got {self.mean} / {self.std}")
        if len(self.labels) and (int(self.labels.min()) < 0
                                 or int(self.labels.max()) >= len(self.classes)):
            raise DataError(f"{self.name}: labels outside [0, {len(self.classes)}); the label "
                            "file does not match the class list")

    @property
    def num_classes(self) -> int:
        """Number of classes (``len(classes)``)."""
        return len(self.classes)

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (f"ImageSet(name={self.name!r}, split={self.split!r}, n={len(self)}, "
                f"shape={self.image_shape}, classes={self.num_classes})")
