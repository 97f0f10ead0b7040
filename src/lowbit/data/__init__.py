"""Datasets, batched augmentation and deterministic batching (torch/numpy/PIL only).

>>> from lowbit.data import load_split, BatchLoader, train_augment
>>> train = load_split("cifar10", "train", limit=1000)  # doctest: +SKIP
>>> aug = train_augment("cifar10")
>>> loader = BatchLoader(train, 128, augment=aug, shuffle=True)  # doctest: +SKIP
>>> x, y = next(iter(loader))  # x (128, 3, 32, 32) float32, y (128,) int64  # doctest: +SKIP
"""

from .augment import Augment, apply_augment
from .datasets import DATASETS, list_datasets, load_split
from .imageset import ImageSet
from .loader import BatchLoader
from .locate import resolve_data_dir
from .presets import eval_augment, train_augment

__all__ = [
    "resolve_data_dir",
    "DATASETS",
    "list_datasets",
    "load_split",
    "ImageSet",
    "Augment",
    "apply_augment",
    "train_augment",
    "eval_augment",
    "BatchLoader",
]
