"""On-disk cache of decoded splits: one uncompressed ``.npz`` per (dataset, split, size, limit).

The file name carries a fingerprint of the source files (paths, sizes, mtimes), so a changed
source is rebuilt automatically. Files are written to a temporary name and ``os.replace``d, so
a crash never leaves a half-written cache; a cache file that cannot be read is reported with a
warning and rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Tuple

import numpy as np

CACHE_VERSION = 1  # bump when the decoding changes (resize filter, crop...)

Arrays = Tuple[np.ndarray, np.ndarray, List[str]]  # images (N,C,H,W) u8, labels (N,) i64, classes


def fingerprint(files: Iterable[Path], extra: str = "") -> str:
    """A short hex digest of the files' paths, sizes and mtimes (contents are not read).

    >>> len(fingerprint([], "x"))
    16
    """
    digest = hashlib.sha256(f"v{CACHE_VERSION}|{extra}".encode())
    for path in files:
        stat = os.stat(path)
        digest.update(f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def cache_path(cache_dir: Path, dataset: str, split: str, size: int, limit: Optional[int],
               fp: str) -> Path:
    """``<cache_dir>/<dataset>-<split>-<size>px-<n>-<fingerprint>.npz``.

    >>> cache_path(Path("/c"), "cifar10", "train", 32, None, "ab12").name
    'cifar10-train-32px-all-ab12.npz'
    """
    count = "all" if limit is None else f"first{limit}"
    return Path(cache_dir) / f"{dataset}-{split}-{size}px-{count}-{fp}.npz"


def save_arrays(path: Path, arrays: Arrays) -> None:
    """Write atomically (temp file in the same folder, then ``os.replace``).

    >>> save_arrays(Path("/tmp/x.npz"), (images, labels, ["cat", "dog"]))  # doctest: +SKIP
    """
    images, labels, classes = arrays
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, images=images, labels=labels, classes=np.asarray(classes, dtype=str))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_arrays(path: Path) -> Arrays:
    """Read a cache file; raises ``ValueError``/``OSError`` if it is unreadable or inconsistent.

    >>> images, labels, classes = load_arrays(Path("/tmp/x.npz"))  # doctest: +SKIP
    """
    with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
        images, labels = data["images"], data["labels"]
        classes = [str(c) for c in data["classes"]]
    if images.dtype != np.uint8 or images.ndim != 4 or labels.shape != (len(images),):
        raise ValueError(f"unexpected arrays {images.dtype} {images.shape} / {labels.shape}")
    return images, labels.astype(np.int64, copy=False), classes


def cached(path: Optional[Path], build: Callable[[], Arrays]) -> Arrays:
    """Return the arrays stored at ``path``, building and storing them if absent or corrupt.

    ``path=None`` disables caching. A cache folder that cannot be written only warns.

    >>> cached(None, lambda: (np.zeros((1, 1, 2, 2), np.uint8), np.zeros(1), ["a"]))[2]
    ['a']
    """
    if path is not None and path.exists():
        try:
            return load_arrays(path)
        except Exception as exc:  # any damage (zip, header, shape) means rebuild
            warnings.warn(f"ignoring corrupt cache file {path} ({type(exc).__name__}: {exc}); "
                          "rebuilding it", RuntimeWarning, stacklevel=2)
    arrays = build()
    if path is not None:
        try:
            save_arrays(path, arrays)
        except OSError as exc:
            warnings.warn(f"cannot write cache file {path} ({exc}); continuing without cache. "
                          "Set LOWBIT_CACHE or pass cache_dir to a writable folder",
                          RuntimeWarning, stacklevel=2)
    return arrays
