"""Class-folder image datasets (``<root>/<split>/<class>/*.JPEG``), e.g. Imagenette.

Images are decoded once to RGB (greyscale and CMYK are converted), the shortest side resized
to the stored size ``S`` and center-cropped to ``S x S``; the result is cached.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from ..errors import DataError
from .cache import Arrays, cache_path, cached, fingerprint
from .decode import decode_parallel
from .jpeg import JpegSource
from .locate import missing_dataset

IMAGENETTE_DIRS = ("imagenette2-160", "imagenette2-320", "imagenette2")
IMAGENETTE_STORED = 160
IMAGENETTE_SPLITS = {"train": "train", "test": "val"}


def folder_index(source: JpegSource, split_folder: str) -> Tuple[List[str], np.ndarray,
                                                                  List[str]]:
    """(members, labels (N,) int64, classes) in ImageFolder order: class, then file name.

    >>> folder_index(JpegSource("dir", Path("imagenette2-160")), "val")[2][0]  # doctest: +SKIP
    'n01440764'
    """
    by_class = source.members(split_folder)
    by_class = {cls: files for cls, files in by_class.items() if files}
    if not by_class:
        raise DataError(f"{source.root / split_folder}: no images found; expected "
                        f"{split_folder}/<class>/<image>.JPEG")
    classes = sorted(by_class)
    members = [m for cls in classes for m in by_class[cls]]
    labels = np.repeat(np.arange(len(classes)), [len(by_class[c]) for c in classes])
    return members, labels.astype(np.int64), classes


def load_image_folder(root: Path, split_folder: str, name: str, split: str, size: int,
                      limit: Optional[int], cache_dir: Optional[Path]) -> Arrays:
    """Decode ``root/split_folder`` at ``size`` px (or read the cache): (N, 3, S, S) uint8.

    >>> load_image_folder(Path("imagenette2-160"), "val", "imagenette", "test", 160, 8,
    ...                   None)[0].shape  # doctest: +SKIP
    (8, 3, 160, 160)
    """
    if size < 1:
        raise DataError(f"{name}: image_size must be positive, got {size}")
    source = JpegSource("dir", root)
    members, labels, classes = folder_index(source, split_folder)
    members, labels = members[:limit], labels[:limit]
    fp = fingerprint(source.fingerprint_files(members), extra=f"{name}|{len(classes)}")
    path = None if cache_dir is None else cache_path(cache_dir, name, split, size, limit, fp)

    def build() -> Arrays:
        hwc = decode_parallel(source, members, size, f"decoding {name}/{split} at {size}px")
        return np.ascontiguousarray(hwc.transpose(0, 3, 1, 2)), labels, classes  # (N,3,S,S)

    return cached(path, build)


def load_imagenette(data_dir: Path, split: str, image_size: Optional[int] = None,
                    limit: Optional[int] = None, cache_dir: Optional[Path] = None) -> Arrays:
    """Imagenette from ``<data_dir>/imagenette2-160`` (or ``-320``, or ``imagenette2``).

    ``split='test'`` reads the ``val`` folder; ``image_size`` is the stored size (default 160).

    >>> images, labels, wnids = load_imagenette(Path("data"), "test", 160, 8)  # doctest: +SKIP
    """
    folder = IMAGENETTE_SPLITS[split]
    roots = [data_dir / d for d in IMAGENETTE_DIRS]
    root = next((r for r in roots if (r / folder).is_dir()), None)
    if root is None:
        raise missing_dataset("imagenette", [r / folder for r in roots],
                              "<root>/{train,val}/<wnid>/*.JPEG, e.g. imagenette2-160.tgz from "
                              "https://github.com/fastai/imagenette extracted into the data dir")
    size = IMAGENETTE_STORED if image_size is None else int(image_size)
    return load_image_folder(root, folder, "imagenette", split, size, limit, cache_dir)
