"""Models of your own: build them from an importable factory, under an explicit permission.

A recipe (or a packed file's manifest) can name code of your environment as
``"package.module:attribute"``: a model factory ``model: {factory: "mypkg.models:build", args:
{...}}``, or the class a packed model was exported from. Importing runs that code, so lowbit
does it only when you allow it, with the same words everywhere: ``--allow-import`` on the
command line (``lowbit train/eval/export/sweep``), ``allow_import=True`` in Python. Nothing is
ever imported from a file lowbit reads: the name says what to import from *your* environment.

>>> build_from_factory("torch.nn:Linear", {"in_features": 4, "out_features": 2}, allow_import=True)
Linear(in_features=4, out_features=2, bias=True)
>>> build_from_factory("torch.nn:Linear", {}, allow_import=False)
Traceback (most recent call last):
...
lowbit.errors.ConfigError: model factory torch.nn:Linear is code from your Python environment; importing it runs that code: allow it with --allow-import (command line) or allow_import=True (Python)
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Dict, Mapping

from torch import nn

from ..errors import ConfigError

IMPORT_PATH_RE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
ALLOW_IMPORT = "allow it with --allow-import (command line) or allow_import=True (Python)"


def check_import_path(path: Any, what: str) -> str:
    """``path`` if it has the form ``package.module:attribute``, else a ConfigError."""
    if not isinstance(path, str) or IMPORT_PATH_RE.fullmatch(path) is None:
        raise ConfigError(f"{what} {str(path)[:80]!r} is not 'package.module:attribute' "
                          "(e.g. 'mypkg.models:build')")
    return path


def check_import_allowed(path: str, allow_import: bool, what: str) -> None:
    """Refuse to import ``path`` unless ``allow_import`` (the one message for it)."""
    check_import_path(path, what)
    if not allow_import:
        raise ConfigError(f"{what} {path} is code from your Python environment; importing it "
                          f"runs that code: {ALLOW_IMPORT}")


def import_object(path: str, allow_import: bool, what: str) -> Any:
    """Import ``package.module:attr`` (dotted attributes allowed) if ``allow_import``."""
    check_import_allowed(path, allow_import, what)
    module, _, qual = path.partition(":")
    try:
        obj = importlib.import_module(module)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # ImportError, AttributeError, or anything the module's code raises
        raise ConfigError(f"cannot import {what} {path}: {type(exc).__name__}: {str(exc)[:200]}") from None
    return obj


def call_constructor(fn: Any, path: str, args: Mapping[str, Any]) -> nn.Module:
    """``fn(**args)``, which must return an nn.Module; any exception becomes one line."""
    if not callable(fn):
        raise ConfigError(f"{path} is a {type(fn).__name__}, not a function or class")
    try:
        model = fn(**dict(args))
    except Exception as exc:  # the user's code: whatever it raises, say it in one line
        shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
        raise ConfigError(f"{path}({shown[:200]}) raised {type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:300]}") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{path} returned a {type(model).__name__}, not an nn.Module")
    return model


def build_from_factory(path: str, args: Mapping[str, Any], allow_import: bool = False) -> nn.Module:
    """The model ``factory(**args)`` builds, stamped with ``model.lowbit_factory`` (so exported
    files can rebuild it with the same permission)."""
    if not isinstance(args, Mapping):
        raise ConfigError(f"model.args must be a mapping of keyword arguments, got {args!r}")
    fn = import_object(path, allow_import, "model factory")
    model = call_constructor(fn, path, args)
    model.lowbit_factory = {"factory": path, "args": dict(args)}
    return model


def factory_reference(model: nn.Module) -> Dict[str, Any]:
    """``{"factory": ..., "args": ...}`` of a model built by :func:`build_from_factory`, else {}."""
    ref = getattr(model, "lowbit_factory", None)
    return dict(ref) if isinstance(ref, dict) else {}
