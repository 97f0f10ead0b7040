"""Batch-norm folding into the preceding Conv/Linear (the papers measure after folding).

``fold_batchnorm`` rewrites ``W <- W * gamma / sigma`` per output channel and
``b <- (b - mu) * gamma / sigma + beta``, and replaces the BatchNorm by ``nn.Identity``. The
eval-mode output is unchanged up to float rounding. Do it on a float model before PTQ or at
the end of QGT; for a model trained with learned quantizers use ``convert(model, fold_bn=True)``
instead, which folds into the weight scales and keeps the trained integer codes.

>>> import torch
>>> from torch import nn
>>> m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
>>> x = torch.randn(2, 3, 8, 8)
>>> y = m(x)
>>> folded = fold_batchnorm(m, x[:1])
>>> torch.allclose(folded(x), y, atol=1e-5), type(folded[1]).__name__
(True, 'Identity')
"""

from __future__ import annotations

import copy
from typing import List, Optional, Tuple

import torch
from torch import nn

from .nn.graph import bn_factors, find_bn_pairs, fold_affine
from .nn.modules import QuantMixin
from .nn.walk import set_module

__all__ = ["fold_batchnorm", "find_bn_pairs", "apply_fold_structure"]


@torch.no_grad()
def _fold_pair(layer: nn.Module, bn: nn.Module) -> None:
    weight, new_bias = fold_affine(layer.weight, layer.bias, *bn_factors(bn))
    layer.weight.copy_(weight)
    if layer.bias is None:
        layer.bias = nn.Parameter(new_bias.to(layer.weight))
    else:
        layer.bias.copy_(new_bias)


def fold_batchnorm(model: nn.Module, example_input: Optional[torch.Tensor] = None, *,
                   inplace: bool = False) -> nn.Module:
    """Fold every BatchNorm that directly consumes a Conv/Linear output into that layer.

    ``example_input`` (one batch) is needed to see the data flow unless the model comes from
    the lowbit registry. Weight quantizers of prepared layers are re-initialised from the
    folded weights. Returns the folded model (a copy unless ``inplace``).
    """
    if not inplace:
        model = copy.deepcopy(model)
    pairs: List[Tuple[str, str]] = find_bn_pairs(model, example_input)
    modules = dict(model.named_modules())
    for layer_name, bn_name in pairs:
        layer = modules[layer_name]
        _fold_pair(layer, modules[bn_name])
        set_module(model, bn_name, nn.Identity())
        if isinstance(layer, QuantMixin):
            if layer.weight_quantizer is not None:
                layer.weight_quantizer.init_from_tensor(layer.weight)
            if layer.bias_quantizer is not None:
                layer.bias_quantizer.init_from_tensor(layer.bias)
    model.lowbit_folded_pairs = list(getattr(model, "lowbit_folded_pairs", [])) + [list(p) for p in pairs]
    return model


def apply_fold_structure(model: nn.Module, pairs) -> nn.Module:
    """Give ``model`` the structure a folded model has (BN -> Identity, layers with a bias),
    without changing values, so a folded model's state dict loads into it (in place)."""
    modules = dict(model.named_modules())
    for layer_name, bn_name in pairs:
        layer = modules[layer_name]
        if layer.bias is None:
            layer.bias = nn.Parameter(torch.zeros(layer.weight.shape[0], dtype=layer.weight.dtype,
                                                  device=layer.weight.device))
        set_module(model, bn_name, nn.Identity())
    model.lowbit_folded_pairs = [list(p) for p in pairs]
    return model
