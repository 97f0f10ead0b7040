"""The real MNIST / Fashion-MNIST files."""

import numpy as np
import pytest
import torch

from lowbit.data import load_split
from lowbit.errors import DataError

OFFICIAL_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_test_split_exact(shared_data):
    test = load_split("mnist", "test", data_dir=shared_data)
    assert test.images.shape == (10000, 1, 28, 28) and test.images.dtype == torch.uint8
    assert test.labels.shape == (10000,) and test.labels.dtype == torch.int64
    assert test.images.is_contiguous() and test.num_classes == 10
    assert torch.bincount(test.labels, minlength=10).tolist() == OFFICIAL_TEST_COUNTS
    assert test.labels[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first test digits
    first = load_split("mnist", "test", data_dir=shared_data, limit=100)
    assert torch.equal(first.images, test.images[:100])
    assert torch.equal(first.labels, test.labels[:100])


def test_mnist_train_shape_and_stats(shared_data):
    train = load_split("mnist", "train", data_dir=shared_data, limit=20000)
    assert train.images.shape == (20000, 1, 28, 28)
    x = train.images.double() / 255
    assert abs(x.mean().item() - train.mean[0]) < 0.005
    assert abs(x.std().item() - train.std[0]) < 0.005


def test_fashion_mnist(shared_data):
    test = load_split("fashion_mnist", "test", data_dir=shared_data)
    assert test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    assert test.classes[9] == "Ankle boot"


def test_missing_mnist_lists_searched_dirs(tmp_path):
    with pytest.raises(DataError) as err:
        load_split("mnist", "train", data_dir=tmp_path)
    msg = str(err.value)
    assert "'mnist' not found" in msg
    assert str(tmp_path / "mnist") in msg and str(tmp_path / "MNIST" / "raw") in msg
    assert "train-images-idx3-ubyte" in msg
