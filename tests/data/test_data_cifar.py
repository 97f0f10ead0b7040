"""CIFAR-10: official python batches (hand-made here) and the real JPEG copy."""

import pickle
import shutil
import warnings
import zipfile

import numpy as np
import pytest
import torch

from lowbit.data import load_split
from lowbit.data.cifar import OFFICIAL_NPZ
from lowbit.errors import ConfigError, DataError

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image PSNR in dB of (N, ...) uint8 arrays."""
    err = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(1)
    return 10 * np.log10(255.0 ** 2 / np.maximum(err, 1e-12))


def test_python_batches_load_in_order(tmp_path, make):
    made = make.cifar_py_dir(tmp_path, n=6, meta=[n.encode() for n in NAMES])
    train = load_split("cifar10", "train", data_dir=tmp_path, cache_dir=tmp_path / "c")
    want = np.concatenate([made[f"data_batch_{k}"][0] for k in range(1, 6)])
    assert train.images.shape == (30, 3, 32, 32)
    assert np.array_equal(train.images.numpy(), want.reshape(30, 3, 32, 32))
    assert train.labels.tolist() == sum((made[f"data_batch_{k}"][1] for k in range(1, 6)), [])
    assert train.classes == NAMES and not (tmp_path / "c").exists()  # no cache for pickles
    test = load_split("cifar10", "test", data_dir=tmp_path)
    assert test.labels.tolist() == made["test_batch"][1]


def test_limit_does_not_open_later_batches(tmp_path, make):
    make.cifar_py_dir(tmp_path, n=6, protocol=5)
    (tmp_path / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"garbage")
    assert len(load_split("cifar10", "train", data_dir=tmp_path, limit=6)) == 6
    with pytest.raises(DataError, match="data_batch_2"):
        load_split("cifar10", "train", data_dir=tmp_path, limit=7)


def test_forbidden_global_in_batch_is_refused(tmp_path, make):
    make.cifar_py_dir(tmp_path, n=2)
    evil = pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [print]}, protocol=2)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(evil)
    with pytest.raises(DataError, match=r"unpickle global (__builtin__|builtins)\.print"):
        load_split("cifar10", "test", data_dir=tmp_path)


def test_incomplete_or_malformed_python_batches(tmp_path, make):
    make.cifar_py_dir(tmp_path, n=2)
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DataError, match="missing data_batch_4"):
        load_split("cifar10", "train", data_dir=tmp_path)
    bad = pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, protocol=2)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(bad)
    with pytest.raises(DataError, match=r"\(n, 3072\)"):
        load_split("cifar10", "test", data_dir=tmp_path)


def test_missing_cifar_lists_layouts(tmp_path):
    with pytest.raises(DataError) as err:
        load_split("cifar10", "train", data_dir=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "cifar-10-batches-py") in msg and "cifar10_jpeg.zip" in msg
    assert "data_batch_1..5" in msg


@pytest.mark.parametrize("split,key", [("test", "test"), ("train", "train")])
def test_jpeg_zip_in_official_order(shared_data, cache_dir, split, key):
    data = load_split("cifar10", split, data_dir=shared_data, limit=1017, cache_dir=cache_dir)
    meta = np.load(shared_data / OFFICIAL_NPZ)
    assert data.images.shape == (1017, 3, 32, 32) and data.classes == NAMES
    assert np.array_equal(data.labels.numpy(), meta[f"{key}_labels"][:1017])
    exact = meta["test_data_prefix"] if split == "test" else meta["train_data_prefix"][0]
    psnr = _psnr(data.images.reshape(1017, -1).numpy(), exact)
    assert psnr.min() > 20  # right image under JPEG loss (a wrong image scores ~10 dB)


@pytest.mark.slow
def test_full_train_split_matches_every_official_batch(shared_data, cache_dir):
    data = load_split("cifar10", "train", data_dir=shared_data, cache_dir=cache_dir)
    meta = np.load(shared_data / OFFICIAL_NPZ)
    assert np.array_equal(data.labels.numpy(), meta["train_labels"])
    flat = data.images.reshape(5, 10000, -1)[:, :1017].numpy()
    assert _psnr(flat.reshape(-1, 3072), meta["train_data_prefix"].reshape(-1, 3072)).min() > 20


def _extract_tree(shared_data, root, per_class=3):
    """Extract the first images of every test class into ``root/cifar10-jpeg/test/``."""
    with zipfile.ZipFile(shared_data / "cifar10-jpeg" / "cifar10_jpeg.zip") as archive:
        for name in NAMES:
            for k in range(per_class):
                archive.extract(f"test/{name}/{k:04d}.jpg", root / "cifar10-jpeg")


def test_extracted_tree_in_folder_order(shared_data, tmp_path, cache_dir):
    _extract_tree(shared_data, tmp_path)
    data = load_split("cifar10", "test", data_dir=tmp_path, cache_dir=cache_dir)
    assert data.labels.tolist() == [c for c in range(10) for _ in range(3)]
    zipped = load_split("cifar10", "test", data_dir=shared_data, limit=200, cache_dir=cache_dir)
    first_cat = int(torch.nonzero(zipped.labels == 3)[0])  # test/cat/0000.jpg
    assert torch.equal(data.images[9], zipped.images[first_cat])


def test_npz_that_does_not_match_falls_back_with_warning(shared_data, tmp_path, cache_dir):
    _extract_tree(shared_data, tmp_path, per_class=2)
    (tmp_path / OFFICIAL_NPZ).parent.mkdir(parents=True)
    shutil.copy(shared_data / OFFICIAL_NPZ, tmp_path / OFFICIAL_NPZ)
    with pytest.warns(RuntimeWarning, match="class-folder order"):
        data = load_split("cifar10", "test", data_dir=tmp_path, cache_dir=cache_dir)
    assert data.labels.tolist() == [c for c in range(10) for _ in range(2)]


def test_zip_without_npz_warns_about_limit(shared_data, tmp_path, cache_dir):
    (tmp_path / "cifar10-jpeg").mkdir()
    (tmp_path / "cifar10-jpeg" / "cifar10_jpeg.zip").symlink_to(
        shared_data / "cifar10-jpeg" / "cifar10_jpeg.zip")
    with pytest.warns(RuntimeWarning, match="class by.*class"):
        data = load_split("cifar10", "test", data_dir=tmp_path, limit=5, cache_dir=cache_dir)
    assert data.labels.tolist() == [0] * 5


def test_image_size_other_than_32_is_refused(shared_data, cache_dir):
    with pytest.raises(ConfigError, match="32 px"):
        load_split("cifar10", "test", data_dir=shared_data, image_size=64, limit=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_split("cifar10", "test", data_dir=shared_data, image_size=32, limit=2,
                   cache_dir=cache_dir)


def test_unreadable_npz_falls_back_with_warning(shared_data, tmp_path, cache_dir):
    _extract_tree(shared_data, tmp_path, per_class=1)
    (tmp_path / OFFICIAL_NPZ).parent.mkdir(parents=True)
    np.savez(tmp_path / OFFICIAL_NPZ, something_else=np.zeros(3))
    with pytest.warns(RuntimeWarning, match="class-folder order"):
        data = load_split("cifar10", "test", data_dir=tmp_path, cache_dir=cache_dir)
    assert data.labels.tolist() == list(range(10))
