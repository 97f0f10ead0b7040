"""The dataset registry and :func:`load_split`, the one entry point that returns an ImageSet.

>>> list_datasets()
['cifar10', 'fashion_mnist', 'imagenette', 'mnist']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import torch

from ..errors import ConfigError
from ..registry import Registry
from .cache import Arrays
from .cifar import load_cifar10
from .imagefolder import IMAGENETTE_STORED, load_imagenette
from .imageset import ImageSet
from .locate import PathLike, resolve_cache_dir, resolve_data_dir
from .mnist import load_fashion_mnist, load_mnist

SPLITS = ("train", "test")

# (data_dir, split, stored_size, limit, cache_dir) -> arrays
Loader = Callable[[Path, str, int, Optional[int], Optional[Path]], Arrays]


@dataclass(frozen=True)
class DatasetInfo:
    """What :func:`load_split` needs to know about a dataset.

    ``mean``/``std`` are per-channel train-split statistics in [0, 1] pixel units (computed
    once on the local copy and hard-coded). ``fixed_size`` datasets have one pixel size;
    the others are decoded to a chosen stored size (default ``default_size``) and cached.
    """

    name: str
    load: Loader
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    default_size: int
    num_classes: int
    fixed_size: bool
    uses_cache: bool
    description: str

    def stored_size(self, image_size: Optional[int]) -> int:
        """The stored pixel size for a requested ``image_size`` (None: the default)."""
        if image_size is None:
            return self.default_size
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ConfigError(f"image_size must be a positive int, got {image_size!r}")
        if self.fixed_size and image_size != self.default_size:
            raise ConfigError(f"{self.name} images are {self.default_size} px; image_size="
                              f"{image_size} is not supported (leave it unset)")
        return image_size


DATASETS = Registry("dataset")


def _register(info: DatasetInfo) -> None:
    DATASETS.register(info.name)(info)


_register(DatasetInfo(
    "mnist", lambda root, split, size, limit, cache: load_mnist(root, split, limit),
    mean=(0.1307,), std=(0.3081,), default_size=28, num_classes=10, fixed_size=True,
    uses_cache=False, description="MNIST digits, 60k/10k, 1x28x28 (IDX files)"))
_register(DatasetInfo(
    "fashion_mnist", lambda root, split, size, limit, cache: load_fashion_mnist(root, split, limit),
    mean=(0.2860,), std=(0.3530,), default_size=28, num_classes=10, fixed_size=True,
    uses_cache=False, description="Fashion-MNIST, 60k/10k, 1x28x28 (IDX files)"))
_register(DatasetInfo(
    "cifar10", lambda root, split, size, limit, cache: load_cifar10(root, split, limit, cache),
    mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), default_size=32,
    num_classes=10, fixed_size=True, uses_cache=True,
    description="CIFAR-10, 50k/10k, 3x32x32 (python batches or JPEG copy)"))
_register(DatasetInfo(
    "imagenette", load_imagenette,
    mean=(0.4666, 0.4588, 0.4302), std=(0.2794, 0.2759, 0.2976),
    default_size=IMAGENETTE_STORED, num_classes=10, fixed_size=False, uses_cache=True,
    description="Imagenette v2 (10 ImageNet classes), 9469/3925, stored 3x160x160"))


def list_datasets() -> List[str]:
    """Names accepted by :func:`load_split`.

    >>> "cifar10" in list_datasets()
    True
    """
    return DATASETS.names()


def _check_args(split: str, limit: Optional[int]) -> None:
    if split not in SPLITS:
        hint = " (imagenette's 'val' folder is split 'test')" if split == "val" else ""
        raise ConfigError(f"unknown split {split!r}{hint}; valid: {', '.join(SPLITS)}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit must be a positive int or None, got {limit!r}")


def load_split(name: str, split: str, data_dir: Optional[PathLike] = None,
               image_size: Optional[int] = None, limit: Optional[int] = None,
               cache_dir: Optional[PathLike] = None) -> ImageSet:
    """Load one split of a registered dataset into memory as uint8 tensors.

    ``image_size`` is the stored size (only imagenette accepts values other than the native
    size); ``limit`` keeps the first N samples in official order without decoding the rest;
    decoded JPEG splits are cached in ``cache_dir`` (default ``$LOWBIT_CACHE`` or
    ``~/.cache/lowbit``).

    >>> test = load_split("mnist", "test", limit=100)  # doctest: +SKIP
    >>> test.images.shape, test.labels.dtype  # doctest: +SKIP
    (torch.Size([100, 1, 28, 28]), torch.int64)
    """
    info: DatasetInfo = DATASETS.get(name)
    _check_args(split, limit)
    size = info.stored_size(image_size)
    root = resolve_data_dir(data_dir)
    cache = resolve_cache_dir(cache_dir) if info.uses_cache else None
    images, labels, classes = info.load(root, split, size, limit, cache)
    return ImageSet(torch.from_numpy(images), torch.from_numpy(labels), classes, name,
                    info.mean, info.std, split)
