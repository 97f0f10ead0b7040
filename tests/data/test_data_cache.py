"""The decoded-split cache: round trip, corruption, fingerprints, atomic writes."""

import os
import warnings

import numpy as np
import pytest

from lowbit.data import cache as C
from lowbit.data import load_split


def _arrays(n=3):
    images = np.arange(n * 3 * 4 * 4, dtype=np.uint8).reshape(n, 3, 4, 4)
    return images, np.arange(n, dtype=np.int64), ["a", "b", "c"]


def test_round_trip_builds_once(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return _arrays()

    path = tmp_path / "sub" / "x.npz"
    first = C.cached(path, build)
    second = C.cached(path, build)
    assert len(calls) == 1 and path.is_file()
    for a, b in zip(first[:2], second[:2]):
        assert np.array_equal(a, b)
    assert second[2] == ["a", "b", "c"] and second[1].dtype == np.int64
    assert [p.name for p in path.parent.iterdir()] == ["x.npz"]  # no temp files left


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_arrays"])
def test_corrupt_cache_is_rebuilt_with_warning(tmp_path, damage):
    path = tmp_path / "x.npz"
    C.save_arrays(path, _arrays())
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "garbage":
        path.write_bytes(b"not a zip")
    else:
        np.savez(path, images=np.zeros(3), labels=np.zeros(3), classes=np.array(["a"]))
    with pytest.warns(RuntimeWarning, match="corrupt cache"):
        out = C.cached(path, _arrays)
    assert np.array_equal(out[0], _arrays()[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        C.load_arrays(path)  # rewritten intact


def test_unwritable_cache_only_warns(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.warns(RuntimeWarning, match="cannot write cache"):
        out = C.cached(blocker / "x.npz", _arrays)
    assert len(out[0]) == 3


def test_fingerprint_tracks_size_and_mtime(tmp_path):
    f = tmp_path / "a.jpg"
    f.write_bytes(b"12")
    fp = C.fingerprint([f])
    os.utime(f, ns=(1, 1))
    assert C.fingerprint([f]) != fp
    assert C.fingerprint([f], "x") != C.fingerprint([f], "y")


def test_cache_key_names(tmp_path):
    path = C.cache_path(tmp_path, "imagenette", "test", 160, 8, "f")
    assert path.name == "imagenette-test-160px-first8-f.npz" and path.parent == tmp_path
    assert C.cache_path(tmp_path, "cifar10", "train", 32, None, "f").name.endswith("-all-f.npz")


def test_load_split_uses_cache(shared_data, cache_dir, monkeypatch):
    first = load_split("cifar10", "test", data_dir=shared_data, limit=64, cache_dir=cache_dir)
    files = list(cache_dir.iterdir())
    assert len(files) == 1 and "cifar10-test-32px-first64" in files[0].name

    def fail(*args, **kwargs):
        raise AssertionError("decoded again instead of reading the cache")

    from lowbit.data import cifar

    original = cifar.decode_parallel
    monkeypatch.setattr(cifar, "decode_parallel", fail)
    again = load_split("cifar10", "test", data_dir=shared_data, limit=64, cache_dir=cache_dir)
    assert np.array_equal(first.images.numpy(), again.images.numpy())
    files[0].write_bytes(b"broken")
    monkeypatch.setattr(cifar, "decode_parallel", original)
    with pytest.warns(RuntimeWarning, match="corrupt cache"):
        rebuilt = load_split("cifar10", "test", data_dir=shared_data, limit=64, cache_dir=cache_dir)
    assert np.array_equal(first.images.numpy(), rebuilt.images.numpy())
