"""Helpers for the training tests: tiny MNIST recipes, ``lowbit`` in a subprocess (plain, killed
after an epoch, under torchrun). A module of its own (not conftest.py) so that test files import it
by a name no other test folder uses."""

import os
import subprocess
import sys
from pathlib import Path

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
