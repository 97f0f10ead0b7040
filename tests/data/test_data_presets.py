"""Standard train/eval augmentation presets."""

import pytest
import torch

from lowbit.data import Augment, apply_augment, eval_augment, train_augment
from lowbit.data.presets import stored_size
from lowbit.errors import ConfigError


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_mnist_like_is_normalise_only(name):
    assert not train_augment(name).is_random and not eval_augment(name).is_random
    assert train_augment(name).mean == eval_augment(name).mean and len(train_augment(name).std) == 1


def test_cifar_presets():
    train, ev = train_augment("cifar10"), eval_augment("cifar10")
    assert (train.crop_padding, train.flip, train.random_resized_crop) == (4, True, None)
    assert ev == Augment(mean=train.mean, std=train.std)
    assert train.mean == (0.4914, 0.4822, 0.4465)


def test_imagenette_presets_default_and_custom():
    train, ev = train_augment("imagenette"), eval_augment("imagenette")
    assert (train.random_resized_crop, train.flip, ev.center_crop) == (128, True, 128)
    assert train_augment("imagenette", 224).random_resized_crop == 224
    assert eval_augment("imagenette", 224).center_crop == 224
    x = torch.randint(0, 256, (4, 3, stored_size("imagenette"), 160), dtype=torch.uint8)
    gen = torch.Generator().manual_seed(0)
    assert apply_augment(x, train, gen).shape == apply_augment(x, ev).shape == (4, 3, 128, 128)


def test_stored_size():
    assert stored_size("imagenette") == stored_size("imagenette", 128) == 160
    assert stored_size("imagenette", 224) == 256 and stored_size("imagenette", 64) == 73
    assert stored_size("mnist") == 28 and stored_size("cifar10", 32) == 32


def test_bad_preset_arguments():
    with pytest.raises(ConfigError, match="32 px"):
        train_augment("cifar10", 64)
    with pytest.raises(ConfigError, match="positive int"):
        eval_augment("imagenette", 0)
    with pytest.raises(ConfigError, match="did you mean 'cifar10'"):
        train_augment("cifar")
