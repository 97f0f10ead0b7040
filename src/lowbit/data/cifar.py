"""CIFAR-10 from the official python batches or from a JPEG copy (zip or folder tree).

Search order inside the data directory (exact pixels first):

1. ``cifar-10-batches-py/{data_batch_1..5,test_batch}``: official python pickles, read with a
   restricted unpickler (no arbitrary code).
2. ``cifar10-jpeg/cifar10_jpeg.zip`` with members ``train/<class>/NNNN.jpg``.
3. ``cifar10-jpeg/{train,test}/<class>/*.jpg`` (the zip extracted).

For JPEG copies the official order is restored with the labels in
``cifar10-official-partial/cifar10_official_prefix.npz`` (``NNNN`` is an image's rank within
its class in official order); without that file the order is class folder by class folder.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import DataError
from .cache import Arrays, cache_path, cached, fingerprint
from .decode import decode_parallel
from .jpeg import JpegSource
from .locate import missing_dataset
from .safe_pickle import safe_load

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
PY_DIR = "cifar-10-batches-py"
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
JPEG_DIR = "cifar10-jpeg"
JPEG_ZIP = "cifar10_jpeg.zip"
OFFICIAL_NPZ = Path("cifar10-official-partial") / "cifar10_official_prefix.npz"
EXPECTED = (f"{PY_DIR}/data_batch_1..5 + test_batch (official python version, extracted from "
            f"cifar-10-python.tar.gz), or {JPEG_DIR}/{JPEG_ZIP} (members <split>/<class>/NNNN.jpg)"
            f", or {JPEG_DIR}/<split>/<class>/*.jpg")


# ---------------------------------------------------------------- official python batches
def _check_batch(batch: object, path: Path) -> Tuple[np.ndarray, np.ndarray]:
    """(rows (n, 3072) uint8, labels (n,) int64) of one unpickled batch, validated."""
    if not isinstance(batch, dict) or "data" not in batch or "labels" not in batch:
        raise DataError(f"{path}: not a CIFAR-10 batch (expected a dict with 'data' and "
                        "'labels'); re-download cifar-10-python.tar.gz")
    data, labels = batch["data"], np.asarray(batch["labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: 'data' must be uint8 (n, 3072), got "
                        f"{getattr(data, 'dtype', type(data))} {getattr(data, 'shape', '')}")
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: {len(data)} images but labels of shape {labels.shape}")
    return data, labels.astype(np.int64)


def _python_classes(folder: Path) -> List[str]:
    meta = folder / "batches.meta"
    if not meta.is_file():
        return list(CIFAR10_CLASSES)
    meta_dict = safe_load(meta)
    names = meta_dict.get("label_names") if isinstance(meta_dict, dict) else None
    if not names or len(names) != 10:
        raise DataError(f"{meta}: expected 10 'label_names'; re-download the archive")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def load_python_batches(folder: Path, split: str, limit: Optional[int] = None) -> Arrays:
    """Images (N, 3, 32, 32) uint8, labels (N,), classes from official batches.

    Batches after the first ``limit`` rows are not even opened.

    >>> load_python_batches(Path("cifar-10-batches-py"), "test", limit=5)[0].shape  # doctest: +SKIP
    (5, 3, 32, 32)
    """
    rows, labels, have = [], [], 0
    for name in BATCHES[split]:
        if limit is not None and have >= limit:
            break
        path = folder / name
        data, lab = _check_batch(safe_load(path), path)
        rows.append(data)
        labels.append(lab)
        have += len(data)
    data, lab = np.concatenate(rows)[:limit], np.concatenate(labels)[:limit]
    classes = _python_classes(folder)
    if len(lab) and lab.max() >= len(classes):
        raise DataError(f"{folder}: label {lab.max()} but only {len(classes)} classes")
    return np.ascontiguousarray(data.reshape(-1, 3, 32, 32)), lab, classes  # R, G, B planes


# ---------------------------------------------------------------- JPEG copies
def official_order(by_class: Dict[str, List[str]], npz: Path,
                   split: str) -> Optional[Tuple[List[str], np.ndarray, List[str]]]:
    """(members, labels, classes) in official order using the npz labels; None if unusable."""
    try:
        with open(npz, "rb") as handle, np.load(handle, allow_pickle=False) as meta:
            labels = meta[f"{split}_labels"].astype(np.int64)  # (N,)
            names = [str(n) for n in meta["label_names"]]
    except (OSError, KeyError, ValueError) as exc:
        labels, names = np.zeros(0, np.int64), [f"<unreadable: {exc}>"]
    counts = np.bincount(labels, minlength=len(names))
    if sorted(names) != sorted(by_class) or len(counts) != len(names) or any(
            counts[c] != len(by_class[n]) for c, n in enumerate(names)):
        warnings.warn(f"{npz} does not match the JPEG class folders ({sorted(by_class)}); "
                      "using class-folder order instead of the official order", RuntimeWarning)
        return None
    ranks = np.empty_like(labels)  # rank of each image within its class
    for c in range(len(names)):
        where = np.flatnonzero(labels == c)
        ranks[where] = np.arange(len(where))
    members = [by_class[names[c]][k] for c, k in zip(labels.tolist(), ranks.tolist())]
    return members, labels, names


def folder_order(by_class: Dict[str, List[str]]) -> Tuple[List[str], np.ndarray, List[str]]:
    """(members, labels, classes): classes sorted by name, members sorted within a class.

    >>> folder_order({"b": ["test/b/0.jpg"], "a": ["test/a/0.jpg", "test/a/1.jpg"]})[1].tolist()
    [0, 0, 1]
    """
    classes = sorted(by_class)
    members = [m for cls in classes for m in by_class[cls]]
    labels = np.repeat(np.arange(len(classes)), [len(by_class[c]) for c in classes])
    return members, labels.astype(np.int64), classes


def _jpeg_source(data_dir: Path, split: str) -> Optional[JpegSource]:
    archive = data_dir / JPEG_DIR / JPEG_ZIP
    if archive.is_file():
        return JpegSource("zip", archive)
    if (data_dir / JPEG_DIR / split).is_dir():
        return JpegSource("dir", data_dir / JPEG_DIR)
    return None


def jpeg_index(source: JpegSource, npz: Path, split: str,
               limit: Optional[int]) -> Tuple[List[str], np.ndarray, List[str]]:
    """(members, labels, classes) of the first ``limit`` images, official order if possible."""
    by_class = source.members(split)
    if not by_class:
        raise DataError(f"{source.root}: no images under {split}/<class>/; expected {EXPECTED}")
    order = official_order(by_class, npz, split) if npz.is_file() else None
    if order is None:
        if limit is not None:
            warnings.warn(f"no usable {OFFICIAL_NPZ} beside the JPEGs: order is class by "
                          f"class, so limit={limit} takes the first class(es) only",
                          RuntimeWarning)
        order = folder_order(by_class)
    members, labels, classes = order
    return members[:limit], labels[:limit], classes


def load_jpeg(source: JpegSource, data_dir: Path, split: str, limit: Optional[int],
              cache_dir: Optional[Path]) -> Arrays:
    """Decode (or read from cache) a JPEG copy of CIFAR-10: images (N, 3, 32, 32) uint8.

    A zip archive is fingerprinted as a whole, so a cache hit does not even list it.
    """
    npz = data_dir / OFFICIAL_NPZ
    extra = [npz] if npz.is_file() else []
    index = None if source.kind == "zip" else jpeg_index(source, npz, split, limit)
    used = [source.root] if index is None else source.fingerprint_files(index[0])
    fp = fingerprint(used + extra, extra=f"cifar10|{source.kind}")
    path = None if cache_dir is None else cache_path(cache_dir, "cifar10", split, 32, limit, fp)

    def build() -> Arrays:
        members, labels, classes = index or jpeg_index(source, npz, split, limit)
        hwc = decode_parallel(source, members, 32, f"decoding cifar10/{split}")  # (N,32,32,3)
        return np.ascontiguousarray(hwc.transpose(0, 3, 1, 2)), labels, classes

    return cached(path, build)


def load_cifar10(data_dir: Path, split: str, limit: Optional[int] = None,
                 cache_dir: Optional[Path] = None) -> Arrays:
    """CIFAR-10 from the first layout found in ``data_dir`` (see the module docstring).

    >>> images, labels, classes = load_cifar10(Path("data"), "test", 10)  # doctest: +SKIP
    """
    py_dir = data_dir / PY_DIR
    present = [n for n in BATCHES[split] if (py_dir / n).is_file()]
    if present and len(present) < len(BATCHES[split]):
        missing = sorted(set(BATCHES[split]) - set(present))
        raise DataError(f"{py_dir}: incomplete, missing {', '.join(missing)}; re-extract "
                        "cifar-10-python.tar.gz")
    if present:
        return load_python_batches(py_dir, split, limit)
    source = _jpeg_source(data_dir, split)
    if source is None:
        searched = [py_dir, data_dir / JPEG_DIR / JPEG_ZIP, data_dir / JPEG_DIR / split]
        raise missing_dataset("cifar10", searched, EXPECTED)
    return load_jpeg(source, data_dir, split, limit, cache_dir)
