"""Shared fixtures for the lowbit.data tests: the real data folder and hand-made files."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

from lowbit.data.locate import resolve_data_dir
from lowbit.errors import DataError


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real datasets (``$LOWBIT_DATA`` or ``../shared/data``); skip the test if absent."""
    try:
        return resolve_data_dir()
    except DataError as exc:
        pytest.skip(f"real datasets not available: {exc}")


@pytest.fixture(autouse=True)
def _private_default_cache(tmp_path: Path, monkeypatch) -> None:
    """Never let a test write to the user's ~/.cache/lowbit."""
    monkeypatch.setenv("LOWBIT_CACHE", str(tmp_path / "default-cache"))


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """A fresh, empty cache folder per test."""
    return tmp_path / "cache"


def idx_bytes(array: np.ndarray, magic_type: int = 0x08) -> bytes:
    """Encode a uint8 array as an IDX file (header + row-major data)."""
    header = bytes([0, 0, magic_type, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """Write ``array`` as an IDX file at ``path`` (gzip-compressed when ``gz``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def make_mnist_dir(root: Path, sub: str = "mnist", n: int = 12, gz: bool = True,
                   seed: int = 0) -> tuple:
    """A tiny MNIST-layout folder; returns (train images (n,28,28), train labels (n,))."""
    rng = np.random.default_rng(seed)
    ext = ".gz" if gz else ""
    out = None
    for stem, count in (("train", n), ("t10k", n // 2)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count, dtype=np.uint8)
        write_idx(root / sub / f"{stem}-images-idx3-ubyte{ext}", images, gz)
        write_idx(root / sub / f"{stem}-labels-idx1-ubyte{ext}", labels, gz)
        out = out or (images, labels)
    return out


def cifar_batch(n: int, seed: int, protocol: int = 2) -> tuple:
    """A CIFAR-python-style batch dict pickled with ``protocol``: (bytes, data, labels)."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)  # (n, 3072): R, G, B planes
    labels = rng.integers(0, 10, n).tolist()
    batch = {"batch_label": "fake batch", "labels": labels, "data": data,
             "filenames": [f"img_{i}.png" for i in range(n)]}
    return pickle.dumps(batch, protocol=protocol), data, labels


def make_cifar_py_dir(root: Path, n: int = 6, protocol: int = 2,
                      meta: Optional[list] = None) -> dict:
    """Write ``cifar-10-batches-py`` with 5 train batches + test batch of ``n`` rows each."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        raw, data, labels = cifar_batch(n, seed=i, protocol=protocol)
        (folder / name).write_bytes(raw)
        made[name] = (data, labels)
    if meta is not None:
        (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": meta}, protocol=2))
    return made


@pytest.fixture
def make():
    """The file builders above, as a fixture (no cross-test-module imports needed)."""
    from types import SimpleNamespace

    return SimpleNamespace(idx_bytes=idx_bytes, write_idx=write_idx,
                           mnist_dir=make_mnist_dir, cifar_batch=cifar_batch,
                           cifar_py_dir=make_cifar_py_dir)
