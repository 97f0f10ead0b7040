"""IDX reading: hand-made files, gzip, limits and every kind of damage."""

import gzip

import numpy as np
import torch
import pytest

from lowbit.data import load_split
from lowbit.data.idx import idx_names, load_idx_pair, read_idx
from lowbit.errors import DataError


@pytest.mark.parametrize("gz", [False, True])
def test_tiny_idx_roundtrip(tmp_path, make, gz):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = make.write_idx(tmp_path / ("x.idx3" + (".gz" if gz else "")), arr, gz)
    out = read_idx(path, 3)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4) and np.array_equal(out, arr)
    assert out.flags.writeable
    assert np.array_equal(read_idx(path, 3, limit=1), arr[:1])
    assert len(read_idx(path, 3, limit=99)) == 2


def test_bad_magic_names_the_file(tmp_path, make):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(make.idx_bytes(np.zeros(4, np.uint8), magic_type=0x0D))
    with pytest.raises(DataError, match="bad-idx1-ubyte"):
        read_idx(path, 1)
    with pytest.raises(DataError, match="bad magic"):
        read_idx(path, 1)


def test_wrong_ndim_and_empty_file(tmp_path, make):
    path = make.write_idx(tmp_path / "labels", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="3-d"):
        read_idx(path, 3)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        read_idx(empty, 1)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_data_is_an_error(tmp_path, make, gz):
    raw = make.idx_bytes(np.zeros((10, 28, 28), np.uint8))[:-100]
    path = tmp_path / ("cut-images-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(DataError, match="cut-images-idx3-ubyte.*truncated"):
        read_idx(path, 3)
    assert read_idx(path, 3, limit=9).shape == (9, 28, 28)  # the intact prefix still reads


def test_truncated_gzip_stream_and_trailing_bytes(tmp_path, make):
    comp = gzip.compress(make.idx_bytes(np.ones((50, 28, 28), np.uint8)))
    cut = tmp_path / "cut.gz"
    cut.write_bytes(comp[: len(comp) // 2])
    with pytest.raises(DataError, match="cut.gz"):
        read_idx(cut, 3)
    longer = tmp_path / "longer"
    longer.write_bytes(make.idx_bytes(np.ones(5, np.uint8)) + b"\0")
    with pytest.raises(DataError, match="longer than its header"):
        read_idx(longer, 1)


def test_not_gzip_with_gz_suffix(tmp_path, make):
    path = tmp_path / "plain.gz"
    path.write_bytes(make.idx_bytes(np.ones(5, np.uint8)))
    with pytest.raises(DataError, match="plain.gz"):
        read_idx(path, 1)


def test_pair_count_mismatch(tmp_path, make):
    images = make.write_idx(tmp_path / "i", np.zeros((3, 2, 2), np.uint8))
    labels = make.write_idx(tmp_path / "l", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="3 images but .* 4 labels"):
        load_idx_pair(images, labels)


def test_file_name_variants():
    names = idx_names("train")
    assert names[:2] == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert "train-images.idx3-ubyte" in names and "train-images-idx3-ubyte" in names


@pytest.mark.parametrize("sub,gz", [("mnist", True), ("MNIST/raw", False)])
def test_load_split_reads_handmade_layouts(tmp_path, make, sub, gz):
    images, labels = make.mnist_dir(tmp_path, sub=sub, gz=gz)
    train = load_split("mnist", "train", data_dir=tmp_path)
    assert train.images.shape == (len(images), 1, 28, 28) and train.images.dtype == torch.uint8
    assert np.array_equal(train.images[:, 0].numpy(), images)
    assert np.array_equal(train.labels.numpy(), labels.astype(np.int64))
    assert len(load_split("mnist", "test", data_dir=tmp_path)) == len(images) // 2


def test_fashion_torchvision_layout(tmp_path, make):
    make.mnist_dir(tmp_path, sub="FashionMNIST/raw")
    data = load_split("fashion_mnist", "train", data_dir=tmp_path, limit=3)
    assert len(data) == 3 and data.classes[0] == "T-shirt/top"
