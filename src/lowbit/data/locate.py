"""Where datasets and the decoded-image cache live on disk.

Data directory, first match wins:

1. the explicit ``data_dir`` argument (``--data-dir`` on the command line),
2. the environment variable ``LOWBIT_DATA``,
3. ``../shared/data`` beside the repository (derived from this file's location),
4. ``<cwd>/../shared/data``.

Cache directory: the explicit ``cache_dir`` argument, then ``LOWBIT_CACHE``, then
``~/.cache/lowbit``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Union

from ..errors import DataError
from ..files import REPO_ROOT

PathLike = Union[str, "os.PathLike[str]"]

DATA_ENV = "LOWBIT_DATA"
CACHE_ENV = "LOWBIT_CACHE"


def default_data_candidates() -> List[Path]:
    """The fallback data directories tried after the argument and ``LOWBIT_DATA``."""
    candidates = [REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    unique: List[Path] = []
    for cand in candidates:
        if cand not in unique:
            unique.append(cand)
    return unique


def resolve_data_dir(data_dir: Optional[PathLike] = None) -> Path:
    """Return the directory that holds the datasets.

    An explicit ``data_dir`` or ``LOWBIT_DATA`` that does not exist is an error (no silent
    fallback to another location).

    >>> resolve_data_dir("/work/shared/data")  # doctest: +SKIP
    PosixPath('/work/shared/data')
    """
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path.is_dir():
            raise DataError(f"data directory {str(path)!r} (passed as data_dir/--data-dir) "
                            "does not exist; pass the folder that holds mnist/, cifar10-jpeg/, ...")
        return path
    env = os.environ.get(DATA_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataError(f"{DATA_ENV}={env!r} is not a directory; point it at the folder that "
                            "holds the datasets, or unset it")
        return path
    tried = default_data_candidates()
    for cand in tried:
        if cand.is_dir():
            return cand
    raise DataError(
        "no data directory found; pass --data-dir DIR (data_dir=DIR in Python) or set "
        f"{DATA_ENV}=DIR. Also tried: {', '.join(str(p) for p in tried)}"
    )


def resolve_cache_dir(cache_dir: Optional[PathLike] = None) -> Path:
    """Return the cache directory (not created here).

    >>> resolve_cache_dir("/tmp/lowbit-cache")
    PosixPath('/tmp/lowbit-cache')
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "lowbit"


def first_dir_with(dirs: Iterable[Path], names: Sequence[str]) -> Optional[Path]:
    """The first directory of ``dirs`` in which every path of ``names`` exists.

    >>> first_dir_with([Path("/nonexistent")], ["a"]) is None
    True
    """
    for folder in dirs:
        if all((folder / name).exists() for name in names):
            return folder
    return None


def missing_dataset(name: str, searched: Iterable[Path], expected: str) -> DataError:
    """The error for a dataset found in none of the searched places.

    >>> str(missing_dataset("mnist", [Path("/d/mnist")], "train-images-idx3-ubyte[.gz]"))[:30]
    "dataset 'mnist' not found; sea"
    """
    where = "\n  ".join(str(p) for p in searched)
    return DataError(
        f"dataset {name!r} not found; searched:\n  {where}\nexpected: {expected}\n"
        f"Download the official files into one of these places, or pass --data-dir / set "
        f"{DATA_ENV} to the folder that holds them."
    )
