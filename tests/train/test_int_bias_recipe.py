"""model.fold_bn + quant.int_bias in a recipe: trains as deployed, restores, and onnxruntime's
integer path (QLinearConv, biases rounded to int32) agrees with the trained fake-quant model."""

import pytest
import torch

from lowbit.errors import ConfigError
from lowbit.train import Trainer, recipe_from_dict
from lowbit.train.restore import load_run


def recipe(fold_bn: bool) -> dict:
    return {
        "name": "tiny-cnn-int-bias", "seed": 0,
        "model": {"name": "cnn", "kwargs": {"widths": [8, 8, 16], "hidden": 32}, "fold_bn": fold_bn},
        "data": {"dataset": "mnist", "batch_size": 100, "train_limit": 1000, "test_limit": 300,
                 "calib_batches": 2},
        "quant": {"weight": {"kind": "lsq", "bits": 4, "granularity": "channel"},
                  "act": {"kind": "lsq", "bits": 4}, "int_bias": True},
        "optim": {"name": "sgd", "lr": 0.05},
        "phases": [{"name": "w4a4", "epochs": 1}],
        "log_every": 1000,
    }


def test_int_bias_needs_batch_norm_folded_first(tmp_path):
    with pytest.raises(ConfigError, match="model.fold_bn: true"):
        Trainer(recipe_from_dict(recipe(fold_bn=False)), tmp_path / "run", verbose=False).run()
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_folded_int_bias_run_restores_and_matches_onnxruntime_integer_kernels(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from lowbit.export import export_onnx

    metrics = Trainer(recipe_from_dict(recipe(fold_bn=True)), tmp_path / "run", verbose=False).run()
    run = load_run(tmp_path / "run")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in run.model.modules())
    x, _ = next(iter(run.data.test_loader))
    x = x.contiguous()
    with torch.no_grad():
        ref = run.model(x)
    path = tmp_path / "m.onnx"
    export_onnx(run.model, path, example_input=x[:1])
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])  # default: fused
    out = torch.from_numpy(sess.run(None, {"input": x.numpy()})[0])
    assert float((out.argmax(1) == ref.argmax(1)).float().mean()) >= 0.995
    with torch.no_grad():  # the restored (folded) model is the trained one
        hits = sum(int((run.model(xb).argmax(1) == yb).sum()) for xb, yb in run.data.test_loader)
    assert abs(100 * hits / len(run.data.test) - metrics["top1"]) < 1e-6
