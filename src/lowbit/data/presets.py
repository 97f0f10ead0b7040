"""Standard train/eval augmentation per dataset.

========================  =======================================  ==========================
dataset                   train                                    eval
========================  =======================================  ==========================
mnist, fashion_mnist      normalise                                normalise
cifar10                   pad 4 + random 32x32 crop + flip         normalise
imagenette                random resized crop to ``image_size``    center crop ``image_size``
                          (default 128) + flip                     (default 128)
========================  =======================================  ==========================

Imagenette is stored at :func:`stored_size` px (160 for the default 128 px training size,
else ``round(image_size / 0.875)``), and both pipelines crop from that.
"""

from __future__ import annotations

from typing import Optional

from ..errors import ConfigError
from .augment import Augment
from .datasets import DATASETS, DatasetInfo

IMAGENETTE_TRAIN_SIZE = 128
EVAL_CROP_RATIO = 0.875


def _info(dataset_name: str, image_size: Optional[int]) -> DatasetInfo:
    info: DatasetInfo = DATASETS.get(dataset_name)
    if info.fixed_size and image_size not in (None, info.default_size):
        raise ConfigError(f"{dataset_name} images are {info.default_size} px; image_size="
                          f"{image_size!r} is not supported (leave it unset)")
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int)
                                   or image_size < 1):
        raise ConfigError(f"image_size must be a positive int, got {image_size!r}")
    return info


def stored_size(dataset_name: str, image_size: Optional[int] = None) -> int:
    """The size to pass as ``load_split(image_size=...)`` for training at ``image_size``.

    >>> stored_size("imagenette"), stored_size("imagenette", 224), stored_size("cifar10")
    (160, 256, 32)
    """
    info = _info(dataset_name, image_size)
    if info.fixed_size:
        return info.default_size
    if image_size in (None, IMAGENETTE_TRAIN_SIZE):
        return info.default_size
    return round(image_size / EVAL_CROP_RATIO)


def train_augment(dataset_name: str, image_size: Optional[int] = None) -> Augment:
    """The standard training augmentation of ``dataset_name`` (see the module table).

    >>> train_augment("cifar10").crop_padding, train_augment("imagenette").random_resized_crop
    (4, 128)
    """
    info = _info(dataset_name, image_size)
    stats = dict(mean=info.mean, std=info.std)
    if dataset_name == "cifar10":
        return Augment(crop_padding=4, flip=True, **stats)
    if not info.fixed_size:
        return Augment(random_resized_crop=image_size or IMAGENETTE_TRAIN_SIZE, flip=True, **stats)
    return Augment(**stats)


def eval_augment(dataset_name: str, image_size: Optional[int] = None) -> Augment:
    """The standard evaluation transform of ``dataset_name`` (deterministic).

    >>> eval_augment("imagenette", 128).center_crop, eval_augment("mnist").mean
    (128, (0.1307,))
    """
    info = _info(dataset_name, image_size)
    stats = dict(mean=info.mean, std=info.std)
    if not info.fixed_size:
        return Augment(center_crop=image_size or IMAGENETTE_TRAIN_SIZE, **stats)
    return Augment(**stats)
