"""Validation helpers for values read from a file: each failure is a FormatError naming the field.

>>> get_int({"bits": 4}, "bits", "layer fc weight", 1, 16)
4
>>> get_int({"bits": 40}, "bits", "layer fc weight", 1, 16)
Traceback (most recent call last):
...
lowbit.errors.FormatError: layer fc weight: 'bits' must be an integer in [1, 16], got 40
"""

from __future__ import annotations

import math
import re
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..errors import FormatError

NAME_RE = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")
MAX_NAME = 512
MAX_LIST = 1 << 20


def need(cond: bool, msg: str) -> None:
    if not cond:
        raise FormatError(msg)


def get_dict(d: Any, key: str, what: str, optional: bool = False) -> Optional[Dict[str, Any]]:
    need(isinstance(d, dict), f"{what} must be a JSON object")
    v = d.get(key)
    if v is None and optional:
        return None
    need(isinstance(v, dict), f"{what}: {key!r} must be a JSON object, got {type(v).__name__}")
    return v


def get_int(d: Dict[str, Any], key: str, what: str, lo: Optional[int] = None,
            hi: Optional[int] = None) -> int:
    v = d.get(key) if isinstance(d, dict) else None
    ok = type(v) is int and (lo is None or v >= lo) and (hi is None or v <= hi)
    need(ok, f"{what}: {key!r} must be an integer in [{lo}, {hi}], got {str(v)[:40]}")
    return v


def get_str(d: Dict[str, Any], key: str, what: str, choices: Optional[Sequence[str]] = None) -> str:
    v = d.get(key) if isinstance(d, dict) else None
    need(isinstance(v, str) and len(v) <= 4096, f"{what}: {key!r} must be a string")
    if choices is not None:
        need(v in choices, f"{what}: {key!r} must be one of {', '.join(choices)}, got {v[:40]!r}")
    return v


def get_bool(d: Dict[str, Any], key: str, what: str) -> bool:
    v = d.get(key) if isinstance(d, dict) else None
    need(isinstance(v, bool), f"{what}: {key!r} must be true or false")
    return v


def int_list(v: Any, what: str, length: Optional[int] = None, lo: int = -(2**31),
             hi: int = 2**31 - 1) -> List[int]:
    need(isinstance(v, list) and len(v) <= MAX_LIST, f"{what} must be a list of integers")
    need(all(type(x) is int and lo <= x <= hi for x in v),
         f"{what} must hold integers in [{lo}, {hi}]")
    need(length is None or len(v) == length, f"{what} must have {length} entries, got {len(v)}")
    return v


def shape_of(v: Any, what: str) -> List[int]:
    shape = int_list(v, f"{what} shape", lo=0, hi=2**31 - 1)
    need(len(shape) <= 8, f"{what}: at most 8 dimensions")
    need(math.prod(shape) <= 2**34, f"{what}: shape {shape} is absurdly large")
    return shape


def layer_name(v: Any, what: str) -> str:
    need(isinstance(v, str) and len(v) <= MAX_NAME and NAME_RE.fullmatch(v) is not None,
         f"{what}: {str(v)[:60]!r} is not a module name (dotted identifiers)")
    return v


def array(tensors: Dict[str, np.ndarray], name: str, dtype: str, shape: Sequence[int],
          used: set) -> np.ndarray:
    """Fetch tensor ``name`` and check its dtype and shape against the manifest."""
    need(name in tensors, f"tensor {name!r} named by the manifest is missing from the file")
    arr = tensors[name]
    need(arr.dtype == np.dtype(dtype), f"tensor {name!r} is {arr.dtype}, the manifest implies {dtype}")
    need(tuple(arr.shape) == tuple(shape),
         f"tensor {name!r} has shape {list(arr.shape)}, the manifest says {list(shape)}")
    used.add(name)
    return arr


def finite(arr: np.ndarray, name: str, positive: bool = False, integral: bool = False) -> np.ndarray:
    need(bool(np.isfinite(arr).all()), f"tensor {name!r} holds NaN or Inf; the file is corrupt")
    if positive:
        need(bool((arr > 0).all()), f"tensor {name!r} must be positive (scales)")
    if integral:
        need(bool((arr == np.round(arr)).all()), f"tensor {name!r} must hold whole numbers")
    return arr
