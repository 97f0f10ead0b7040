"""Rebuild a finished (or interrupted) run from its folder: recipe.yaml + checkpoint.pt.

Used by ``lowbit eval``, ``lowbit export`` and ``lowbit report``. Nothing in the folder is
executed: the recipe is YAML and the checkpoint is loaded with ``weights_only=True``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from ..fold import apply_fold_structure
from .build import Data, build_data, build_float_model, example_input, quantize_model
from .checkpoint import load_checkpoint
from .distributed import DistInfo
from .loop import CHECKPOINT
from .recipe import Recipe, load_recipe, recipe_from_dict


@dataclass
class Run:
    """A rebuilt run: its recipe, data, trained model and checkpoint contents."""

    path: Path
    recipe: Recipe
    data: Data
    model: nn.Module
    checkpoint: Dict[str, Any]

    @property
    def example_input(self) -> torch.Tensor:
        return example_input(self.data)


def load_run(run_dir, data_dir: Optional[str] = None, require_done: bool = False,
             test_limit: Optional[int] = None, allow_import: bool = False) -> Run:
    """Recipe, data and trained model of the run in ``run_dir`` (``test_limit``: evaluate on
    the first N test images only; ``allow_import``: let a recipe that names a model factory
    import it)."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ConfigError(f"{path} is not a run folder (expected the --out folder of `lowbit train`)")
    recipe_file = path / "recipe.yaml"
    ckpt = load_checkpoint(path / CHECKPOINT, required=("recipe", "model"))
    if recipe_file.is_file():
        recipe = load_recipe(str(recipe_file))
    else:
        recipe = recipe_from_dict(ckpt["recipe"])
    if require_done and not ckpt.get("done"):
        raise CheckpointError(f"the run in {path} has not finished; resume it with "
                              f"`lowbit train RECIPE --out {path} --resume`")
    data = build_data(_limited(recipe, test_limit), DistInfo(), data_dir)
    model = quantize_model(recipe, build_float_model_without_init(recipe, data, allow_import),
                           example_input(data))
    apply_fold_structure(model, ckpt.get("structure", {}).get("folded_bn", []))
    if not isinstance(ckpt["model"], dict):
        raise CheckpointError(f"{path / CHECKPOINT} is damaged: its model entry is not a state dict")
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path / CHECKPOINT} does not match its recipe's model: "
                              f"{str(exc).splitlines()[0]}") from None
    return Run(path, recipe, data, model.eval(), ckpt)


def _limited(recipe: Recipe, test_limit: Optional[int]) -> Recipe:
    if test_limit is None:
        return recipe
    d = recipe.data
    limit = min(test_limit, d.test_limit or test_limit)
    return dataclasses.replace(recipe, data=dataclasses.replace(d, test_limit=limit))


def build_float_model_without_init(recipe: Recipe, data: Data, allow_import: bool = False) -> nn.Module:
    """The architecture alone: trained weights come from the checkpoint."""
    bare = dataclasses.replace(recipe, model=dataclasses.replace(recipe.model, init=None))
    return build_float_model(bare, data, allow_import)
