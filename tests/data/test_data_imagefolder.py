"""Image-folder datasets: real Imagenette and hand-made trees."""

import numpy as np
import pytest
import torch
from PIL import Image

from lowbit.data import load_split
from lowbit.errors import DataError

WNIDS = ["n01440764", "n02102040", "n02979186", "n03000684", "n03028079",
         "n03394916", "n03417042", "n03425413", "n03445777", "n03888257"]


def test_real_imagenette_val_prefix(shared_data, cache_dir):
    val = load_split("imagenette", "test", data_dir=shared_data, image_size=64, limit=12,
                     cache_dir=cache_dir)
    assert val.images.shape == (12, 3, 64, 64) and val.images.dtype == torch.uint8
    assert val.classes == WNIDS and val.labels.tolist() == [0] * 12 and val.split == "test"
    assert val.images.float().std() > 10  # real pixels, not blank
    assert len(list(cache_dir.glob("imagenette-test-64px-first12-*.npz"))) == 1


def test_default_stored_size_is_160(shared_data, cache_dir):
    train = load_split("imagenette", "train", data_dir=shared_data, limit=2, cache_dir=cache_dir)
    assert train.images.shape == (2, 3, 160, 160)


def _tree(root, folder="imagenette2-320"):
    for split in ("train", "val"):
        for k, cls in enumerate(["n2", "n1"]):
            d = root / folder / split / cls
            d.mkdir(parents=True)
            Image.new("L", (30, 20), 40 * k + 10).save(d / "a.JPEG")  # greyscale, landscape
            Image.new("RGB", (20, 50), (200, 0, 0)).save(d / "b.jpeg")  # RGB, portrait


def test_handmade_tree_any_folder_name(tmp_path, cache_dir):
    _tree(tmp_path)
    val = load_split("imagenette", "test", data_dir=tmp_path, image_size=16, cache_dir=cache_dir)
    assert val.classes == ["n1", "n2"] and val.labels.tolist() == [0, 0, 1, 1]
    assert val.images.shape == (4, 3, 16, 16)
    grey = val.images[0].numpy().astype(int)  # n1/a.JPEG, value 50 in all three channels
    assert np.abs(grey - 50).max() <= 3
    assert val.images[1, 0].float().mean() > 180 and val.images[1, 1].float().mean() < 30


def test_missing_imagenette_lists_searched(tmp_path):
    with pytest.raises(DataError) as err:
        load_split("imagenette", "train", data_dir=tmp_path)
    msg = str(err.value)
    for name in ("imagenette2-160", "imagenette2-320", "imagenette2"):
        assert str(tmp_path / name / "train") in msg
    assert "<wnid>/*.JPEG" in msg


def test_empty_split_folder(tmp_path):
    (tmp_path / "imagenette2-160" / "val" / "n1").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found"):
        load_split("imagenette", "test", data_dir=tmp_path)
