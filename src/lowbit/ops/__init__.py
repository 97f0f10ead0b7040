"""Pure tensor math for quantization: no nn.Module, no config objects.

Ranges (:func:`qrange`), affine :func:`quantize` / :func:`dequantize` / :func:`fake_quantize`,
rounding with named gradient estimators (:data:`ESTIMATORS`), power-of-two and DoReFa
transforms, and the nested learned-scale Function of Chinbat's thesis.
"""

from .affine import clip_round, dequantize, fake_quantize, fake_quantize_bias, int_dtype, quantize
from .axes import broadcast_shape, normalize_axis, per_axis, reduce_dims, to_groups
from .compiled import set_compile_breakeven
from .gradients import ceil_ste, fill_levels_ste, grad_scale
from .kernels import (exact_gradients, fast_clip_round, fast_fake_quantize, fast_kernels_enabled,
                      set_exact_gradients, set_fast_kernels)
from .nested import nested_quantize
from .ranges import bits_for_levels, check_bits, qrange
from .rounding import (ESTIMATORS, check_estimator, discretize, floor_ste, round_ewgs,
                       round_ste, round_with)
from .transforms import (dorefa_weight, dorefa_weight_normalize, log2_quantize_values,
                         pow2_scale)

__all__ = [
    "qrange", "check_bits", "bits_for_levels",
    "quantize", "dequantize", "fake_quantize", "fake_quantize_bias", "fast_fake_quantize", "int_dtype",
    "clip_round", "fast_clip_round",
    "set_fast_kernels", "fast_kernels_enabled", "set_exact_gradients", "exact_gradients",
    "set_compile_breakeven",
    "broadcast_shape", "normalize_axis", "per_axis", "reduce_dims", "to_groups",
    "ESTIMATORS", "check_estimator", "round_with", "round_ste", "round_ewgs", "floor_ste",
    "discretize", "grad_scale", "ceil_ste", "fill_levels_ste", "nested_quantize",
    "pow2_scale", "dorefa_weight", "dorefa_weight_normalize", "log2_quantize_values",
]
