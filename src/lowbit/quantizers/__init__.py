"""Quantizer modules: each owns its state and calls :mod:`lowbit.ops`.

=============  ==========================================================================
uniform        affine, scale/zero point from calibration, fixed
lsq            learned step size (LSQ; learned zero point when asymmetric)
learned_range  learned step d and range q+, implicit per-channel bits (Schaefer et al.)
nested         floor quantization, learned scale with ratio-threshold gradient (Chinbat's thesis)
dorefa         DoReFa weights/activations (Zhuang et al.)
pow2           learned power-of-two step
log2           non-uniform powers of two
=============  ==========================================================================

>>> from lowbit.quantizers import QUANTIZERS
>>> QUANTIZERS.names()
['dorefa', 'learned_range', 'log2', 'lsq', 'nested', 'pow2', 'uniform']
"""

from typing import Optional, Sequence

from .base import QParams, Quantizer, affine_from_range, dequantize_codes
from .config import QuantizerConfig
from .dorefa import DoReFaQuantizer
from .granularity import Granularity
from .kinds import QUANTIZERS
from .learned_range import LearnedRangeQuantizer
from .log2 import Log2Quantizer
from .nested import NestedQuantizer
from .observers import Observer
from .uniform import LSQQuantizer, Pow2Quantizer, UniformQuantizer

for _name, _cls in [("uniform", UniformQuantizer), ("lsq", LSQQuantizer),
                    ("learned_range", LearnedRangeQuantizer), ("nested", NestedQuantizer),
                    ("dorefa", DoReFaQuantizer), ("pow2", Pow2Quantizer), ("log2", Log2Quantizer)]:
    QUANTIZERS.register(_name)(_cls)


def make_quantizer(config: QuantizerConfig, role: str = "weight",
                   shape: Optional[Sequence[int]] = None, name: str = "") -> Quantizer:
    """Build the quantizer module ``config.kind`` for a weight of ``shape`` or an activation."""
    return QUANTIZERS.get(config.kind)(config, role, shape, name)


__all__ = ["QUANTIZERS", "make_quantizer", "Quantizer", "QuantizerConfig", "QParams",
           "Granularity", "Observer", "affine_from_range", "dequantize_codes",
           "UniformQuantizer", "LSQQuantizer", "Pow2Quantizer", "LearnedRangeQuantizer",
           "NestedQuantizer", "DoReFaQuantizer", "Log2Quantizer"]
