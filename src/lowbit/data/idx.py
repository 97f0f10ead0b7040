"""MNIST-style IDX files (gzip or plain), read with validation and without extra copies.

An IDX file is a 4-byte magic ``00 00 <type> <ndim>`` then ``ndim`` big-endian uint32 sizes,
then the row-major data. Only type ``0x08`` (unsigned byte) occurs in MNIST/Fashion-MNIST.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from ..errors import DataError

UBYTE = 0x08


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _read_header(stream, path: Path, ndim: int) -> List[int]:
    magic = stream.read(4)
    if len(magic) != 4 or magic[:2] != b"\0\0" or magic[2] != UBYTE or magic[3] != ndim:
        raise DataError(f"{path}: not an IDX file of {ndim}-d unsigned bytes (bad magic "
                        f"{magic.hex() or 'empty file'}); re-download the official file")
    raw = stream.read(4 * ndim)
    if len(raw) != 4 * ndim:
        raise DataError(f"{path}: IDX header is truncated; re-download the file")
    return list(struct.unpack(f">{ndim}I", raw))


def read_idx(path: Path, ndim: int, limit: Optional[int] = None) -> np.ndarray:
    """Read an unsigned-byte IDX file with ``ndim`` dimensions; only ``limit`` rows if given.

    With ``limit`` only the needed bytes are read (and, for gzip, decompressed); otherwise the
    whole file must have exactly the size its header announces.

    >>> read_idx(Path("mnist/t10k-labels-idx1-ubyte.gz"), 1, limit=3)  # doctest: +SKIP
    array([7, 2, 1], dtype=uint8)
    """
    path = Path(path)
    try:
        with _open(path) as stream:
            dims = _read_header(stream, path, ndim)
            rows = dims[0] if limit is None else min(limit, dims[0])
            row_bytes = int(np.prod(dims[1:], dtype=np.int64))
            want = rows * row_bytes
            data = stream.read(want)
            extra = stream.read(1) if limit is None else b""
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read IDX file ({exc}); the file is corrupt or "
                        "truncated, re-download it") from None
    if len(data) != want:
        raise DataError(f"{path}: truncated: header says {dims} ({dims[0] * row_bytes} data "
                        f"bytes), found only {len(data)} of the {want} needed; re-download it")
    if extra:
        raise DataError(f"{path}: longer than its header {dims} says; the file is corrupt")
    return np.frombuffer(data, dtype=np.uint8).reshape([rows] + dims[1:]).copy()  # writable


IDX_STEMS = {"train": "train", "test": "t10k"}


def idx_names(split: str) -> List[str]:
    """Accepted file-name pairs (images, labels) for a split, best first.

    >>> idx_names("test")[:2]
    ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz']
    """
    stem = IDX_STEMS[split]
    names: List[str] = []
    for sep in ("-", "."):
        for ext in (".gz", ""):
            names += [f"{stem}-images{sep}idx3-ubyte{ext}", f"{stem}-labels{sep}idx1-ubyte{ext}"]
    return names


def find_idx_pair(folders: Sequence[Path], split: str) -> Optional[tuple]:
    """First (images_path, labels_path) found, searching ``folders`` in order.

    >>> find_idx_pair([Path("/nonexistent")], "train") is None
    True
    """
    names = idx_names(split)
    for folder in folders:
        for i in range(0, len(names), 2):
            images, labels = folder / names[i], folder / names[i + 1]
            if images.is_file() and labels.is_file():
                return images, labels
    return None


def load_idx_pair(images_path: Path, labels_path: Path, limit: Optional[int] = None):
    """Images (N, 1, H, W) uint8 and labels (N,) int64 from an IDX pair, checked to agree.

    >>> images, labels = load_idx_pair(Path("t10k-images-idx3-ubyte.gz"),
    ...                                Path("t10k-labels-idx1-ubyte.gz"))  # doctest: +SKIP
    """
    images = read_idx(images_path, 3, limit)  # (N, H, W)
    labels = read_idx(labels_path, 1, limit)  # (N,)
    if len(images) != len(labels):
        raise DataError(f"{images_path} has {len(images)} images but {labels_path} has "
                        f"{len(labels)} labels; the two files are from different releases")
    return images[:, None], labels.astype(np.int64)
