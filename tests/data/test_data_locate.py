"""Data/cache directory resolution and the missing-dataset message."""

from pathlib import Path

import pytest

from lowbit.data import locate
from lowbit.data.locate import (missing_dataset, resolve_cache_dir, resolve_data_dir,
                                default_data_candidates)
from lowbit.errors import DataError


def test_explicit_dir_wins_over_env(tmp_path, monkeypatch):
    other = tmp_path / "env"
    other.mkdir()
    monkeypatch.setenv("LOWBIT_DATA", str(other))
    assert resolve_data_dir(tmp_path) == tmp_path


def test_explicit_missing_dir_is_an_error(tmp_path):
    with pytest.raises(DataError, match="--data-dir"):
        resolve_data_dir(tmp_path / "nope")


def test_env_used_then_missing_env_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("LOWBIT_DATA", str(tmp_path))
    assert resolve_data_dir() == tmp_path
    monkeypatch.setenv("LOWBIT_DATA", str(tmp_path / "gone"))
    with pytest.raises(DataError, match="LOWBIT_DATA"):
        resolve_data_dir()


def test_default_candidates_beside_repo_and_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    repo = Path(locate.__file__).resolve().parents[3]
    cands = default_data_candidates()
    assert cands[0] == repo.parent / "shared" / "data"
    assert tmp_path.parent / "shared" / "data" in cands


def test_cwd_fallback_and_nothing_found(tmp_path, monkeypatch):
    monkeypatch.delenv("LOWBIT_DATA", raising=False)
    work = tmp_path / "repo"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(locate, "REPO_ROOT", tmp_path / "elsewhere" / "repo")
    with pytest.raises(DataError) as err:
        resolve_data_dir()
    assert "--data-dir" in str(err.value) and "LOWBIT_DATA" in str(err.value)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    assert resolve_data_dir() == tmp_path / "shared" / "data"


def test_cache_dir_order(tmp_path, monkeypatch):
    monkeypatch.setenv("LOWBIT_CACHE", str(tmp_path / "c"))
    assert resolve_cache_dir() == tmp_path / "c"
    assert resolve_cache_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("LOWBIT_CACHE")
    assert resolve_cache_dir() == Path.home() / ".cache" / "lowbit"


def test_missing_dataset_message_lists_places_and_layout():
    msg = str(missing_dataset("mnist", [Path("/a/mnist"), Path("/a/MNIST/raw")], "x-idx3-ubyte"))
    assert "'mnist'" in msg and "/a/mnist" in msg and "/a/MNIST/raw" in msg
    assert "x-idx3-ubyte" in msg and "LOWBIT_DATA" in msg
