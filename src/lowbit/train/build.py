"""Build what a recipe describes: data loaders, the model (from float weights), the quantized
model, and the methods. Shared by training, ``lowbit eval`` and ``lowbit export``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import List, Optional

import torch
from torch import nn

from ..data import BatchLoader, ImageSet, eval_augment, load_split, train_augment
from ..data.presets import stored_size
from ..errors import ConfigError
from ..fold import fold_batchnorm
from ..methods import METHODS, Method
from ..models import create_model
from ..models.user import build_from_factory
from ..models.weights import load_float_weights
from ..nn.layers import add_scalar_layer
from ..nn.prepare import prepare
from .distributed import DistInfo
from .recipe import Recipe


@dataclass
class Data:
    train: ImageSet
    test: ImageSet
    train_loader: BatchLoader
    test_loader: BatchLoader
    calib_loader: BatchLoader
    input_size: int


def build_data(recipe: Recipe, dist: DistInfo, data_dir: Optional[str] = None) -> Data:
    """Load both splits into memory and make the train (sharded), test and calibration loaders."""
    d = recipe.data
    root = data_dir or d.data_dir
    size = stored_size(d.dataset, d.image_size)
    train = load_split(d.dataset, "train", root, image_size=size, limit=d.train_limit)
    test = load_split(d.dataset, "test", root, image_size=size, limit=d.test_limit)
    if d.batch_size % dist.world_size:
        raise ConfigError(f"data.batch_size {d.batch_size} must divide evenly over "
                          f"{dist.world_size} processes")
    cl = recipe.model.channels_last
    aug = train_augment(d.dataset, d.image_size) if d.augment else eval_augment(d.dataset, d.image_size)
    ev = eval_augment(d.dataset, d.image_size)
    train_loader = BatchLoader(train, d.batch_size // dist.world_size, augment=aug, shuffle=True,
                               seed=recipe.seed, drop_last=True, rank=dist.rank,
                               world_size=dist.world_size, channels_last=cl, prefetch=False)
    # augmentation costs ~0.5 s per CIFAR epoch; a prefetch thread would compete with the
    # training step's threads on a small CPU and cost more than it hides
    test_loader = BatchLoader(test, d.eval_batch_size, augment=ev, channels_last=cl, prefetch=False)
    calib_loader = BatchLoader(train, d.batch_size, augment=ev, shuffle=True, seed=recipe.seed + 1,
                               channels_last=cl, prefetch=False)
    input_size = d.image_size or train.images.shape[-1]
    return Data(train, test, train_loader, test_loader, calib_loader, input_size)


def build_float_model(recipe: Recipe, data: Data, allow_import: bool = False) -> nn.Module:
    """The recipe's model (registry, or ``model.factory`` when ``allow_import``), with
    ``model.init`` weights when given."""
    m = recipe.model
    if m.factory is not None:
        model = build_from_factory(m.factory, m.args, allow_import)
    else:
        check_model_fits_data(m, data, recipe.data.dataset)
        model = create_model(m.name, num_classes=m.num_classes or data.train.num_classes,
                             in_channels=m.in_channels or data.train.images.shape[1],
                             input_size=m.input_size or data.input_size, **m.kwargs)
    if m.scalar_layer is not None:
        add_scalar_layer(model, m.scalar_layer)
    if m.init:
        load_float_weights(model, m.init)
    if m.fold_bn:  # before prepare: the quantized layers then see the deployed weights
        fold_batchnorm(model, example_input(data), inplace=True)
    return model


def check_model_fits_data(m, data: Data, dataset: str) -> None:
    """Refuse model sizes that cannot train on the dataset (before any forward pass fails)."""
    classes, channels = data.train.num_classes, data.train.images.shape[1]
    if m.num_classes is not None and m.num_classes < classes:
        raise ConfigError(f"model.num_classes is {m.num_classes} but {dataset} has {classes} "
                          f"classes (labels 0..{classes - 1}); remove model.num_classes to take the "
                          f"dataset's, or set it to {classes}")
    if m.in_channels is not None and m.in_channels != channels:
        raise ConfigError(f"model.in_channels is {m.in_channels} but {dataset} images have "
                          f"{channels} channel(s); remove model.in_channels to take the dataset's")
    if m.input_size is not None and m.input_size != data.input_size:
        raise ConfigError(f"model.input_size is {m.input_size} but the {dataset} images are "
                          f"{data.input_size}x{data.input_size} (data.image_size); remove "
                          "model.input_size, or set data.image_size")


def build_methods(recipe: Recipe) -> List[Method]:
    return [METHODS.get(mc.name).from_args(mc.args) for mc in recipe.methods]


def quantize_model(recipe: Recipe, float_model: nn.Module, example=None) -> nn.Module:
    """A prepared copy of the float model (or the model itself for float recipes)."""
    if recipe.quant is None:
        return float_model
    return prepare(copy.deepcopy(float_model), recipe.quant, example_input=example)


def example_input(data: Data) -> torch.Tensor:
    c = data.train.images.shape[1]
    return torch.zeros(1, c, data.input_size, data.input_size)
