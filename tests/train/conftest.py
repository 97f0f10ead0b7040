"""Fixtures for training tests: tiny MNIST recipes that run in seconds on 2 CPU cores."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def tiny_recipe(quant: bool = True, epochs=(1, 1), limit: int = 3000):
    """An MLP on the first ``limit`` MNIST images: a float-weights phase then W4A4 LSQ."""
    recipe = {
        "name": "tiny", "seed": 3,
        "model": {"name": "mlp", "kwargs": {"hidden": 64}},
        "data": {"dataset": "mnist", "batch_size": 100, "train_limit": limit, "test_limit": 1000,
                 "calib_batches": 2},
        "optim": {"name": "sgd", "lr": 0.05},
        "phases": [{"name": "a", "epochs": epochs[0]}],
        "log_every": 1000,
    }
    if quant:
        recipe["quant"] = {"weight": {"kind": "lsq", "bits": 4, "granularity": "channel"},
                           "act": {"kind": "lsq", "bits": 4}}
        recipe["phases"] = [{"name": "weights", "epochs": epochs[0], "quantize_acts": False},
                            {"name": "both", "epochs": epochs[1], "quantize_acts": True, "lr": 0.02}]
    return recipe


def write_recipe(path: Path, recipe) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(recipe))
    return path


def run_cli(*args, env=None, timeout=300):
    """Run ``python -m lowbit ARGS`` and return the CompletedProcess."""
    full_env = {**os.environ, "LOWBIT_COMPILE": "0", **(env or {})}
    return subprocess.run([sys.executable, "-m", "lowbit", *map(str, args)], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=REPO)


# `lowbit train` in a process that SIGKILLs itself right after the checkpoint of an epoch
KILLED_AFTER = """
import os, signal, sys
from lowbit.cli import main
from lowbit.train.loop import Trainer

epoch, save = int(sys.argv[1]), Trainer.save

def save_then_die(self, done=False):
    save(self, done=done)
    if not done and self.state.global_epoch == epoch:
        os.kill(os.getpid(), signal.SIGKILL)

Trainer.save = save_then_die
sys.exit(main(sys.argv[2:]))
"""


def train_killed_after(epoch: int, *args) -> subprocess.CompletedProcess:
    """Run ``lowbit train ARGS`` and kill -9 it after the checkpoint of ``epoch``."""
    return subprocess.run([sys.executable, "-c", KILLED_AFTER, str(epoch), "train", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "LOWBIT_COMPILE": "0"})


def run_torchrun(recipe: Path, out: Path, port: int, nproc: int = 2):
    """``torchrun --nproc_per_node=NPROC -m lowbit train RECIPE --out OUT`` on CPU (gloo)."""
    env = {**os.environ, "LOWBIT_COMPILE": "0", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
                           f"--master_port={port}", "-m", "lowbit", "train", str(recipe), "--out", str(out),
                           "--quiet"], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)


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
