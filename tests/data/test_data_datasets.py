"""Registry, load_split argument checks and ImageSet validation."""

import pytest
import torch

from lowbit.data import DATASETS, ImageSet, list_datasets, load_split
from lowbit.errors import ConfigError, DataError


def test_registry_names():
    assert list_datasets() == ["cifar10", "fashion_mnist", "imagenette", "mnist"]
    assert DATASETS.get("imagenette").default_size == 160
    with pytest.raises(ConfigError, match="did you mean 'mnist'"):
        load_split("mnsit", "train")


@pytest.mark.parametrize("kwargs,match", [
    (dict(split="val"), "'val' folder is split 'test'"),
    (dict(split="validation"), "valid: train, test"),
    (dict(limit=0), "limit"),
    (dict(limit=True), "limit"),
    (dict(image_size=32), "28 px"),
    (dict(image_size=-3), "positive int"),
])
def test_bad_load_split_arguments(tmp_path, kwargs, match):
    args = dict(name="mnist", split="train", data_dir=tmp_path)
    args.update(kwargs)
    with pytest.raises(ConfigError, match=match):
        load_split(**args)


def test_imageset_validation():
    img = torch.zeros(2, 1, 3, 3, dtype=torch.uint8)
    ok = ImageSet(img, torch.tensor([0, 1], dtype=torch.int32), ["a", "b"], "t", [0.5], [0.2])
    assert ok.labels.dtype == torch.int64 and ok.mean == (0.5,) and ok.num_classes == 2
    with pytest.raises(DataError, match="uint8"):
        ImageSet(img.float(), torch.tensor([0, 1]), ["a", "b"], "t", (0.5,), (0.2,))
    with pytest.raises(DataError, match="2 images but 3 labels"):
        ImageSet(img, torch.tensor([0, 1, 1]), ["a", "b"], "t", (0.5,), (0.2,))
    with pytest.raises(DataError, match="labels outside"):
        ImageSet(img, torch.tensor([0, 2]), ["a", "b"], "t", (0.5,), (0.2,))
    with pytest.raises(DataError, match="one value per channel"):
        ImageSet(img, torch.tensor([0, 1]), ["a", "b"], "t", (0.5, 0.5), (0.2, 0.2))


def test_imageset_makes_contiguous():
    img = torch.zeros(2, 3, 4, 4, dtype=torch.uint8).permute(0, 1, 3, 2)
    made = ImageSet(img, torch.tensor([0, 0]), ["a"], "t", (0,) * 3, (1,) * 3)
    assert made.images.is_contiguous() and not img.is_contiguous()


def test_public_api():
    import lowbit.data as data

    assert set(data.__all__) == {
        "resolve_data_dir", "DATASETS", "list_datasets", "load_split", "ImageSet", "Augment",
        "apply_augment", "train_augment", "eval_augment", "BatchLoader"}
    assert all(hasattr(data, name) for name in data.__all__)
