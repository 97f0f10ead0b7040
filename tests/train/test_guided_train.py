"""Guided training in the trainer: the twin's own optimizer, checkpoint and resume, its top-1
in the log, metrics and report; a fixed twin; exports hold the low-bit model alone."""

import json

import pytest
import torch

from train_helpers import run_cli, run_torchrun, tiny_recipe, train_killed_after, write_recipe
from lowbit.export import load_packed
from lowbit.train import Trainer
from lowbit.train.recipe import recipe_from_dict


def _guided_recipe(**args):
    spec = tiny_recipe(quant=True, epochs=(1, 2), limit=2000)
    spec["methods"] = [{"name": "guided", "args": {"lam": 0.01, **args}}]
    return spec


def _twin(path):
    return torch.load(path / "checkpoint.pt", weights_only=True)["companions"]["twin"]


def test_resume_after_kill_matches_uninterrupted_with_a_twin(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", _guided_recipe(optim={"lr": 0.01, "momentum": 0.5}))
    full, broken = tmp_path / "full", tmp_path / "broken"
    assert run_cli("train", recipe, "--out", full, "--quiet").returncode == 0
    r = train_killed_after(2, recipe, "--out", broken, "--quiet")
    assert r.returncode == -9, (r.returncode, r.stderr)
    twin_at_kill = _twin(broken)
    assert twin_at_kill["optimizer"] is not None
    r = run_cli("train", recipe, "--out", broken, "--quiet", "--resume")
    assert r.returncode == 0, r.stderr
    a = json.loads((full / "metrics.json").read_text())
    b = json.loads((broken / "metrics.json").read_text())
    for key in ("top1", "test_loss", "twin_top1", "steps"):
        assert a[key] == b[key], key
    ta, tb = _twin(full)["model"], _twin(broken)["model"]
    assert all(torch.equal(ta[k], tb[k]) for k in ta)
    assert not all(torch.equal(ta[k], twin_at_kill["model"][k]) for k in ta), "the twin trained on"
    history = json.loads((full / "report.json").read_text())["history"]
    assert len(history) == 3 and all("twin_top1" in h for h in history)
    assert a["twin_top1"] == history[-1]["twin_top1"]  # the final twin is the last epoch's
    assert "twin_top1" in (full / "report.md").read_text()
    # the export is the low-bit model alone
    r = run_cli("export", full, "--format", "packed", "--out", tmp_path / "m.lowbit")
    assert r.returncode == 0, r.stderr
    ex = load_packed(tmp_path / "m.lowbit")
    assert not any("twin" in k for k in ex.quantized.float_state)
    assert list(ex.quantized.layers) == ["fc1", "fc2"]


def test_fixed_twin_keeps_its_weights_through_training(tmp_path):
    recipe = recipe_from_dict(_guided_recipe(joint=False))
    fresh = Trainer(recipe, tmp_path / "fresh", verbose=False)
    fresh.setup()  # the same seed: the twin and model every run starts from
    before = {k: v.clone() for k, v in fresh.methods[0].twin.state_dict().items()}
    metrics = Trainer(recipe, tmp_path / "run", verbose=False).run()
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    after = ckpt["companions"]["twin"]
    assert after["optimizer"] is None
    assert all(torch.equal(before[k], after["model"][k]) for k in before)
    start = fresh.model.state_dict()
    assert not all(torch.equal(start[k], ckpt["model"][k]) for k in start
                   if isinstance(start[k], torch.Tensor)), "the low-bit model trained"
    assert "twin_top1" in metrics


def test_two_processes_train_the_twin_like_one(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", _guided_recipe())
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    assert run_cli("train", path, "--out", single, "--quiet").returncode == 0
    r = run_torchrun(path, ddp, port=29519)
    assert r.returncode == 0, r.stderr[-2000:]
    a = json.loads((single / "metrics.json").read_text())
    b = json.loads((ddp / "metrics.json").read_text())
    # the twin's gradients are averaged over the processes like the model's
    assert abs(a["twin_top1"] - b["twin_top1"]) <= 0.5 and abs(a["top1"] - b["top1"]) <= 0.5


@pytest.mark.parametrize("args, message", [
    ({"points": ["layer9.*"]}, "guided points pattern 'layer9.*' matches no quantized layer"),
    ({"lam": -0.5}, "guided lam (lambda) must be >= 0, got -0.5")])
def test_bad_guided_args_are_a_one_line_error_before_any_file(tmp_path, args, message):
    path = write_recipe(tmp_path / "r.yaml", _guided_recipe(**args))
    r = run_cli("train", path, "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.startswith("lowbit train: error")]
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
