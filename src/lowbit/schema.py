"""Build frozen dataclasses from plain data (YAML), checking every field and its type.

Errors name the field by its path: ``phases[1].epochs: expected a number, got 'ten'``;
unknown fields list the valid ones. ``--set a.b=c`` overrides are applied to the raw data
first, so they are validated the same way.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Opt:
...     lr: float = 0.1
...     name: str = "sgd"
>>> build(Opt, {"lr": 0.05})
Opt(lr=0.05, name='sgd')
>>> build(Opt, {"lr": "fast"})
Traceback (most recent call last):
...
lowbit.errors.ConfigError: lr: expected a number, got 'fast'
"""

from __future__ import annotations

import dataclasses
import re
import typing
from typing import Any, Dict, List, Mapping, Union

import yaml

from .errors import ConfigError, LowbitError, unknown_name

_NONE = type(None)
_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is Union:
        if value is None and _NONE in args:
            return None
        errors = []
        for arg in (a for a in args if a is not _NONE):
            try:
                return _convert(arg, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{path}: no valid form for {value!r} ({'; '.join(errors)})")
    if dataclasses.is_dataclass(tp):
        return value if isinstance(value, tp) else build(tp, value, path)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        item = args[0] if args else Any
        items = [_convert(item, v, _join(path, i)) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping, typing.get_origin(Mapping[str, Any])):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return dict(value)
    return _scalar(tp, value, path)


def _scalar(tp: Any, value: Any, path: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{path}: expected a whole number, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 reads 1e-5 (no dot) as a string
        raise ConfigError(f"{path}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{path}: expected a string, got {value!r}")
    if typing.get_origin(tp) is typing.Literal:
        if value in typing.get_args(tp):
            return value
        raise ConfigError(f"{path}: expected one of {list(typing.get_args(tp))}, got {value!r}")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{path}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def drop_retired(cls: type, data: Mapping[str, Any], path: str = "") -> Dict[str, Any]:
    """``data`` without the fields ``cls.RETIRED`` names ({field: the value the code still
    does}), so files written before a field was removed still load; another value is an error.

    >>> class Old:
    ...     RETIRED = {"anchor": "step"}
    >>> drop_retired(Old, {"bits": 4, "anchor": "step"})
    {'bits': 4}
    """
    retired = getattr(cls, "RETIRED", {})
    for key in set(data) & set(retired):
        if data[key] != retired[key]:
            raise ConfigError(f"{_join(path, key)}: this option was removed; only "
                              f"{retired[key]!r} (what lowbit now always does) is accepted")
    return {k: v for k, v in data.items() if k not in retired}


def build(cls: type, data: Any, path: str = "") -> Any:
    """Instantiate dataclass ``cls`` from a mapping, validating names and types."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or cls.__name__}: expected a mapping of fields, got {data!r}")
    data = drop_retired(cls, data, path)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            err = unknown_name("field", key, fields)
            raise ConfigError(f"{_join(path, key)}: {err}")
    kwargs = {k: _convert(hints[k], v, _join(path, k)) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except LowbitError as exc:
        raise ConfigError(f"{path or cls.__name__}: {exc}") from None
    except TypeError as exc:
        raise ConfigError(f"{path or cls.__name__}: {exc}") from None


def to_plain(obj: Any) -> Any:
    """Dataclasses/tuples -> dicts/lists (JSON and YAML friendly)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


def parse_override(text: str):
    """``a.b.0.c=value`` -> (["a", "b", 0, "c"], parsed YAML value)."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, _, raw = text.partition("=")
    if not key.strip():
        raise ConfigError(f"--set expects key=value, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: cannot parse {raw!r}: {exc}") from None
    parts: List[Any] = [int(p) if p.isdigit() else p for p in key.strip().split(".")]
    return parts, value


def apply_override(data: Dict[str, Any], parts: List[Any], value: Any) -> None:
    """Set ``data[parts...] = value`` in raw recipe data, creating mappings (or lists, before
    an index) on the way.

    A last index one past the end of a list appends (``methods.1={name: distill}`` adds a
    second method to a recipe that has one); any other missing index is an error.

    >>> d = {"methods": [{"name": "budget"}]}
    >>> apply_override(d, ["methods", 1], {"name": "distill"}); [m["name"] for m in d["methods"]]
    ['budget', 'distill']
    """
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        where = ".".join(map(str, parts[: i + 1]))
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise ConfigError(f"--set {where}: no list item {part} here")
            node = node[part]
        else:
            if not isinstance(node, dict):
                raise ConfigError(f"--set {where}: {'.'.join(map(str, parts[:i]))} is not a mapping")
            if node.get(part) is None:  # a list when an index follows (methods.0=... on none)
                node[part] = [] if isinstance(parts[i + 1], int) else {}
            node = node[part]
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last > len(node):
            raise ConfigError(f"--set {'.'.join(map(str, parts))}: no list item {last} here")
        if last == len(node):  # one past the end: append
            node.append(value)
            return
    elif not isinstance(node, dict):
        raise ConfigError(f"--set {'.'.join(map(str, parts))}: the parent is not a mapping")
    node[last] = value
