"""Wrappers that attach quantizers to Conv/Linear layers and residual adds; prepare/convert."""

from .control import project_quantizers, quantizer_parameters, set_quant_state
from .convert import QuantizedLayer, QuantizedModel, convert
from .layers import Add
from .modules import QuantAdd, QuantMixin, is_quant_layer, unwrap_layer
from .prepare import float_copy, load_float_state_dict, prepare
from .walk import act_quantizers, quant_layers, quant_summary, quantizers, weight_quantizers
from .spec import LayerOverride, QuantSpec

__all__ = ["prepare", "convert", "QuantSpec", "LayerOverride", "QuantizedModel", "QuantizedLayer",
           "Add", "QuantAdd", "QuantMixin", "is_quant_layer", "unwrap_layer", "quant_layers",
           "quantizers", "weight_quantizers", "act_quantizers", "load_float_state_dict",
           "quant_summary", "set_quant_state", "project_quantizers", "quantizer_parameters",
           "float_copy"]
