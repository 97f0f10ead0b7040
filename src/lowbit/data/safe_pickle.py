"""Unpickling CIFAR python batches without running arbitrary code.

A pickle can name any importable callable (``os.system``...). The official CIFAR batches only
need numpy's array reconstruction, so :class:`RestrictedUnpickler` resolves exactly those
globals (and a few inert builtins) and refuses everything else with a :class:`DataError`.
"""

from __future__ import annotations

import codecs
import importlib
import io
import pickle
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

import numpy as np

from ..errors import DataError


def _numpy_attr(submodule: str, name: str) -> Callable[..., Any]:
    """``numpy._core.<submodule>.<name>`` (numpy 2) or ``numpy.core.<...>`` (numpy 1)."""
    try:
        module = importlib.import_module(f"numpy._core.{submodule}")
    except ImportError:  # numpy < 2
        module = importlib.import_module(f"numpy.core.{submodule}")
    return getattr(module, name)


def _allowed_globals() -> Dict[Tuple[str, str], Any]:
    allowed: Dict[Tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # python-3 protocol-2 pickles of bytes
    }
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = _numpy_attr("multiarray", "_reconstruct")
        allowed[(f"{core}.multiarray", "scalar")] = _numpy_attr("multiarray", "scalar")
        allowed[(f"{core}.numeric", "_frombuffer")] = _numpy_attr("numeric", "_frombuffer")
    for builtins_name in ("builtins", "__builtin__"):
        for name, obj in (("set", set), ("frozenset", frozenset), ("bytearray", bytearray),
                          ("complex", complex)):
            allowed[(builtins_name, name)] = obj
    return allowed


ALLOWED_GLOBALS = _allowed_globals()


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only resolves the numpy/builtin globals in ``ALLOWED_GLOBALS``."""

    source = "<pickle>"

    def find_class(self, module: str, name: str) -> Any:
        """Resolve only allow-listed globals; anything else is a :class:`DataError`."""
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DataError(
                f"{self.source}: refusing to unpickle global {module}.{name}; a CIFAR batch "
                "only contains numpy arrays and lists. The file is not an official CIFAR "
                "batch (or was tampered with): re-download it"
            ) from None


def safe_load(path: Path) -> Any:
    """Unpickle ``path`` allowing only numpy arrays and plain containers.

    Python-2 pickles (the official CIFAR batches) are read with ``encoding='latin1'`` so their
    keys come back as ``str``.

    >>> safe_load(Path("cifar-10-batches-py/test_batch"))["labels"][:3]  # doctest: +SKIP
    [3, 8, 8]
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    unpickler = RestrictedUnpickler(io.BytesIO(raw), encoding="latin1")
    unpickler.source = str(path)
    try:
        return unpickler.load()
    except DataError:
        raise
    except Exception as exc:  # truncated or garbled pickles raise many different types
        raise DataError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc}); the "
                        "file is corrupt or truncated, re-download it") from None
