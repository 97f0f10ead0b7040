"""Recipes: YAML files mapped onto frozen dataclasses (model, data, quant, methods, phases).

A recipe is a model, a dataset, a quantization spec, training methods (loss terms and step
hooks) and a list of phases. Each phase has a length, a learning-rate schedule, and changes to
what is quantized and learned. Every method of the four papers is a recipe:

* QGT: one float phase with the ``qgt`` method, weights quantized at the end;
* two-stage (Zhuang et al.): phase 1 ``quantize_acts: false``, phase 2 both;
* progressive: phases with ``weight_bits``/``act_bits`` 8, 4, 2;
* learned mixed precision (Schaefer et al.): fixed-bit pre-training, precision learning with the
  ``budget`` method, fine-tuning with ``freeze_quantizers: true``.

>>> r = recipe_from_dict({"model": {"name": "mlp"}, "data": {"dataset": "mnist"},
...                       "phases": [{"epochs": 2}]})
>>> r.phases[0].epochs, r.quant is None
(2.0, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Tuple

import yaml

from ..errors import ConfigError
from ..files import REPO_ROOT
from ..methods import METHODS
from ..models.user import check_import_path
from ..nn.spec import QuantSpec
from ..ops.ranges import check_bits
from ..schema import apply_override, build, parse_override, to_plain

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "cosine", "linear", "step")


def _positive(name: str, value, allow_zero: bool = False) -> None:
    ok = value is not None and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise ConfigError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture from the registry (``name``, ``kwargs``) or from your own code
    (``factory: "mypkg.models:build"``, called with ``args``; runs only with --allow-import);
    ``init`` = float weights (.safetensors) to start from.

    fold_bn: fold every batch norm into the Conv/Linear before it right after loading ``init``,
    so the model trains without batch norm, exactly as it is deployed (``quant.int_bias``
    needs this for models with batch norm).
    scalar_layer: give the model a trainable scalar multiplying its logits, starting at this
    value (Zhuang et al., Towards Effective Low-bitwidth CNNs, Section 3.6, use 0.01 for a network
    that learns with it; fine-tuning ``init`` weights trained without one, 1.0 keeps their
    logits); exports keep it. ``init`` weights without one leave it at this value.
    """

    name: Optional[str] = None
    factory: Optional[str] = None
    args: Dict[str, Any] = field(default_factory=dict)
    num_classes: Optional[int] = None
    in_channels: Optional[int] = None
    input_size: Optional[int] = None
    kwargs: Dict[str, Any] = field(default_factory=dict)
    init: Optional[str] = None
    channels_last: bool = True
    compile: bool = False
    fold_bn: bool = False
    scalar_layer: Optional[float] = None

    def __post_init__(self):
        for name in ("num_classes", "in_channels", "input_size", "scalar_layer"):  # None: dataset's / none
            if getattr(self, name) is not None:
                _positive(f"model.{name}", getattr(self, name))
        if (self.name is None) == (self.factory is None):
            raise ConfigError("model needs exactly one of name (a registry model, see `lowbit "
                              "models`) or factory ('package.module:function' of your own)")
        if self.factory is None:
            if self.args:
                raise ConfigError("model.args are a factory's arguments; registry models take "
                                  "model.kwargs")
            return
        check_import_path(self.factory, "model.factory")
        given = [k for k in ("num_classes", "in_channels", "input_size")
                 if getattr(self, k) is not None]
        if given or self.kwargs:
            raise ConfigError(f"model.{(given or ['kwargs'])[0]} is an argument of registry "
                              "models; give a factory's arguments in model.args")


