"""Validators for model arguments.

Each validator takes ``(name, value)``, returns the value as a plain JSON-friendly Python
object (``int``, ``float``, ``bool``, ``list``) and raises :class:`ConfigError` saying what is
wrong otherwise. ``create_model`` prefixes the message with the model name.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, List

from ..errors import ConfigError

Check = Callable[[str, Any], Any]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def positive_int(name: str, value: Any) -> int:
    """An integer >= 1.

    >>> positive_int("hidden", 256)
    256
    """
    if not _is_int(value) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def positive_float(name: str, value: Any) -> float:
    """A finite number > 0.

    >>> positive_float("width_mult", 1)
    1.0
    """
    if not _is_real(value) or not math.isfinite(float(value)) or value <= 0:
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def probability(name: str, value: Any) -> float:
    """A number in [0, 1) (a dropout rate).

    >>> probability("dropout", 0.2)
    0.2
    """
    if not _is_real(value) or not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def boolean(name: str, value: Any) -> bool:
    """``True`` or ``False`` (numpy booleans accepted).

    >>> boolean("zero_init_residual", False)
    False
    """
    if type(value).__name__ not in ("bool", "bool_"):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def int_list(length: int) -> Check:
    """Build a validator for a list of ``length`` integers >= 1.

    >>> int_list(3)("widths", (32, 64, 128))
    [32, 64, 128]
    """

    def check(name: str, value: Any) -> List[int]:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            raise ConfigError(f"{name} must be a list of {length} integers >= 1, got {value!r}")
        if len(value) != length or not all(_is_int(v) and v >= 1 for v in value):
            raise ConfigError(f"{name} must be a list of {length} integers >= 1, got {value!r}")
        return [int(v) for v in value]

    return check
