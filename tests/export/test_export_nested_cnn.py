"""A nested-quantized CNN trained on CIFAR-10 (Chinbat 2025's floor quantization with a learned
scale per output channel, on kernels and biases) exports to the packed file and to ONNX, and
the integer executor agrees with the fake-quant model on at least 99.5% of test images.

The fast test fine-tunes the shipped float CNN for a few dozen steps with the bundled recipe
(the scales grow under the ratio rule, so the codes are a trained model's, not an
initialisation's); the slow one trains the recipe's schedule on a larger subset."""

from __future__ import annotations

import pytest
import torch

from lowbit.export import IntegerExecutor, export_onnx, load_packed, save_packed
from lowbit.nn.walk import quantizers
from lowbit.train import Trainer, load_recipe

ort = pytest.importorskip("onnxruntime")


def _train(tmp_path, train_limit: int, extra=()):
    sets = [f"data.train_limit={train_limit}", "data.test_limit=500", "data.calib_batches=1",
            "eval_fp32=false", "log_every=1000", "quant.weight.threshold=3.0e-4",
            "quant.bias.threshold=3.0e-4", "optim.quant_lr=3.0e-5", *extra]
    trainer = Trainer(load_recipe("cnn-cifar10-nested", sets), tmp_path / "run", verbose=False)
    metrics = trainer.run()
    return trainer.model.eval(), trainer.data.test_loader, metrics


def _agreement(model, loader, tmp_path, n_images: int):
    x = torch.cat([b[0] for b in loader])[:n_images]
    y = torch.cat([b[1] for b in loader])[:n_images]
    with torch.no_grad():
        ref = model(x)  # the fake-quant model
    info = save_packed(model, tmp_path / "cnn.lowbit", example_input=x[:1])
    runner = IntegerExecutor(load_packed(info.path))  # rebuilt from the file alone
    assert set(runner.modes().values()) == {"float-input"}  # integer weights, float activations
    with torch.no_grad():
        out = runner(x)
    proto = export_onnx(model, tmp_path / "cnn.onnx", example_input=x[:1])
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    onnx_out = torch.from_numpy(sess.run(None, {"input": x.numpy()})[0])
    return {"top1": float((ref.argmax(1) == y).float().mean()),
            "integer": float((out.argmax(1) == ref.argmax(1)).float().mean()),
            "onnx": float((onnx_out.argmax(1) == ref.argmax(1)).float().mean()),
            "bits": info.manifest["layers"]}


@pytest.mark.parametrize("codes", ["floor", "round"])
def test_trained_nested_cnn_exports_and_the_integer_executor_agrees(tmp_path, codes):
    model, loader, metrics = _train(tmp_path, 1280, [f"quant.weight.codes={codes}", f"quant.bias.codes={codes}"])
    assert {q.rounding for _, q in quantizers(model)} == {codes}
    assert metrics["weight_avg_bits"] < 7.5  # the scales moved off their 8-bit start
    res = _agreement(model, loader, tmp_path, 200)
    assert res["top1"] > 0.7  # a working classifier, so agreement is not trivial
    assert res["integer"] >= 0.995 and res["onnx"] >= 0.995


@pytest.mark.slow
def test_nested_cnn_fine_tuned_on_20k_images_agrees_on_1000(tmp_path):
    model, loader, metrics = _train(tmp_path, 20000, ["data.test_limit=1000"])
    assert metrics["weight_avg_bits"] < 6
    res = _agreement(model, loader, tmp_path, 1000)
    assert res["top1"] > 0.75
    assert res["integer"] >= 0.995 and res["onnx"] >= 0.995
