"""Training: recipes (YAML -> frozen dataclasses), one loop over phases, checkpoints, DDP."""

from ..evaluate import evaluate
from .loop import Trainer, TrainingDiverged
from .recipe import (DataConfig, MethodConfig, ModelConfig, OptimConfig, PhaseConfig, Recipe,
                     ScheduleConfig, load_recipe, recipe_from_dict)
from .schedule import linear_ramp, lr_at

__all__ = ["Trainer", "TrainingDiverged", "Recipe", "ModelConfig", "DataConfig", "OptimConfig",
           "ScheduleConfig", "PhaseConfig", "MethodConfig", "load_recipe", "recipe_from_dict",
           "evaluate", "lr_at", "linear_ramp"]
