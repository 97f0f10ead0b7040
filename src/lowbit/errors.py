"""Errors a user can cause.

Every error lowbit raises for bad input derives from :class:`LowbitError`, so callers (and the
CLI, which turns them into one-line messages with exit code 2) can tell user mistakes from bugs.
Messages say what was wrong and what to do.
"""

from __future__ import annotations

import difflib
from typing import Iterable


class LowbitError(ValueError):
    """Base class for errors caused by bad input (config, data, files)."""


class ConfigError(LowbitError):
    """An invalid configuration value, recipe field or name."""


class DataError(LowbitError):
    """A dataset that is missing, malformed, empty, or holds NaN/Inf."""


class CheckpointError(LowbitError):
    """A checkpoint that is missing, corrupt or does not match the model."""


class FormatError(LowbitError):
    """An exported or packed file that is truncated, tampered with or foreign."""


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> ConfigError:
    """Build the error for an unknown registry name, listing the valid ones.

    >>> str(unknown_name("estimator", "stee", ["ste", "ewgs"]))
    "unknown estimator 'stee' (did you mean 'ste'?); valid: ewgs, ste"
    """
    valid = sorted(valid)
    close = difflib.get_close_matches(str(name), valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"unknown {kind} {name!r}{hint}; valid: {', '.join(valid)}")
