"""Two processes on CPU (gloo, torchrun) give the same training as one process."""

import json

from train_helpers import run_cli, run_torchrun, tiny_recipe, write_recipe


def test_two_processes_match_one(tmp_path):
    recipe = tiny_recipe(quant=False, epochs=(1, 0), limit=2000)
    path = write_recipe(tmp_path / "r.yaml", recipe)
    single = tmp_path / "single"
    assert run_cli("train", path, "--out", single, "--quiet").returncode == 0
    ddp = tmp_path / "ddp"
    r = run_torchrun(path, ddp, port=29517)
    assert r.returncode == 0, r.stderr[-2000:]
    a = json.loads((single / "metrics.json").read_text())
    b = json.loads((ddp / "metrics.json").read_text())
    # identical batches and averaged gradients: only float summation order differs
    assert abs(a["top1"] - b["top1"]) <= 0.2 and abs(a["test_loss"] - b["test_loss"]) < 1e-3
    assert a["steps"] == b["steps"]
