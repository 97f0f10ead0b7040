"""End to end on real MNIST: the loop trains, phases apply, outputs follow the contract."""

import json

import pytest
import torch

from lowbit.accounting import account
from lowbit.nn.walk import act_quantizers, weight_quantizers
from lowbit.train import Trainer, recipe_from_dict
from lowbit.train.restore import load_run

from train_helpers import tiny_recipe

REQUIRED = {"top1", "weight_bits_total", "act_bits_total", "size_bytes_packed", "epochs", "seconds"}


@pytest.fixture(scope="module")
def float_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("float")
    recipe = recipe_from_dict(tiny_recipe(quant=False, epochs=(2, 0), limit=4000))
    return out, Trainer(recipe, out, verbose=False).run()


def test_float_training_learns_mnist(float_run):
    out, m = float_run
    assert REQUIRED <= set(m) and m["top1"] > 85.0
    hist = json.loads((out / "report.json").read_text())["history"]
    assert hist[-1]["test_loss"] < hist[0]["test_loss"], "the test loss falls over epochs"


def test_run_folder_contract(float_run):
    out, m = float_run
    for name in ("metrics.json", "report.json", "report.md", "recipe.yaml", "checkpoint.pt",
                 "model.safetensors"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert report["schema"] == "lowbit.report/1" and report["metrics"] == json.loads((out / "metrics.json").read_text())
    assert "top-1 accuracy" in (out / "report.md").read_text()


def test_the_report_names_the_environment_a_trained_number_depends_on(float_run):
    out, _ = float_run
    env = json.loads((out / "report.json").read_text())["environment"]
    assert env["torch"] == torch.__version__ and env["threads"] == torch.get_num_threads()
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and env["device"].startswith("cpu: ")
    assert f"Trained with torch {torch.__version__} on cpu: " in (out / "report.md").read_text()


def test_quantized_phases_and_sizes(tmp_path, float_run):
    init = float_run[0] / "model.safetensors"
    data = tiny_recipe(quant=True, epochs=(1, 1), limit=3000)
    data["model"]["init"] = str(init)
    t = Trainer(recipe_from_dict(data), tmp_path, verbose=False)
    m = t.run()
    assert m["top1_fp32"] > 85.0 and m["top1"] > 75.0
    assert all(q.enabled for _, q in act_quantizers(t.model)), "phase 2 quantizes activations"
    assert all(q.bits == 4 for _, _, q in weight_quantizers(t.model))
    cost = account(t.model, t.example, fold_bn=True)
    assert m["size_bytes_packed"] == cost.size_bytes_packed
    assert m["weight_bits_total"] == 4 * (784 * 64 + 64 * 10)
    # the run folder rebuilds the same model
    run = load_run(tmp_path)
    x = torch.randn(5, 1, 28, 28)
    assert torch.equal(run.model(x), t.model.eval()(x))


def test_zero_epoch_ptq_recipe_with_a_method_writes_every_output(tmp_path):
    """A PTQ recipe (one 0-epoch phase, QGT with lambda 0 for its report) into a folder that does
    not exist yet: no checkpoint precedes the outputs, and the method's report still lands."""
    data = tiny_recipe(quant=False, epochs=(0, 0), limit=2000)
    data["quant"] = {"weight": {"kind": "uniform", "bits": 4, "symmetric": False,
                                "granularity": "channel", "observer": "minmax"}, "act": None}
    data["methods"] = [{"name": "qgt", "args": {"lam": 0.0}}]
    data["phases"] = [{"name": "ptq", "epochs": 0, "quantize_weights": False}]
    out = tmp_path / "new" / "ptq"
    metrics = Trainer(recipe_from_dict(data), out, verbose=False).run()
    for name in ("metrics.json", "report.json", "report.md", "model.safetensors"):
        assert (out / name).is_file(), name
    assert metrics["steps"] == 0 and metrics["weight_avg_bits"] < 32
    assert "qgt" in json.loads((out / "report.json").read_text())["methods"]


def test_a_phase_label_smoothing_replaces_the_optim_one_in_that_phase_only(tmp_path, monkeypatch):
    import types

    import lowbit.train.loop as loop

    seen = []  # the label smoothing of every training step's loss, in order
    real = loop.F.cross_entropy

    def spy(logits, y, label_smoothing=0.0, **kw):
        seen.append(label_smoothing)
        return real(logits, y, label_smoothing=label_smoothing, **kw)

    monkeypatch.setattr(loop, "F", types.SimpleNamespace(cross_entropy=spy))  # the loop's F only
    data = tiny_recipe(quant=True, epochs=(0.1, 0.1), limit=2000)
    data["optim"]["label_smoothing"] = 0.05
    data["phases"][1]["label_smoothing"] = 0.2
    Trainer(recipe_from_dict(data), tmp_path / "ls", verbose=False).run()
    assert seen == [0.05] * 2 + [0.2] * 2, "2 steps a phase: the optim value, then the phase's"


def _quantizer_and_weight_state(quant_lr, epochs, tmp_path):
    from lowbit.nn.control import quantizer_parameters

    data = tiny_recipe(quant=True, epochs=(epochs, 0), limit=2000)
    data["phases"][0]["quant_lr"] = quant_lr
    t = Trainer(recipe_from_dict(data), tmp_path / f"run-{quant_lr}-{epochs}", verbose=False)
    t.run()
    quant = [p.detach().clone() for p in quantizer_parameters(t.model)]
    weights = [m.weight.detach().clone() for _, m, _ in weight_quantizers(t.model)]
    return quant, weights


def test_a_phase_quant_lr_sets_the_quantizer_learning_rate_of_that_phase(tmp_path):
    q0, w0 = _quantizer_and_weight_state(None, 0, tmp_path)  # calibrated, untrained
    q_frozen, w_frozen = _quantizer_and_weight_state(0.0, 0.5, tmp_path)
    q_moving, _ = _quantizer_and_weight_state(None, 0.5, tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(q0, q_frozen)), "quant_lr 0 holds the steps"
    assert not all(torch.equal(a, b) for a, b in zip(w0, w_frozen)), "the weights still train"
    assert not all(torch.equal(a, b) for a, b in zip(q0, q_moving)), "by default the steps learn"
