"""lowbit: learned low-bit quantization for PyTorch.

The flow: ``prepare`` a model (fake quantizers on Conv/Linear weights and inputs), ``calibrate``
it on data, train it (or not: that is PTQ), ``convert`` it to integer weights and scales,
``account`` for its size, and export it.

>>> import torch
>>> from torch import nn
>>> import lowbit
>>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
>>> spec = lowbit.QuantSpec(weight=lowbit.QuantizerConfig(kind="lsq", bits=4, granularity="channel"),
...                         act=lowbit.QuantizerConfig(kind="lsq", bits=4))
>>> qmodel = lowbit.prepare(model, spec)
>>> lowbit.calibrate(qmodel, [torch.randn(16, 3, 8, 8)])
>>> cost = lowbit.account(qmodel, torch.zeros(1, 3, 8, 8))
>>> cost.weight_bits_total == 4 * (8 * 3 * 9 + 10 * 288)
True
"""

__version__ = "0.1.0"

from .accounting import LayerCost, ModelCost, account
from .calibrate import calibrate, calibrate_weights, ptq
from .errors import CheckpointError, ConfigError, DataError, FormatError, LowbitError
from .fold import find_bn_pairs, fold_batchnorm
from .nn import (Add, LayerOverride, QuantizedModel, QuantSpec, convert, load_float_state_dict,
                 prepare, quant_layers, set_quant_state)
from .nn import quantizers as iter_quantizers
from .ops import ESTIMATORS, dequantize, fake_quantize, qrange, quantize, set_fast_kernels
from .quantizers import QUANTIZERS, Observer, Quantizer, QuantizerConfig, make_quantizer

__all__ = [
    "__version__",
    # flow
    "prepare", "calibrate", "calibrate_weights", "ptq", "convert", "fold_batchnorm", "account",
    # configuration
    "QuantSpec", "LayerOverride", "QuantizerConfig",
    # building blocks
    "Quantizer", "make_quantizer", "QUANTIZERS", "ESTIMATORS", "Observer", "Add",
    "fake_quantize", "quantize", "dequantize", "qrange", "set_fast_kernels",
    # inspection
    "quant_layers", "iter_quantizers", "set_quant_state", "load_float_state_dict", "find_bn_pairs",
    "QuantizedModel", "ModelCost", "LayerCost",
    # errors
    "LowbitError", "ConfigError", "DataError", "CheckpointError", "FormatError",
]
