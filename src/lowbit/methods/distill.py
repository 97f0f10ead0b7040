"""Knowledge distillation from the float model (Schaefer et al., Table 1).

* ``soft`` (soft-label KD, Hinton et al.): the student learns the teacher's tempered
  predictions: ``(1 - alpha) * CE(y) + alpha * T^2 * KL(softmax(t / T) || softmax(s / T))``.
* ``penalty`` (penalty KD, as in PROFIT): one-hot targets stay; a penalty aligns the student's
  predictions with the teacher's: ``CE(y) + alpha * KL(softmax(t) || softmax(s))``.

The teacher is the trained float model the recipe starts from (``model.init``) or
``teacher: path/to/float.safetensors`` (same architecture), evaluated without gradients.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..models.weights import load_float_weights
from .base import METHODS, Method, TrainContext

MODES = ("soft", "penalty")


@dataclass(frozen=True)
class DistillConfig:
    mode: str = "soft"
    alpha: float = 0.5
    temperature: float = 4.0
    teacher: Optional[str] = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError(f"distill mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not (math.isfinite(self.alpha) and 0 <= self.alpha <= 1):
            raise ConfigError(f"distill alpha must be in [0, 1], got {self.alpha}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ConfigError(f"distill temperature must be > 0, got {self.temperature}")


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, mean over the batch.

    >>> s = torch.tensor([[2.0, 0.0]]); kd_loss(s, s).item()
    0.0
    """
    t = temperature
    return F.kl_div(F.log_softmax(student / t, dim=1), F.log_softmax(teacher / t, dim=1),
                    reduction="batchmean", log_target=True) * t * t


class Distill(Method):
    """Distillation from a frozen float teacher; scales the task loss in ``soft`` mode."""

    name = "distill"
    Config = DistillConfig

    @property
    def task_weight(self) -> float:
        return 1.0 - self.config.alpha if self.config.mode == "soft" else 1.0

    def setup(self, ctx: TrainContext) -> None:
        teacher = ctx.float_model
        if self.config.teacher:
            if teacher is None:
                raise ConfigError("distill: no float architecture to load the teacher into")
            teacher = copy.deepcopy(teacher)
            load_float_weights(teacher, self.config.teacher)
        if teacher is None:
            raise ConfigError("distill needs a trained float teacher: set model.init (the float "
                              "baseline) or methods.distill.teacher")
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)

    def loss(self, ctx: TrainContext, x, y, logits) -> Optional[torch.Tensor]:
        with torch.no_grad():
            t = self.teacher(x)
        if self.config.mode == "soft":
            term = self.config.alpha * kd_loss(logits, t, self.config.temperature)
        else:
            term = self.config.alpha * kd_loss(logits, t, 1.0)
        ctx.log["kd"] = term.item()
        return term

    def report(self, ctx: TrainContext) -> Dict[str, Any]:
        return {"mode": self.config.mode, "alpha": self.config.alpha,
                "temperature": self.config.temperature}


METHODS.register("distill")(Distill)
