"""Guided training with a full-precision twin (Zhuang, Shen, Tan, Liu, Reid: Towards Effective
Low-bitwidth Convolutional Neural Networks, CVPR 2018, Section 3.4, Algorithm 3, eq. 5-7).

A full-precision network of the same architecture, the *twin*, starts from the same float
weights as the low-bit model and trains jointly with it. At named points the two networks'
feature maps are compared: the feature map a quantized layer reads. ``nu`` is the low-bit
model's input of that layer after its activation quantizer Q; ``mu`` is the twin's input of
the same layer, put onto the same grid by the same Q (eq. 2-3: "we can directly quantize the
weights and activations of the full-precision model"), so the two are comparable::

    R          = 1/2 sum_points ||Q(mu(x; W_full)) - nu(x; W_low)||^2         (eq. 5)
    L1(W_full) = CE(twin(x), y)    + lambda R                                 (eq. 6)
    L2(W_low)  = CE(low-bit(x), y) + lambda R                                 (eq. 7)

The norm sums over the elements of one sample's feature maps; R is the mean over the batch.
Where a layer's input is not quantized (a float layer, or a phase with activations off, as in
two-stage training's first stage), Q is the identity. The method's loss term is
``CE(twin) + lambda R``: CE(twin) depends on W_full alone and the trainer's task loss on W_low
alone, so one backward pass of ``task + term`` gives each network exactly the gradient of its
own objective (eq. 7 for the low-bit model, eq. 6 for the twin). The twin is a
:class:`~lowbit.methods.Companion`: the trainer steps it with an optimizer of its own (the
recipe's settings, changed by ``optim``), checkpoints it and logs its top-1 every epoch as
``twin_top1``. Exports hold the low-bit model alone.

``joint: false`` keeps the twin fixed (eval mode, no optimizer: the paper's Fig. 3c ablation);
R then trains the low-bit model only.

Points are module-name patterns over the quantized layers (globs, ``re:<regex>``, ``@first``,
``@last``). The defaults follow the paper (the last two groups of residual blocks of a ResNet,
the last two fully-connected layers of AlexNet): for the bundled ResNets the inputs of the
last stage's first conv (the output of the stage before it) and of ``fc`` (the last stage's
pooled output); for other bundled models the inputs of their last two feature stages or
classifier layers (the two-layer MLP: its last layer's); for any other model, the inputs of
its last two quantized Conv/Linear layers.

>>> GuidedConfig(lam=-1)
Traceback (most recent call last):
...
lowbit.errors.ConfigError: guided lam (lambda) must be >= 0, got -1
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..nn.modules import QuantAdd
from ..nn.prepare import float_copy
from ..nn.walk import quant_layers
from .base import METHODS, Companion, Method, TrainContext
from .select import pick

_RESNET = ("layer3.0.conv1", "fc")
DEFAULT_POINTS: Dict[str, Tuple[str, ...]] = {
    **{f"resnet{d}": _RESNET for d in (8, 20, 32, 44, 56)},
    "resnet18": ("layer4.0.conv1", "fc"),
    "cnn": ("classifier.0", "classifier.3"),
    "mlp": ("fc2",),
    "mobilenet_v1": ("features.13.0.0", "classifier.1"),
    "mobilenet_v2": ("features.18.0", "classifier.1"),
    "efficientnet_lite0": ("head.0", "classifier.1"),
}


def _check_lam(lam: float) -> float:
    if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
        raise ConfigError(f"guided lam (lambda) must be >= 0, got {lam}")
    return lam


@dataclass(frozen=True)
class GuidedConfig:
    """lam: the weight lambda of the guidance loss R in both objectives (eq. 6-7); a phase may
    change it (``methods: {guided: {lam: 0}}``). points: module-name patterns of the quantized
    layers whose input feature maps are guided (empty: the model's default). joint: train the
    twin too (false: a fixed float guide). optim: changes to the recipe's optimizer settings for
    the twin (``{lr: 0.01, weight_decay: 0}``; without ``lr`` it follows each phase's)."""

    lam: float = 1e-3
    points: Tuple[str, ...] = ()
    joint: bool = True
    optim: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        _check_lam(self.lam)
        for p in self.points:
            if not isinstance(p, str) or not p:
                raise ConfigError(f"guided points must be non-empty module-name patterns, got {p!r}")


def default_points(model: nn.Module) -> Tuple[str, ...]:
    """The guided points of a bundled model, else the last two quantized Conv/Linear layers
    after the first (the first one's input is the network input, the same in both networks,
    where the guidance loss is always 0)."""
    name = (getattr(model, "lowbit_spec", None) or {}).get("name")
    if name in DEFAULT_POINTS:
        return DEFAULT_POINTS[name]
    layers = [n for n, m in quant_layers(model) if not isinstance(m, QuantAdd)]
    if len(layers) < 2:
        raise ConfigError(f"guided: the model has {len(layers)} quantized Conv/Linear layer(s) and no "
                          "feature map between them to guide; name the points (methods.N.args.points)")
    return tuple(layers[1:][-2:])


def resolve_points(model: nn.Module, patterns: Tuple[str, ...]) -> List[str]:
    """Names of the quantized layers the patterns match, in model order; each pattern must
    match at least one (the error lists the layers that exist)."""
    return pick([n for n, _ in quant_layers(model)], patterns, "guided points", "quantized layer")


def _input_quantizers(layer: nn.Module) -> List[Optional[nn.Module]]:
    if isinstance(layer, QuantAdd):
        return list(layer.input_quantizers)
    return [layer.input_quantizer]


def guidance_loss(pairs: List[Tuple[str, torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """``1/2 sum_points ||q_mu - nu||^2``, summed over each sample's elements, mean over the
    batch (eq. 5); ``pairs`` are (point name, Q(mu), nu) with equal shapes (batch first).

    >>> a, b = torch.zeros(2, 3), torch.ones(2, 3)
    >>> guidance_loss([("p", a, b)]).item()   # 1/2 * 3 per sample
    1.5
    """
    total = None
    for name, q_mu, nu in pairs:
        if q_mu.shape != nu.shape:
            raise ConfigError(f"guided point {name!r}: the twin's feature map has shape "
                              f"{list(q_mu.shape)}, the low-bit model's {list(nu.shape)}; the two "
                              "networks must compute the same shapes there")
        term = 0.5 * (q_mu - nu).pow(2).sum() / nu.shape[0]
        total = term if total is None else total + term
    return total


class _Capture:
    """Forward pre-hooks that keep the inputs of named modules during one forward pass."""

    def __init__(self, root: nn.Module, names: List[str]):
        self.inputs: Dict[str, Tuple[torch.Tensor, ...]] = {}
        self.handles = [root.get_submodule(n).register_forward_pre_hook(self._hook(n)) for n in names]

    def _hook(self, name: str):
        def hook(module, args):
            self.inputs[name] = args  # returns None: the input is not changed
        return hook

    def take(self, name: str, who: str) -> Tuple[torch.Tensor, ...]:
        if name not in self.inputs:
            raise ConfigError(f"guided point {name!r} was not computed in the {who}'s forward "
                              "pass; choose layers that every forward pass runs")
        return self.inputs[name]

    def clear(self) -> None:
        self.inputs.clear()


class Guided(Method):
    """Joint training with a full-precision twin; the loss term is CE(twin) + lambda R."""

    name = "guided"
    Config = GuidedConfig

    def setup(self, ctx: TrainContext) -> None:
        cfg = self.config
        self.lam = cfg.lam
        self.points = resolve_points(ctx.model, cfg.points or default_points(ctx.model))
        self.twin = float_copy(ctx.model).to(ctx.device)
        self.twin.train(cfg.joint)
        for p in self.twin.parameters():
            p.requires_grad_(cfg.joint)
        self.layers = {n: ctx.model.get_submodule(n) for n in self.points}
        self._low = _Capture(ctx.model, self.points)
        self._full = _Capture(self.twin, self.points)

    def companions(self) -> List[Companion]:
        return [Companion("twin", self.twin, dict(self.config.optim), trainable=self.config.joint)]

    def on_phase_start(self, ctx: TrainContext, phase: Any, args: Dict[str, Any]) -> None:
        unknown = sorted(set(args) - {"lam"})
        if unknown:
            raise ConfigError(f"phase {getattr(phase, 'name', '?')!r}: guided takes only 'lam' per "
                              f"phase, got {unknown}")
        self.lam = _check_lam(args.get("lam", self.config.lam))

    def pairs(self) -> List[Tuple[str, torch.Tensor, torch.Tensor]]:
        """(point, Q(mu), nu) for every guided input of the last forward passes of both nets."""
        out = []
        for name, layer in self.layers.items():
            low, full = self._low.take(name, "low-bit model"), self._full.take(name, "twin")
            for i, q in enumerate(_input_quantizers(layer)):
                nu, mu = low[i], full[i]
                if q is not None:
                    nu, mu = q(nu), q(mu)
                out.append((name if len(low) == 1 else f"{name}[{i}]", mu, nu))
        return out

    def loss(self, ctx: TrainContext, x: torch.Tensor, y: torch.Tensor,
             logits: torch.Tensor) -> Optional[torch.Tensor]:
        self._full.clear()
        with torch.set_grad_enabled(self.config.joint):
            twin_logits = self.twin(x)
        r = guidance_loss(self.pairs())
        self._low.clear()
        self._full.clear()
        term = self.lam * r
        ctx.log["guide"] = r.item()
        if self.config.joint:
            term = term + F.cross_entropy(twin_logits, y)
        return term

    def report(self, ctx: TrainContext) -> Dict[str, Any]:
        return {"lambda": self.config.lam, "points": self.points, "joint": self.config.joint,
                "twin_optim": dict(self.config.optim) or "the recipe's"}


METHODS.register("guided")(Guided)
