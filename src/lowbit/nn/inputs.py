"""Model inputs beyond one tensor: positional tuples and keyword dicts.

Wherever lowbit runs a model on an example (batch-norm pairing, accounting, export) or on a
calibration batch, the input may be

* a tensor: ``model(x)``;
* a tuple or list of tensors: ``model(*inputs)``;
* a dict: ``model(**inputs)`` (``{"input_ids": ..., "attention_mask": ...}``).

>>> import torch
>>> split_inputs({"input_ids": torch.zeros(2, 5)})
((), {'input_ids': tensor([[0., 0., 0., 0., 0.],
        [0., 0., 0., 0., 0.]])})
>>> first_tensor((torch.zeros(3, 4), torch.ones(3))).shape
torch.Size([3, 4])
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

import torch
from torch import nn

from ..errors import ConfigError

def split_inputs(inputs: Any) -> Tuple[tuple, Dict[str, Any]]:
    """(positional, keyword) arguments of a tensor, tuple/list or dict input."""
    if isinstance(inputs, torch.Tensor):
        return (inputs,), {}
    if isinstance(inputs, Mapping):
        return (), dict(inputs)
    if isinstance(inputs, (tuple, list)) and inputs:
        return tuple(inputs), {}
    raise ConfigError(f"a model input must be a tensor, a tuple of tensors or a dict of keyword "
                      f"inputs, got {type(inputs).__name__}")


def first_tensor(inputs: Any) -> torch.Tensor:
    """The first tensor of an input (its shape is the recorded ``input_shape``)."""
    args, kwargs = split_inputs(inputs)
    for value in list(args) + list(kwargs.values()):
        if isinstance(value, torch.Tensor):
            return value
    raise ConfigError("the model input holds no tensor")


def inputs_to(inputs: Any, device: Optional[torch.device]) -> Any:
    """The same structure with every tensor moved to ``device``."""
    move = lambda v: v.to(device) if isinstance(v, torch.Tensor) and device is not None else v  # noqa: E731
    if isinstance(inputs, torch.Tensor):
        return move(inputs)
    if isinstance(inputs, Mapping):
        return {k: move(v) for k, v in inputs.items()}
    return tuple(move(v) for v in inputs)


def run_model(model: nn.Module, inputs: Any, device: Optional[torch.device] = None):
    """``model(*args, **kwargs)`` for an input of any of the three forms."""
    args, kwargs = split_inputs(inputs_to(inputs, device))
    return model(*args, **kwargs)


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (CPU for a model without parameters).

    >>> model_device(nn.Linear(2, 2)), model_device(nn.ReLU())
    (device(type='cpu'), device(type='cpu'))
    """
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def batch_inputs(batch: Any) -> Any:
    """The model input of a loader item: a tensor or dict itself, or the first element of an
    ``(inputs, targets)`` tuple."""
    if isinstance(batch, (torch.Tensor, Mapping)):
        return batch
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], (torch.Tensor, Mapping,
                                                                            tuple, list)):
        return batch[0]
    raise ConfigError(f"batches must be dicts of keyword inputs, tensors or (inputs, targets) "
                      f"tuples, got {type(batch).__name__}")
