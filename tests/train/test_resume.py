"""``kill -9`` mid-run, then ``--resume``: the same metrics as an uninterrupted run."""

import json

import torch

from conftest import run_cli, tiny_recipe, write_recipe


def _weights(path):
    return torch.load(path / "checkpoint.pt", weights_only=True)["model"]


def test_resume_after_kill_matches_uninterrupted(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(quant=True, epochs=(1, 2), limit=2000))
    full, broken = tmp_path / "full", tmp_path / "broken"
    r = run_cli("train", recipe, "--out", full, "--quiet")
    assert r.returncode == 0, r.stderr
    # SIGKILL right after the checkpoint of epoch 2 (inside the second phase)
    r = run_cli("train", recipe, "--out", broken, "--quiet", env={"LOWBIT_FAULT_AFTER_EPOCH": "2"})
    assert r.returncode == -9, (r.returncode, r.stderr)
    assert not (broken / "metrics.json").exists()
    r = run_cli("train", recipe, "--out", broken, "--quiet", "--resume")
    assert r.returncode == 0, r.stderr
    a = json.loads((full / "metrics.json").read_text())
    b = json.loads((broken / "metrics.json").read_text())
    for key in ("top1", "test_loss", "size_bytes_packed", "weight_bits_total", "steps"):
        assert a[key] == b[key], key
    wa, wb = _weights(full), _weights(broken)
    assert all(torch.equal(wa[k], wb[k]) for k in wa if isinstance(wa[k], torch.Tensor))
