"""QuantSpec: which layers get which quantizers, with per-layer overrides by name pattern.

>>> from lowbit.quantizers import QuantizerConfig
>>> spec = QuantSpec(weight=QuantizerConfig(bits=4, granularity="channel"),
...                  act=QuantizerConfig(bits=4),
...                  overrides=(LayerOverride("@first", weight={"bits": 8}, act={"bits": 8}),
...                             LayerOverride("fc", skip=True)))
>>> spec.overrides[1].skip
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from ..errors import ConfigError, unknown_name
from ..quantizers.config import QuantizerConfig

LAYER_TYPES = ("conv", "conv1d", "conv2d", "linear")
FLOAT = "float"
Change = Union[None, str, Mapping[str, Any]]


def _check_change(value: Change, what: str) -> Change:
    if value is None or value == FLOAT:
        return value
    if isinstance(value, Mapping):
        names = {f.name for f in dataclasses.fields(QuantizerConfig)}
        for key in value:
            if key not in names:
                raise unknown_name(f"{what} override field", key, names)
        return dict(value)
    raise ConfigError(f"{what} override must be a mapping of quantizer fields or 'float', got {value!r}")


@dataclass(frozen=True)
class LayerOverride:
    """Changes for the layers whose name matches ``pattern``.

    pattern: a glob on module names (``layer1.*.conv1``), ``re:<regex>``, ``@first`` /
      ``@last`` (the first / last quantizable layer in registration order), or a layer type:
      ``@conv`` (Conv1d/Conv2d) or ``@linear`` (alias ``@dense``).
    weight / act / bias: a mapping of QuantizerConfig fields to change (``{bits: 8}``), or
      ``"float"`` to leave that tensor unquantized.
    skip: leave the layer entirely in float (no wrapper).
    """

    pattern: str
    weight: Change = None
    act: Change = None
    skip: bool = False
    bias: Change = None

    def __post_init__(self):
        if not isinstance(self.pattern, str) or not self.pattern:
            raise ConfigError(f"override pattern must be a non-empty string, got {self.pattern!r}")
        object.__setattr__(self, "weight", _check_change(self.weight, "weight"))
        object.__setattr__(self, "act", _check_change(self.act, "act"))
        object.__setattr__(self, "bias", _check_change(self.bias, "bias"))


@dataclass(frozen=True)
class QuantSpec:
    """What ``prepare`` quantizes.

    weight / act / bias: quantizer configs (None leaves that tensor in float; biases are float
      by default). layers: module types to wrap (conv = Conv1d and Conv2d, incl. depthwise and
      grouped; linear). residual: also quantize both inputs of residual ``Add`` modules.
    exclude: name patterns never wrapped. overrides: applied in order, later ones win.
    int_bias: round each bias to the int32 grid ``s_x * s_w`` of its layer's accumulator, as
      integer runtimes (onnxruntime's QLinearConv) do, so the fake-quant model is the integer
      one. Needs affine input and weight quantizers (uniform, lsq, pow2) with per-tensor or
      per-output-channel weight scales; layers with a float input or weight keep a float bias.
      Batch norms must be folded first (recipes: ``model.fold_bn: true``). Excludes ``bias``.
    """

    weight: Optional[QuantizerConfig] = field(
        default_factory=lambda: QuantizerConfig(kind="lsq", bits=8, granularity="channel"))
    act: Optional[QuantizerConfig] = field(default_factory=lambda: QuantizerConfig(kind="lsq", bits=8))
    bias: Optional[QuantizerConfig] = None
    layers: Tuple[str, ...] = ("conv", "linear")
    residual: bool = False
    exclude: Tuple[str, ...] = ()
    overrides: Tuple[LayerOverride, ...] = ()
    int_bias: bool = False

    def __post_init__(self):
        layers = tuple(self.layers)
        for t in layers:
            if t not in LAYER_TYPES:
                raise ConfigError(
                    f"cannot quantize module type {t!r}: lowbit wraps {', '.join(LAYER_TYPES)} "
                    "(nn.MultiheadAttention, for one, computes its projections without Linear "
                    "modules; build attention from nn.Linear layers to quantize it)")
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "exclude", tuple(self.exclude))
        overrides = tuple(o if isinstance(o, LayerOverride) else LayerOverride(**o)
                          for o in self.overrides)
        object.__setattr__(self, "overrides", overrides)
        for name in ("weight", "act", "bias"):
            value = getattr(self, name)
            if isinstance(value, Mapping):
                object.__setattr__(self, name, QuantizerConfig.from_dict(dict(value)))
        if self.int_bias and self.bias is not None:
            raise ConfigError("int_bias rounds biases to the accumulator grid s_x * s_w; a separate "
                              "bias quantizer cannot be used with it: set one of bias / int_bias")

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)
