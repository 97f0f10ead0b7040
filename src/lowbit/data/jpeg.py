"""JPEG sources (a zip archive or a folder tree) and decoding of one image to a fixed size.

A :class:`JpegSource` is small and picklable so that pool workers can reopen it; members are
paths relative to the source root such as ``train/airplane/0000.jpg``.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

from ..errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

_ZIPS: Dict[str, zipfile.ZipFile] = {}  # per-process cache of open archives


@dataclass(frozen=True)
class JpegSource:
    """A zip archive (``kind='zip'``) or a directory (``kind='dir'``) of encoded images."""

    kind: str
    root: Path

    def read(self, member: str) -> bytes:
        """The encoded bytes of ``member`` (a ``/``-separated relative path)."""
        if self.kind == "dir":
            return (self.root / member).read_bytes()
        key = f"{os.getpid()}:{self.root}"
        archive = _ZIPS.get(key)
        if archive is None:
            archive = _ZIPS[key] = zipfile.ZipFile(self.root)
        return archive.read(member)

    def members(self, split: str) -> Dict[str, List[str]]:
        """``{class_name: sorted members}`` for the images under ``<split>/<class>/``.

        >>> JpegSource("zip", Path("cifar10_jpeg.zip")).members("test")["cat"][0]  # doctest: +SKIP
        'test/cat/0000.jpg'
        """
        names = self._zip_names() if self.kind == "zip" else self._dir_names(split)
        by_class: Dict[str, List[str]] = {}
        for name in names:
            parts = name.split("/")
            if len(parts) == 3 and parts[0] == split and name.lower().endswith(IMAGE_EXTENSIONS):
                by_class.setdefault(parts[1], []).append(name)
        return {cls: sorted(files) for cls, files in sorted(by_class.items())}

    def _zip_names(self) -> List[str]:
        try:
            with zipfile.ZipFile(self.root) as archive:
                return archive.namelist()
        except (OSError, zipfile.BadZipFile) as exc:
            raise DataError(f"{self.root}: not a readable zip archive ({exc}); re-download "
                            "or re-create it") from None

    def _dir_names(self, split: str) -> List[str]:
        names = []
        for cls_dir in sorted((self.root / split).iterdir()):
            if cls_dir.is_dir():
                names += [f"{split}/{cls_dir.name}/{f.name}" for f in cls_dir.iterdir()]
        return names

    def fingerprint_files(self, members: List[str]) -> List[Path]:
        """The files whose (path, size, mtime) identify the content of ``members``."""
        if self.kind == "zip":
            return [self.root]
        return [self.root / m for m in members]


def close_archives() -> None:
    """Close the zip archives this process opened for reading members."""
    prefix = f"{os.getpid()}:"
    for key in [k for k in _ZIPS if k.startswith(prefix)]:
        _ZIPS.pop(key).close()


def _crop_box(width: int, height: int, size: int) -> Tuple[int, int, int, int]:
    left, top = (width - size) // 2, (height - size) // 2
    return left, top, left + size, top + size


def decode_image(data: bytes, size: int, source: str = "") -> np.ndarray:
    """Decode to RGB, resize the shortest side to ``size``, center-crop: (size, size, 3) uint8.

    >>> buf = io.BytesIO(); Image.new("L", (40, 20)).save(buf, "JPEG")
    >>> decode_image(buf.getvalue(), 16).shape
    (16, 16, 3)
    """
    try:
        img = Image.open(io.BytesIO(data))
        width, height = img.size
        scale = size / min(width, height)
        new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
        if scale <= 0.5:  # let the JPEG decoder shrink by 2/4/8 first (much faster)
            img.draft("RGB", (new_w, new_h))
        img = img.convert("RGB")
        if img.size != (new_w, new_h):
            img = img.resize((new_w, new_h), Image.BILINEAR)
        if img.size != (size, size):
            img = img.crop(_crop_box(new_w, new_h, size))
        return np.asarray(img, dtype=np.uint8)  # (size, size, 3)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{source}: cannot decode image ({exc}); the file is corrupt, "
                        "re-download it") from None


def decode_members(source: JpegSource, members: List[str], size: int) -> np.ndarray:
    """Decode ``members`` of ``source`` in order: (len(members), size, size, 3) uint8."""
    out = np.empty((len(members), size, size, 3), dtype=np.uint8)
    for i, member in enumerate(members):
        try:
            data = source.read(member)
        except (OSError, KeyError) as exc:
            raise DataError(f"{source.root}: cannot read {member} ({exc})") from None
        out[i] = decode_image(data, size, f"{source.root}:{member}")
    return out
