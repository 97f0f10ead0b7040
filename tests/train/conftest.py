"""Fixtures for training tests: tiny MNIST recipes that run in seconds on 2 CPU cores."""

from pathlib import Path

import pytest

from train_helpers import tiny_recipe, write_recipe


@pytest.fixture
def recipe_file(tmp_path):
    return write_recipe(tmp_path / "tiny.yaml", tiny_recipe())


@pytest.fixture(scope="module")
def quick_recipe(tmp_path_factory):
    """One quantized phase on 500 MNIST images: a run in about a second."""
    spec = tiny_recipe(quant=True, epochs=(1, 0), limit=500)
    spec["data"]["test_limit"] = 200
    return write_recipe(tmp_path_factory.mktemp("recipe") / "quick.yaml", spec)


@pytest.fixture(scope="module")
def quick_run(quick_recipe, tmp_path_factory):
    """A finished run of ``quick_recipe`` (copy it before changing it)."""
    from lowbit.cli import main

    out = tmp_path_factory.mktemp("runs") / "run"
    assert main(["train", str(quick_recipe), "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    return out


@pytest.fixture
def unwritable(tmp_path):
    """A folder this process cannot create files in (root ignores permission bits: then /sys)."""
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    try:
        (folder / "probe").write_text("")
    except OSError:
        yield folder
        folder.chmod(0o700)
        return
    folder.chmod(0o700)
    try:
        Path("/sys/lowbit-probe").mkdir()
    except OSError:
        yield Path("/sys")
        return
    Path("/sys/lowbit-probe").rmdir()
    pytest.skip("no unwritable location available to this user")
