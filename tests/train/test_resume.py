"""``kill -9`` mid-run, then ``--resume``: the same metrics as an uninterrupted run."""

import json

import torch

from train_helpers import run_cli, tiny_recipe, train_killed_after, write_recipe


def _weights(path):
    return torch.load(path / "checkpoint.pt", weights_only=True)["model"]


def test_resume_after_kill_matches_uninterrupted(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe(quant=True, epochs=(1, 2), limit=2000))
    full, broken = tmp_path / "full", tmp_path / "broken"
    r = run_cli("train", recipe, "--out", full, "--quiet")
    assert r.returncode == 0, r.stderr
    # SIGKILL right after the checkpoint of epoch 2 (inside the second phase)
    r = train_killed_after(2, recipe, "--out", broken, "--quiet")
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


def test_resume_keeps_the_swa_mean(tmp_path):
    """The running weight mean is method state in the checkpoint: killed after epoch 2 and
    resumed, a run averaging epochs 1-3 ends with the same weights as an uninterrupted one."""
    spec = tiny_recipe(quant=False, epochs=(3, 0), limit=2000)
    spec["methods"] = [{"name": "swa", "args": {"start_epoch": 1}}]
    recipe = write_recipe(tmp_path / "r.yaml", spec)
    full, broken = tmp_path / "full", tmp_path / "broken"
    assert run_cli("train", recipe, "--out", full, "--quiet").returncode == 0
    r = train_killed_after(2, recipe, "--out", broken, "--quiet")
    assert r.returncode == -9, (r.returncode, r.stderr)
    r = run_cli("train", recipe, "--out", broken, "--quiet", "--resume")
    assert r.returncode == 0, r.stderr
    a = json.loads((full / "report.json").read_text())["methods"]["swa"]
    b = json.loads((broken / "report.json").read_text())["methods"]["swa"]
    assert a["averaged_epochs"] == b["averaged_epochs"] == [1, 2, 3]
    assert json.loads((full / "metrics.json").read_text())["top1"] == \
        json.loads((broken / "metrics.json").read_text())["top1"]
    from safetensors.torch import load_file

    wa, wb = load_file(full / "model.safetensors"), load_file(broken / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_phase_bits_leave_overridden_layers_through_training_and_resume(tmp_path):
    """Phases go 8 -> 2 weight bits while an override holds the first layer at 8: the run ends
    with fc1 at 8 bits and fc2 at 2, uninterrupted and when killed after the first phase."""
    spec = tiny_recipe(quant=True, epochs=(1, 1), limit=1000)
    spec["quant"]["overrides"] = [{"pattern": "@first", "weight": {"bits": 8}}]
    spec["phases"][0]["weight_bits"] = 8
    spec["phases"][1].update(weight_bits=2, act_bits=2)
    recipe = write_recipe(tmp_path / "r.yaml", spec)
    full, broken = tmp_path / "full", tmp_path / "broken"
    assert run_cli("train", recipe, "--out", full, "--quiet").returncode == 0
    r = train_killed_after(1, recipe, "--out", broken, "--quiet")
    assert r.returncode == -9, (r.returncode, r.stderr)
    assert run_cli("train", recipe, "--out", broken, "--quiet", "--resume").returncode == 0
    want = 784 * 64 * 8 + 64 * 10 * 2  # mlp(hidden=64): fc1 held at 8 bits, fc2 at the phase's 2
    for run in (full, broken):
        assert json.loads((run / "metrics.json").read_text())["weight_bits_total"] == want, run
