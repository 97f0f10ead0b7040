"""Find which layer feeds which BatchNorm, by running one forward pass with hooks.

Hooks see real tensors, so this works for any nn.Module (no tracing): a BatchNorm whose input
is the very tensor a Conv/Linear returned is paired with that layer. A layer subclass with its
own ``forward`` is paired only if that forward is linear in its weight (see
:mod:`lowbit.nn.linearity`): folding scales weight rows, which a weight-standardized
convolution would undo.

>>> import torch
>>> from torch import nn
>>> m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
>>> find_bn_pairs(m, torch.zeros(1, 3, 8, 8))
[('0', '1')]
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import nn

from ..errors import ConfigError
from .control import quantizers_disabled
from .inputs import model_device, run_model
from .linearity import module_is_linear
from .modules import has_own_forward

_BN = (nn.BatchNorm1d, nn.BatchNorm2d)
_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Linear)


def example_input_for(model: nn.Module, example_input=None):
    """The given example input (a tensor, a tuple of positional inputs or a dict of keyword
    inputs, see :mod:`lowbit.nn.inputs`), or one built from ``model.lowbit_spec`` (registry
    models)."""
    if example_input is not None:
        return example_input
    spec = getattr(model, "lowbit_spec", None)
    if not spec:
        raise ConfigError("this model has no lowbit_spec; pass example_input=torch.zeros(1, C, H, W)")
    size = spec["input_size"]
    return torch.zeros(1, spec["in_channels"], size, size)


@torch.no_grad()
def find_bn_pairs(model: nn.Module, example_input=None) -> List[Tuple[str, str]]:
    """(layer name, batch-norm name) for every BN that directly consumes a Conv/Linear output."""
    x = example_input_for(model, example_input)
    producers, pairs, handles = {}, [], []

    def produced(name: str, mod: nn.Module, args, out) -> None:
        float_cls = getattr(mod, "_lowbit_float_class", type(mod))
        if has_own_forward(float_cls) and not (args and module_is_linear(mod, args[0])):
            return
        producers[id(out)] = (name, out)  # keep ``out`` alive so its id is not reused

    def consumed(name: str, args) -> None:  # hooks return None: inputs stay untouched
        hit = producers.get(id(args[0]))
        if hit is not None and hit[1] is args[0]:
            pairs.append((hit[0], name))

    for name, mod in model.named_modules():
        if isinstance(mod, _LAYERS):
            handles.append(mod.register_forward_hook(lambda m, i, o, n=name: produced(n, m, i, o)))
        elif isinstance(mod, _BN):
            handles.append(mod.register_forward_pre_hook(lambda m, i, n=name: consumed(n, i)))
    was_training = model.training
    try:
        model.eval()
        with quantizers_disabled(model):
            run_model(model, x, model_device(model))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return pairs


def bn_factors(bn: nn.Module) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (multiplier, offset) so that ``bn(y) = y * mult + offset`` in eval mode."""
    var = bn.running_var if bn.running_var is not None else torch.ones(bn.num_features)
    mean = bn.running_mean if bn.running_mean is not None else torch.zeros(bn.num_features)
    gamma = bn.weight if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias if bn.bias is not None else torch.zeros_like(var)
    mult = gamma / torch.sqrt(var + bn.eps)
    return mult.detach(), (beta - mean * mult).detach()


def fold_affine(weight: torch.Tensor, bias: Optional[torch.Tensor], mult: torch.Tensor,
                offset: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of a layer followed by ``y * mult + offset`` per output channel (a batch
    norm, :func:`bn_factors`): ``(W * mult, b * mult + offset)``, a missing bias counting as 0.
    Weight (out, ...), bias/mult/offset (out,). Every batch-norm fold in lowbit computes this.

    >>> w, b = fold_affine(torch.ones(2, 3), None, torch.tensor([2.0, 0.5]), torch.tensor([1.0, 0.0]))
    >>> w[:, 0].tolist(), b.tolist()
    ([2.0, 0.5], [1.0, 0.0])
    """
    w = weight * mult.reshape((-1,) + (1,) * (weight.dim() - 1)).to(weight)
    return w, fold_bias(bias, mult, offset)


def fold_bias(bias: Optional[torch.Tensor], mult: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """The bias half of :func:`fold_affine` (for weights whose scales absorb ``mult``)."""
    return (bias * mult if bias is not None else torch.zeros_like(mult)) + offset
