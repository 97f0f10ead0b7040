"""The model registry and ``create_model``.

Every model is registered with a builder ``build(num_classes, in_channels, input_size,
**kwargs)`` and metadata: a one-line description, the dataset it is normally used with (whose
shape gives the defaults), the smallest input it supports and its extra arguments with their
defaults and validators. ``create_model`` validates everything, builds the model and stamps it
with ``model.lowbit_spec`` -- a JSON-serialisable dict from which the same architecture can be
rebuilt (exported files store it).
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import Registry
from ._checks import Check, positive_int

__all__ = ["MODELS", "create_model", "list_models", "model_spec", "register_model"]

MODELS = Registry("model")

#: ``{"arg_name": (default, validator)}`` for a model's extra keyword arguments.
ArgSpec = Mapping[str, Tuple[Any, Check]]

CIFAR10 = {"num_classes": 10, "in_channels": 3, "input_size": 32}
MNIST = {"num_classes": 10, "in_channels": 1, "input_size": 28}


def register_model(
    name: str,
    *,
    description: str,
    dataset: str,
    min_input_size: int,
    args: Optional[ArgSpec] = None,
    defaults: Mapping[str, int] = CIFAR10,
) -> Callable:
    """Register a builder ``fn(num_classes, in_channels, input_size, **args)`` as ``name``.

    ``defaults`` holds the ``num_classes`` / ``in_channels`` / ``input_size`` of ``dataset``.

    >>> @register_model("tiny", description="one Linear layer", dataset="CIFAR-10",
    ...                 min_input_size=1, args={"bias": (True, boolean)})  # doctest: +SKIP
    ... def tiny(num_classes, in_channels, input_size, bias):
    ...     return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * input_size**2, num_classes, bias=bias))
    """
    return MODELS.register(
        name,
        description=description,
        dataset=dataset,
        min_input_size=min_input_size,
        args=dict(args or {}),
        defaults=dict(defaults),
    )


def create_model(
    name: str,
    *,
    num_classes: Optional[int] = None,
    in_channels: Optional[int] = None,
    input_size: Optional[int] = None,
    **kwargs: Any,
) -> nn.Module:
    """Build registered model ``name``; ``None`` means "the default of its usual dataset".

    Defaults are 10 classes, 3 channels, 32 px (CIFAR-10) for every model except ``mlp``
    (MNIST: 1 channel, 28 px). ``kwargs`` are the model's own arguments (see
    :func:`list_models`). Raises :class:`~lowbit.errors.ConfigError` for unknown names or
    arguments and bad values.

    >>> model = create_model("resnet20", num_classes=100)
    >>> model(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 100])
    >>> model.lowbit_spec["kwargs"]
    {'zero_init_residual': True}
    """
    builder = MODELS.get(name)
    meta = MODELS.meta(name)
    data = _resolve_data(name, meta, num_classes, in_channels, input_size)
    args = _resolve_args(name, meta["args"], kwargs)
    model = builder(**data, **args)
    model.lowbit_spec = {"name": name, **data, "kwargs": args}
    return model


def _resolve_data(
    name: str, meta: Dict[str, Any], num_classes: Any, in_channels: Any, input_size: Any
) -> Dict[str, int]:
    given = {"num_classes": num_classes, "in_channels": in_channels, "input_size": input_size}
    data = {}
    for key, value in given.items():
        value = meta["defaults"][key] if value is None else value
        data[key] = _prefixed(name, positive_int, key, value)
    if data["input_size"] < meta["min_input_size"]:
        raise ConfigError(
            f"model {name!r}: input_size={data['input_size']} is too small; it needs "
            f"input_size >= {meta['min_input_size']} (smaller inputs shrink the last feature map below its minimum)"
        )
    return data


def _resolve_args(name: str, spec: ArgSpec, given: Dict[str, Any]) -> Dict[str, Any]:
    unknown = sorted(set(given) - set(spec))
    if unknown:
        valid = ", ".join(sorted(spec)) or "none besides num_classes, in_channels, input_size"
        raise ConfigError(
            f"model {name!r} got unknown argument(s) {', '.join(map(repr, unknown))}; "
            f"valid: {valid}"
        )
    args = {}
    for key, (default, check) in spec.items():
        args[key] = _prefixed(name, check, key, given.get(key, default))
    json.dumps(args)  # the validators return plain values; fail loudly here if one did not
    return args


def _prefixed(model: str, check: Check, key: str, value: Any) -> Any:
    try:
        return check(key, value)
    except ConfigError as err:
        raise ConfigError(f"model {model!r}: {err}") from None


def model_spec(model: nn.Module) -> Dict[str, Any]:
    """Return a copy of the ``lowbit_spec`` that :func:`create_model` stamped on ``model``.

    Looks through ``.module`` (DataParallel / DDP) and ``._orig_mod`` (``torch.compile``)
    wrappers. Rebuild the architecture with
    ``create_model(spec["name"], num_classes=..., in_channels=..., input_size=...,
    **spec["kwargs"])``.

    >>> spec = model_spec(create_model("mlp", hidden=64))
    >>> spec
    {'name': 'mlp', 'num_classes': 10, 'in_channels': 1, 'input_size': 28, 'kwargs': {'hidden': 64}}
    >>> rebuilt = create_model(spec["name"], num_classes=spec["num_classes"],
    ...                        in_channels=spec["in_channels"], input_size=spec["input_size"],
    ...                        **spec["kwargs"])
    """
    for candidate in (model, getattr(model, "module", None), getattr(model, "_orig_mod", None)):
        spec = getattr(candidate, "lowbit_spec", None)
        if isinstance(spec, dict):
            return copy.deepcopy(spec)
    raise ConfigError(
        f"{type(model).__name__} has no lowbit_spec: build it with "
        "lowbit.models.create_model(name, ...) so it can be rebuilt from exported files"
    )


def list_models() -> List[Dict[str, Any]]:
    """Describe every registered model, sorted by name.

    Each entry has ``name``, ``description``, ``dataset``, the dataset defaults
    (``num_classes``, ``in_channels``, ``input_size``), ``min_input_size``, the default extra
    ``kwargs`` and ``params``: the parameter count at those defaults.

    >>> [m for m in list_models() if m["name"] == "resnet8"][0]["params"]
    78042
    """
    return [_describe(name) for name in MODELS.names()]


def _describe(name: str) -> Dict[str, Any]:
    meta = MODELS.meta(name)
    return {
        "name": name,
        "description": meta["description"],
        "dataset": meta["dataset"],
        **meta["defaults"],
        "min_input_size": meta["min_input_size"],
        "kwargs": {key: copy.deepcopy(default) for key, (default, _) in meta["args"].items()},
        "params": _default_param_count(name),
    }


@functools.lru_cache(maxsize=None)
def _default_param_count(name: str) -> int:
    try:
        with torch.device("meta"):  # shapes only: no memory, no initialisation cost
            model = create_model(name)
    except Exception:  # a builder that needs real tensors (e.g. loads weights)
        model = create_model(name)
    return sum(p.numel() for p in model.parameters())
