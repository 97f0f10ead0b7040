"""Augment validation and apply_augment invariants."""

import pytest
import torch

from lowbit.data import Augment, apply_augment
from lowbit.errors import ConfigError, DataError


def _batch(b=8, c=3, h=32, w=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, c, h, w), dtype=torch.uint8, generator=gen)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kwargs,match", [
    (dict(crop_padding=-1), "crop_padding"),
    (dict(crop_padding=1.5), "crop_padding"),
    (dict(flip="yes"), "flip"),
    (dict(random_resized_crop=0), "random_resized_crop"),
    (dict(center_crop=True), "center_crop"),
    (dict(random_resized_crop=8, crop_padding=2), "not both"),
    (dict(rrc_scale=(0.5, 0.2)), "rrc_scale"),
    (dict(rrc_scale=(0.0, 1.0)), "rrc_scale"),
    (dict(rrc_ratio=(2.0,)), "rrc_ratio"),
    (dict(mean=(0.5, 0.5), std=(1.0,)), "same non-zero length"),
    (dict(std=(0.0,)), "std"),
    (dict(mean=(float("nan"),)), "finite"),
])
def test_invalid_augment_is_a_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Augment(**kwargs)


def test_lists_become_tuples_and_is_frozen():
    aug = Augment(mean=[0.5, 0.5, 0.5], std=[0.2, 0.2, 0.2], rrc_scale=[0.5, 1])
    assert aug.mean == (0.5, 0.5, 0.5) and aug.rrc_scale == (0.5, 1.0)
    assert hash(aug) == hash(Augment(mean=(0.5,) * 3, std=(0.2,) * 3, rrc_scale=(0.5, 1.0)))
    with pytest.raises(AttributeError):
        aug.flip = True  # type: ignore[misc]


def test_normalise_only_matches_formula():
    x = _batch(c=3)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.125)
    out = apply_augment(x, Augment(mean=mean, std=std))
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    want = (x.double() / 255 - m) / s
    assert out.dtype == torch.float32 and out.is_contiguous()
    assert torch.allclose(out.double(), want, atol=1e-5)
    assert not Augment(mean=mean, std=std).is_random


@pytest.mark.parametrize("aug,shape", [
    (Augment(crop_padding=4, flip=True), (8, 3, 32, 32)),
    (Augment(random_resized_crop=20, flip=True), (8, 3, 20, 20)),
    (Augment(center_crop=24), (8, 3, 24, 24)),
    (Augment(center_crop=24, crop_padding=2), (8, 3, 24, 24)),
])
def test_output_shapes(aug, shape):
    assert apply_augment(_batch(), aug, _gen(0)).shape == shape


@pytest.mark.parametrize("aug", [Augment(crop_padding=4, flip=True),
                                 Augment(random_resized_crop=16, flip=True)])
def test_deterministic_for_same_generator_state(aug):
    x = _batch()
    first = apply_augment(x, aug, _gen(7))
    assert torch.equal(first, apply_augment(x, aug, _gen(7)))
    assert not torch.equal(first, apply_augment(x, aug, _gen(8)))


def test_flip_only_flips_a_subset_exactly():
    x = _batch(b=32)
    out = apply_augment(x, Augment(flip=True), _gen(0))
    plain = apply_augment(x, Augment())
    flipped = [torch.equal(out[i], plain[i].flip(-1)) for i in range(32)]
    same = [torch.equal(out[i], plain[i]) for i in range(32)]
    assert all(f or s for f, s in zip(flipped, same)) and 0 < sum(flipped) < 32


def test_full_scale_rrc_without_aspect_change_is_identity():
    x = _batch(h=16, w=16)
    aug = Augment(random_resized_crop=16, rrc_scale=(1.0, 1.0), rrc_ratio=(1.0, 1.0))
    assert torch.allclose(apply_augment(x, aug, _gen(0)), apply_augment(x, Augment()), atol=1e-4)


def test_bad_inputs():
    with pytest.raises(DataError, match="uint8"):
        apply_augment(_batch().float(), Augment())
    with pytest.raises(DataError, match="channels"):
        apply_augment(_batch(c=3), Augment(mean=(0.5, 0.5), std=(1.0, 1.0)))
