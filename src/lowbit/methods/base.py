"""The interface of training methods: loss terms and step hooks around one training loop.

A method is a config dataclass plus a :class:`Method` object. The trainer calls, in order:
``setup`` once (after prepare/calibrate), ``on_phase_start`` at each phase, then every step
``loss`` (an extra loss term, or None), ``before_step`` (after backward, before the optimizer)
and ``after_step``. ``state_dict``/``load_state_dict`` make resume exact; ``report`` adds a
section to report.json. Outside the trainer, a method's loss is a plain tensor to add to yours.

A method that trains a second network next to the model (guided training's full-precision
twin) returns it from ``companions()``; the trainer then owns everything a network needs
besides its loss: an optimizer of its own, its steps, its place in the checkpoint, gradient
averaging across processes and an evaluation after every epoch (see :class:`Companion`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch
from torch import nn

from ..registry import Registry
from ..schema import build

METHODS = Registry("method")


@dataclass
class TrainContext:
    """What methods can see of the training run (the trainer keeps it up to date)."""

    model: nn.Module
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    step: int = 0                 # global optimizer step
    phase_index: int = 0
    phase_step: int = 0           # step within the phase
    phase_steps: int = 1          # steps in the phase
    lr: float = 0.0               # the phase learning rate at this step (before group scales)
    steps_per_epoch: int = 1
    example_input: Optional[torch.Tensor] = None
    train_loader: Any = None
    test_loader: Any = None
    optimizer: Any = None
    float_model: Optional[nn.Module] = None   # the float baseline, when the recipe has one
    out_dir: Optional[Any] = None             # the run folder (plots go there)
    log: Dict[str, float] = field(default_factory=dict)   # scalars to show in progress


@dataclass
class Companion:
    """A network a method trains alongside the model, with an optimizer of its own.

    The trainer builds its optimizer from the recipe's ``optim`` section with ``optim``'s
    changes (OptimConfig fields: ``lr``, ``momentum``, ``weight_decay``, ...; without ``lr`` it
    follows each phase's learning rate), runs the phase's schedule on it, zeroes and steps it
    with the model's optimizer (the method's loss term carries the companion's own loss, so
    one backward pass gives both networks their gradients), averages its gradients across
    processes, saves its weights and optimizer state in the checkpoint, and evaluates it on
    the test set after every epoch and at the end (``<name>_top1`` in the epoch log,
    metrics.json and the report). ``trainable=False``: no optimizer; its weights never change.
    """

    name: str
    module: nn.Module
    optim: Dict[str, Any] = field(default_factory=dict)
    trainable: bool = True


class Method:
    """Base class: override what the method needs; every hook is optional."""

    name = "method"
    Config: type = object
    task_weight = 1.0  # multiplies the task (cross-entropy) loss while the method is active

    def __init__(self, config: Any):
        self.config = config
        self.active = True

    @classmethod
    def config_from(cls, args: Dict[str, Any]) -> Any:
        """Validate raw arguments into the method's config dataclass."""
        return build(cls.Config, args, f"methods.{cls.name}")

    @classmethod
    def from_args(cls, args: Dict[str, Any]) -> "Method":
        return cls(cls.config_from(args))

    def setup(self, ctx: TrainContext) -> None:
        """Called once before training, after the model is prepared and calibrated."""

    def on_phase_start(self, ctx: TrainContext, phase: Any, args: Dict[str, Any]) -> None:
        """Called at the start of every phase with the phase's arguments for this method."""

    def loss(self, ctx: TrainContext, x: torch.Tensor, y: torch.Tensor,
             logits: torch.Tensor) -> Optional[torch.Tensor]:
        """An extra loss term added to the task loss (None for none)."""
        return None

    def before_step(self, ctx: TrainContext) -> None:
        """After backward, before the optimizer step (e.g. gate gradients)."""

    def after_step(self, ctx: TrainContext) -> None:
        """After the optimizer step."""

    def on_epoch_end(self, ctx: TrainContext) -> Dict[str, float]:
        """After each epoch's evaluation, before the checkpoint; scalars for the epoch's log."""
        return {}

    def parameters(self):
        """Extra parameters the model's optimizer must train with the model's settings."""
        return []

    def companions(self) -> List[Companion]:
        """Networks trained next to the model with their own optimizers (after ``setup``)."""
        return []

    def state_dict(self) -> Dict[str, Any]:
        return {}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def report(self, ctx: TrainContext) -> Dict[str, Any]:
        """A section for report.json (JSON-serialisable)."""
        return {}

    def finalize(self, ctx: TrainContext) -> None:
        """Called after the last phase, before final evaluation (e.g. QGT quantizes here)."""
