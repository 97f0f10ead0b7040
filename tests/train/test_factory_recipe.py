"""A recipe naming a model factory of the user's own: ``lowbit train/eval/export/sweep`` run it
end to end with --allow-import, and each refuses without it (one line, exit code 2, no files);
every training method works on such a model."""

from __future__ import annotations

import json

import pytest
import torch
from train_helpers import write_recipe
from safetensors.torch import save_file

from lowbit.cli import main
from lowbit.errors import ConfigError
from lowbit.train import Trainer, load_recipe

FACTORY = {"factory": "factory_models:build", "args": {"in_channels": 1, "width": 8}}
DATA = {"dataset": "mnist", "batch_size": 64, "train_limit": 256, "test_limit": 200,
        "eval_batch_size": 200, "calib_batches": 1}


def recipe(**extra):
    r = {"name": "factory", "seed": 1, "model": dict(FACTORY), "data": dict(DATA),
         "quant": {"weight": {"kind": "lsq", "bits": 4, "granularity": "channel"},
                   "act": {"kind": "lsq", "bits": 4}},
         "optim": {"lr": 0.05}, "phases": [{"epochs": 1}], "log_every": 1000}
    r.update(extra)
    return r


def cli(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def refused(capsys, *args):
    rc, _, err = cli(capsys, *args)
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and "--allow-import" in err, err
    return err


def test_train_eval_export_sweep_a_factory_model(tmp_path, capsys):
    rfile = write_recipe(tmp_path / "mine.yaml", recipe())
    run = tmp_path / "run"
    refused(capsys, "train", rfile, "--out", run, "--quiet")
    assert not run.exists()
    assert cli(capsys, "train", rfile, "--out", run, "--quiet", "--allow-import")[0] == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["size_bytes_packed"] > 0 and metrics["steps"] == 4
    report = json.loads((run / "report.json").read_text())
    assert {l["name"]: l["folded_bn"] for l in report["layers"]} == {"conv1": "bn1", "conv2": "bn2",
                                                                     "fc": None}

    refused(capsys, "eval", run)
    rc, out, _ = cli(capsys, "eval", run, "--allow-import")
    assert rc == 0 and f"top-1 {metrics['top1']:.2f}%" in out

    for fmt in ("packed", "onnx", "qonnx"):
        target = tmp_path / f"m.{fmt}"
        refused(capsys, "export", run, "--format", fmt, "--out", target)
        assert not target.exists()
        assert cli(capsys, "export", run, "--format", fmt, "--out", target, "--allow-import")[0] == 0
    err = refused(capsys, "eval", tmp_path / "m.packed")
    assert "own factory factory_models:build" in err
    rc, out, _ = cli(capsys, "eval", tmp_path / "m.packed", "--allow-import", "--executor", "both",
                     "--limit", "200")
    assert rc == 0 and "agreement with integer 100.00%" in out
    rc, out, _ = cli(capsys, "eval", tmp_path / "m.onnx", "--limit", "200")
    assert rc == 0 and "onnxruntime" in out

    sweep = tmp_path / "sweep"
    refused(capsys, "sweep", rfile, "--param", "optim.lr=0.05,0.02", "--out", sweep, "--quiet")
    assert not sweep.exists()
    rc, out, _ = cli(capsys, "sweep", rfile, "--param", "optim.lr=0.05,0.02", "--out", sweep,
                     "--quiet", "--allow-import")
    assert rc == 0 and len(json.loads((sweep / "sweep.json").read_text())["trials"]) == 2


@pytest.mark.parametrize("factory, message", [
    ("factory_models:broken", "factory_models:broken(in_channels=1, width=8) raised KeyError: "
                              "'no such weights\\n(second line)'"),
    ("factory_models:not_a_model", "factory_models:not_a_model returned a int, not an nn.Module"),
    ("factory_models:missing", "cannot import model factory factory_models:missing: AttributeError"),
    ("no_such_package.models:build", "cannot import model factory no_such_package.models:build: "
                                     "ModuleNotFoundError")])
def test_factory_errors_are_one_line(tmp_path, capsys, factory, message):
    rfile = write_recipe(tmp_path / "bad.yaml", recipe(model={**FACTORY, "factory": factory}))
    rc, _, err = cli(capsys, "train", rfile, "--out", tmp_path / "run", "--quiet", "--allow-import")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and message in err, err


def test_python_api_asks_for_the_same_permission(tmp_path):
    r = load_recipe(str(write_recipe(tmp_path / "mine.yaml", recipe())))
    with pytest.raises(ConfigError, match=r"allow it with --allow-import \(command line\) or "
                                          r"allow_import=True \(Python\)"):
        Trainer(r, tmp_path / "run")


# one bundled recipe per training method, its model swapped for the factory's (from saved
# float weights: distillation needs a float teacher)
METHOD_RECIPES = {"qgt": "resnet20-cifar10-qgt-w4", "budget+distill": "mlp-mnist-mp-kd",
                  "swa": "resnet20-cifar10-w4a4-swa"}


@pytest.mark.parametrize("method", sorted(METHOD_RECIPES))
def test_every_method_trains_a_factory_model(tmp_path, method):
    from factory_models import build

    base = load_recipe(METHOD_RECIPES[method])
    channels = 1 if base.data.dataset == "mnist" else 3
    torch.manual_seed(0)
    init = tmp_path / "float.safetensors"
    save_file(build(in_channels=channels).state_dict(), str(init))
    model = {"factory": "factory_models:build", "args": {"in_channels": channels}, "init": str(init)}
    sets = [f"model={json.dumps(model)}", f"data.dataset={base.data.dataset}"] + \
        [f"data.{k}={v}" for k, v in DATA.items() if k != "dataset"] + \
        [f"phases.{i}.epochs=1" for i in range(len(base.phases))]
    metrics = Trainer(load_recipe(METHOD_RECIPES[method], sets), tmp_path / "run", verbose=False,
                      allow_import=True).run()
    assert metrics["steps"] == 4 * len(base.phases) and metrics["weight_bits_total"] > 0
