"""Distillation: the KD term's value, task-loss weighting, teacher checks, and a real run."""

import json

import pytest
import torch
import torch.nn.functional as F

from lowbit.errors import ConfigError
from lowbit.methods.distill import Distill, DistillConfig, kd_loss
from lowbit.train import Trainer, recipe_from_dict


def test_kd_loss_matches_a_hand_kl():
    s, t = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[0.0, 2.0, 0.0]])
    p, q = F.softmax(t / 2, 1), F.softmax(s / 2, 1)
    expected = 4 * (p * (p.log() - q.log())).sum()
    assert torch.allclose(kd_loss(s, t, 2.0), expected)
    assert kd_loss(t, t, 3.0).item() == pytest.approx(0.0, abs=1e-7)


def test_task_weight_by_mode():
    assert Distill(DistillConfig(mode="soft", alpha=0.7)).task_weight == pytest.approx(0.3)
    assert Distill(DistillConfig(mode="penalty", alpha=0.7)).task_weight == 1.0


@pytest.mark.parametrize("cfg, message", [
    (dict(mode="hard"), "mode must be one of soft, penalty"),
    (dict(alpha=1.5), "alpha must be in"),
    (dict(temperature=0), "temperature must be > 0"),
])
def test_bad_config(cfg, message):
    with pytest.raises(ConfigError, match=message):
        DistillConfig(**cfg)


def _recipe(init=None, mode="soft"):
    model = {"name": "mlp", "kwargs": {"hidden": 64}}
    if init:
        model["init"] = str(init)
    return {"name": "kd", "model": model,
            "data": {"dataset": "mnist", "batch_size": 100, "train_limit": 3000, "test_limit": 1000,
                     "calib_batches": 2},
            "quant": {"weight": {"kind": "lsq", "bits": 2, "granularity": "channel"},
                      "act": {"kind": "lsq", "bits": 4}},
            "methods": [{"name": "distill", "args": {"mode": mode, "alpha": 0.5}}],
            "optim": {"lr": 0.02}, "phases": [{"epochs": 1}], "log_every": 1000}


def test_needs_a_trained_teacher(tmp_path):
    with pytest.raises(ConfigError, match="needs a trained float teacher"):
        Trainer(recipe_from_dict(_recipe()), tmp_path, verbose=False).run()


@pytest.mark.parametrize("mode", ["soft", "penalty"])
def test_distilled_qat_trains(tmp_path, mode):
    teacher = tmp_path / "teacher"
    float_recipe = {k: v for k, v in _recipe().items() if k not in ("quant", "methods")}
    float_recipe["phases"] = [{"epochs": 3}]
    Trainer(recipe_from_dict(float_recipe), teacher, verbose=False).run()
    m = Trainer(recipe_from_dict(_recipe(teacher / "model.safetensors", mode)), tmp_path / mode,
                verbose=False).run()
    report = json.loads((tmp_path / mode / "report.json").read_text())
    assert report["methods"]["distill"]["mode"] == mode
    assert m["top1"] > 70.0 and m["top1_fp32"] > 80.0
