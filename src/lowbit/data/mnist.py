"""MNIST and Fashion-MNIST from the official IDX files (gzip or not); no cache needed."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

from .cache import Arrays
from .idx import find_idx_pair, idx_names, load_idx_pair
from .locate import missing_dataset

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

# Folders searched inside the data directory, in order (ours, then torchvision's layout).
SEARCH_DIRS: Dict[str, Sequence[str]] = {
    "mnist": ("mnist", "MNIST/raw"),
    "fashion_mnist": ("fashion-mnist", "FashionMNIST/raw"),
}


def load_idx_dataset(name: str, classes: List[str], data_dir: Path, split: str,
                     limit: Optional[int] = None) -> Arrays:
    """Images (N, 1, 28, 28) uint8, labels (N,) int64 and class names of an IDX dataset.

    >>> load_idx_dataset("mnist", MNIST_CLASSES, Path("data"), "test", 4)[1]  # doctest: +SKIP
    array([7, 2, 1, 0])
    """
    folders = [data_dir / sub for sub in SEARCH_DIRS[name]]
    pair = find_idx_pair(folders, split)
    if pair is None:
        expected = " + ".join(idx_names(split)[:2]) + " (gzip or not)"
        raise missing_dataset(name, folders, expected)
    images, labels = load_idx_pair(*pair, limit=limit)
    return images, labels, list(classes)


def load_mnist(data_dir: Path, split: str, limit: Optional[int] = None) -> Arrays:
    """MNIST from ``<data_dir>/mnist/`` or ``<data_dir>/MNIST/raw/``.

    >>> images, labels, classes = load_mnist(Path("data"), "test")  # doctest: +SKIP
    """
    return load_idx_dataset("mnist", MNIST_CLASSES, data_dir, split, limit)


def load_fashion_mnist(data_dir: Path, split: str, limit: Optional[int] = None) -> Arrays:
    """Fashion-MNIST from ``<data_dir>/fashion-mnist/`` or ``<data_dir>/FashionMNIST/raw/``.

    >>> images, labels, classes = load_fashion_mnist(Path("data"), "test")  # doctest: +SKIP
    """
    return load_idx_dataset("fashion_mnist", FASHION_CLASSES, data_dir, split, limit)