@dataclass(frozen=True)
class DataConfig:
    """Dataset, batch sizes, augmentation on/off, optional subsets, calibration batches."""

    dataset: str
    data_dir: Optional[str] = None
    image_size: Optional[int] = None
    batch_size: int = 128
    eval_batch_size: int = 500
    augment: bool = True
    train_limit: Optional[int] = None
    test_limit: Optional[int] = None
    calib_batches: int = 8

    def __post_init__(self):
        for name in ("batch_size", "eval_batch_size", "calib_batches"):
            _positive(f"data.{name}", getattr(self, name))
        for name in ("train_limit", "test_limit", "image_size"):
            if getattr(self, name) is not None:
                _positive(f"data.{name}", getattr(self, name))


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer; quantizer parameters may get their own learning rate, weight decay and
    optimizer (``quant_optimizer: adam`` makes learned bit-widths move at a rate set by
    ``quant_lr`` alone, whatever the size of the model)."""

    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    quant_lr: Optional[float] = None
    quant_weight_decay: float = 0.0
    quant_optimizer: str = "same"
    label_smoothing: float = 0.0
    grad_clip: Optional[float] = None

    def __post_init__(self):
        if self.name not in OPTIMIZERS:
            raise ConfigError(f"optim.name must be one of {', '.join(OPTIMIZERS)}, got {self.name!r}")
        if self.quant_optimizer not in OPTIMIZERS + ("same",):
            raise ConfigError(f"optim.quant_optimizer must be 'same' or one of {', '.join(OPTIMIZERS)}, "
                              f"got {self.quant_optimizer!r}")
        _positive("optim.lr", self.lr)
        _positive("optim.weight_decay", self.weight_decay, allow_zero=True)
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"optim.momentum must be in [0, 1), got {self.momentum}")
        if self.grad_clip is not None:  # a negative norm would reverse the gradients
            _positive("optim.grad_clip (the largest gradient norm; null for none)", self.grad_clip)
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"optim.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.quant_lr is not None:
            _positive("optim.quant_lr", self.quant_lr, allow_zero=True)


@dataclass(frozen=True)
class ScheduleConfig:
    """Warm-up then cosine / step / linear / constant; milestones are phase fractions.

    ``cycle_epochs`` > 0 restarts the decay every that many epochs after warm-up (warm restarts,
    SGDR; with ``swa`` averaging at epoch ends, the cyclical schedule of SWA); milestones are
    then fractions of a cycle."""

    kind: str = "cosine"
    warmup_epochs: float = 0.0
    final_lr_ratio: float = 0.0
    milestones: Tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1
    cycle_epochs: float = 0.0

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise ConfigError(f"schedule.kind must be one of {', '.join(SCHEDULES)}, got {self.kind!r}")
        _positive("schedule.warmup_epochs", self.warmup_epochs, allow_zero=True)
        _positive("schedule.cycle_epochs", self.cycle_epochs, allow_zero=True)
        _positive("schedule.gamma (the step decay factor)", self.gamma)  # <= 0: lr <= 0
        _positive("schedule.final_lr_ratio", self.final_lr_ratio, allow_zero=True)
        if not all(0 <= m <= 1 for m in self.milestones) or list(self.milestones) != sorted(self.milestones):
            raise ConfigError(f"schedule.milestones are increasing fractions of the phase in "
                              f"[0, 1], got {list(self.milestones)}")


@dataclass(frozen=True)
class PhaseConfig:
    """One phase: length, learning rate, and what is quantized, re-bitted, frozen or learned.

    ``None`` leaves a setting as the previous phase left it (``lr`` and ``quant_lr``: the
    optim section's). ``quant_lr`` is the quantizer parameters' peak learning rate in this
    phase only, e.g. fast while bit-widths are learned, slow while steps are fine-tuned.
    ``label_smoothing`` replaces the optim section's in this phase only (e.g. a final cycle
    with smoothed targets). ``methods`` gives per-phase
    arguments to the recipe's methods (e.g. ``{budget: {beta: 0}}``); a method named in
    ``disable_methods`` adds no loss and runs no hooks in this phase.
    """

    name: str = "train"
    epochs: float = 1.0
    lr: Optional[float] = None
    quant_lr: Optional[float] = None
    label_smoothing: Optional[float] = None
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    quantize_weights: Optional[bool] = None
    quantize_acts: Optional[bool] = None
    weight_bits: Optional[int] = None
    act_bits: Optional[int] = None
    freeze_quantizers: Optional[bool] = None
    learn_bits: Optional[bool] = None
    calibrate: bool = False
    methods: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    disable_methods: Tuple[str, ...] = ()

    def __post_init__(self):
        # 0 epochs: apply the phase's settings without training (e.g. PTQ = QGT with lambda 0)
        _positive(f"phase {self.name!r} epochs", self.epochs, allow_zero=True)
        if self.lr is not None:
            _positive(f"phase {self.name!r} lr", self.lr)
        if self.quant_lr is not None:
            _positive(f"phase {self.name!r} quant_lr", self.quant_lr, allow_zero=True)
        if self.label_smoothing is not None and not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"phase {self.name!r} label_smoothing must be in [0, 1), got {self.label_smoothing}")
        for name in ("weight_bits", "act_bits"):
            if getattr(self, name) is not None:
                check_bits(getattr(self, name), f"phase {self.name!r} {name}")


@dataclass(frozen=True)
class MethodConfig:
    """A training method from the registry (``lowbit recipes`` lists them) and its arguments."""

    name: str
    args: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    """Everything ``lowbit train`` needs. ``quant: null`` trains in float."""

    model: ModelConfig
    data: DataConfig
    name: str = "recipe"
    description: str = ""
    seed: int = 0
    quant: Optional[QuantSpec] = None
    methods: Tuple[MethodConfig, ...] = ()
    optim: OptimConfig = field(default_factory=OptimConfig)
    phases: Tuple[PhaseConfig, ...] = field(default_factory=lambda: (PhaseConfig(),))
    eval_fp32: bool = True
    fold_bn: bool = True
    log_every: int = 20

    def __post_init__(self):
        if not self.phases:
            raise ConfigError("a recipe needs at least one phase")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be in 0..{2**32 - 1}, got {self.seed}")
        _positive("log_every", self.log_every)
        names = [m.name for m in self.methods]
        for phase in self.phases:
            for key in list(phase.methods) + list(phase.disable_methods):
                if key not in names:
                    raise ConfigError(f"phase {phase.name!r} refers to method {key!r}, which the "
                                      f"recipe does not use; recipe methods: {names or 'none'}")

    @property
    def total_epochs(self) -> float:
        return sum(p.epochs for p in self.phases)

    def to_dict(self) -> Dict[str, Any]:
        data = to_plain(self)
        for key in ("factory", "args"):  # absent for registry models, as in older runs' records
            if not data["model"][key]:
                del data["model"][key]
        return data


def recipe_from_dict(data: Dict[str, Any], overrides: Iterable[str] = ()) -> Recipe:
    """Validate raw recipe data (after ``key=value`` overrides) into a :class:`Recipe`."""
    data = yaml.safe_load(yaml.safe_dump(data)) if data else {}  # deep copy of plain data
    for text in overrides:
        apply_override(data, *parse_override(text))
    recipe = build(Recipe, data, "")
    _check_methods(recipe)
    return recipe


def _check_methods(recipe: Recipe) -> None:
    for m in recipe.methods:
        cfg = METHODS.get(m.name).config_from(m.args)
        changes = getattr(cfg, "optim", None)  # optimizer changes for a method's companion network
        if changes:
            build(OptimConfig, {**to_plain(recipe.optim), **changes}, f"methods.{m.name}.optim")


def load_recipe(path: str, overrides: Iterable[str] = ()) -> Recipe:
    """Read a YAML recipe file (or a bundled recipe name) and apply ``--set`` overrides."""
    file = resolve_recipe_path(path)
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not a recipe (binary data, not YAML text)") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read it ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{file}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: a recipe is a mapping of fields, got {type(data).__name__}")
    return recipe_from_dict(data, overrides)


def bundled_recipes_dir() -> Path:
    return REPO_ROOT / "recipes"


def resolve_recipe_path(path: str) -> Path:
    """A recipe file path, or the name of a bundled recipe (``resnet20-cifar10-w4a4``)."""
    p = Path(path)
    if p.is_file():
        return p
    bundled = bundled_recipes_dir() / (path if path.endswith((".yaml", ".yml")) else f"{path}.yaml")
    if bundled.is_file():
        return bundled
    names = sorted(q.stem for q in bundled_recipes_dir().glob("*.yaml"))
    raise ConfigError(f"recipe {path!r} not found (no such file, and not a bundled recipe); "
                      f"bundled: {', '.join(names) or 'none'}")
