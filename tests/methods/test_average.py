"""SWA: the mean is a hand mean of the chosen epochs, batch norm is re-measured, resume is exact."""

import json

import pytest
import torch
from torch import nn

from lowbit.errors import ConfigError
from lowbit.methods.average import SWA, SWAConfig, averaged_keys, refresh_batch_norm
from lowbit.methods.base import TrainContext


def _ctx(model, loader=None):
    return TrainContext(model=model, train_loader=loader, test_loader=loader)


def _set(model, value):
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)


def test_mean_of_the_chosen_epochs_replaces_the_weights():
    model = nn.Linear(3, 2)
    swa = SWA(SWAConfig(start_epoch=2, every=2))
    ctx = _ctx(model)
    swa.setup(ctx)
    for value in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0):  # epochs 1..6: 2, 4 and 6 are averaged
        _set(model, value)
        swa.on_epoch_end(ctx)
    assert swa.averaged == [2, 4, 6]
    swa.finalize(ctx)
    for p in model.parameters():
        assert torch.allclose(p, torch.full_like(p, 4.0))


def test_nothing_averaged_leaves_the_model_and_says_so():
    model = nn.Linear(3, 2)
    swa = SWA(SWAConfig(start_epoch=5))
    ctx = _ctx(model)
    swa.setup(ctx)
    _set(model, 1.5)
    swa.on_epoch_end(ctx)
    swa.finalize(ctx)
    assert all(torch.equal(p, torch.full_like(p, 1.5)) for p in model.parameters())
    assert "no epoch was averaged" in swa.report(ctx)["note"]


def test_batch_norm_statistics_are_measured_not_averaged():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    keys = averaged_keys(model)
    assert "1.running_mean" not in keys and "1.num_batches_tracked" not in keys and "1.weight" in keys
    batches = [(torch.randn(16, 3), None) for _ in range(3)]
    assert refresh_batch_norm(model, batches, batches=2) == 2
    with torch.no_grad():
        h = [model[0](x) for x, _ in batches[:2]]
    # cumulative averaging: the plain mean of the two batch means and unbiased variances
    mean = torch.stack([t.mean(0) for t in h]).mean(0)
    var = torch.stack([t.var(0, unbiased=True) for t in h]).mean(0)
    assert torch.allclose(model[1].running_mean, mean, atol=1e-6)
    assert torch.allclose(model[1].running_var, var, atol=1e-5)
    assert model[1].momentum == 0.1 and model.training


def test_state_round_trip_continues_the_same_mean():
    model = nn.Linear(2, 2)
    a, b = SWA(SWAConfig()), SWA(SWAConfig())
    ctx = _ctx(model)
    a.setup(ctx)
    _set(model, 1.0)
    a.on_epoch_end(ctx)
    b.setup(ctx)
    b.load_state_dict(a.state_dict())
    _set(model, 3.0)
    a.on_epoch_end(ctx)
    b.on_epoch_end(ctx)
    assert all(torch.equal(a.mean[k], b.mean[k]) for k in a.mean)
    assert torch.allclose(b.mean["weight"], torch.full((2, 2), 2.0))


@pytest.mark.parametrize("cfg, message", [
    (dict(start_epoch=0), "swa start_epoch must be >= 1, got 0"),
    (dict(every=0), "swa every must be >= 1, got 0"),
    (dict(bn_batches=-1), "swa bn_batches must be >= 0"),
])
def test_bad_config(cfg, message):
    with pytest.raises(ConfigError, match=message):
        SWAConfig(**cfg)


def test_a_float_run_with_swa_logs_and_reports_the_mean(tmp_path):
    from lowbit.train import Trainer, recipe_from_dict

    recipe = {"name": "swa", "model": {"name": "mlp", "kwargs": {"hidden": 64}},
              "data": {"dataset": "mnist", "batch_size": 100, "train_limit": 2000, "test_limit": 500},
              "methods": [{"name": "swa", "args": {"start_epoch": 2, "track": True}}],
              "optim": {"lr": 0.05}, "phases": [{"epochs": 3, "schedule": {"kind": "constant"}}],
              "log_every": 1000}
    metrics = Trainer(recipe_from_dict(recipe), tmp_path, verbose=False).run()
    history = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["state"]["history"]
    assert "swa_top1" not in history[0] and [h["swa_n"] for h in history[1:]] == [1, 2]
    report = json.loads((tmp_path / "report.json").read_text())
    section = report["methods"]["swa"]
    assert section["averaged_epochs"] == [2, 3]
    # the MLP has no batch norm, so the tracked mean at the last epoch is the final model
    assert metrics["top1"] == pytest.approx(section["top1_of_mean_by_epoch"]["3"])
