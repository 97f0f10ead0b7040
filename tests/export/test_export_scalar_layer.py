"""The scalar layer (Zhuang et al., Towards Effective Low-bitwidth CNNs, Section 3.6) is learned,
survives convert and every export, and gives the same logits in fake-quant, the packed file's
executors, onnxruntime and QONNX."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lowbit import QuantizerConfig, QuantSpec, calibrate, prepare
from lowbit.errors import ConfigError
from lowbit.export import FakeQuantExecutor, IntegerExecutor, export_onnx, export_qonnx, load_packed, save_packed
from lowbit.models import create_model
from lowbit.nn.layers import ScalarLayer, add_scalar_layer

SPEC = QuantSpec(weight=QuantizerConfig(kind="dorefa", bits=4), act=QuantizerConfig(kind="dorefa", bits=4))


def _model():
    torch.manual_seed(0)
    float_model = add_scalar_layer(create_model("mlp", hidden=16), 0.01)
    with torch.no_grad():
        float_model.scalar_layer.scale.fill_(0.37)  # a trained value
    model = prepare(float_model, SPEC)
    x = torch.rand(16, 1, 28, 28)
    calibrate(model, [x])
    return model.eval(), x


def test_scalar_layer_multiplies_the_logits_and_the_registry_spec_records_it():
    model, x = _model()
    assert isinstance(model.scalar_layer, ScalarLayer) and model.lowbit_spec["scalar_layer"] == 0.01
    with torch.no_grad():
        plain = model.fc2(model.relu(model.fc1(model.flatten(x))))
        torch.testing.assert_close(model(x), 0.37 * plain)
    with pytest.raises(ConfigError, match="already has a scalar layer"):
        add_scalar_layer(model)
    with pytest.raises(ConfigError, match="positive initial value"):
        add_scalar_layer(create_model("mlp"), 0.0)


def test_scalar_layer_survives_packed_onnx_and_qonnx(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model, x = _model()
    with torch.no_grad():
        ref = model(x)
    save_packed(model, tmp_path / "m.lowbit")
    ex = load_packed(tmp_path / "m.lowbit")  # rebuilt from the file alone (registry spec)
    assert float(ex.quantized.float_state["scalar_layer.scale"]) == pytest.approx(0.37)
    with torch.no_grad():
        torch.testing.assert_close(FakeQuantExecutor(ex)(x), ref, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(IntegerExecutor(ex)(x), ref, atol=1e-5, rtol=1e-5)
    proto = export_onnx(ex, tmp_path / "m.onnx")
    assert "Mul" in [n.op_type for n in proto.graph.node]
    so = ort.SessionOptions()
    so.add_session_config_entry("session.disable_quant_qdq", "1")
    sess = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"input": x.numpy()})[0], ref.numpy(), atol=1e-5, rtol=1e-5)
    qproto = export_qonnx(ex, tmp_path / "m.qonnx")
    assert "Mul" in [n.op_type for n in qproto.graph.node]


def test_scalar_layer_on_a_users_own_model_is_rebuilt_from_the_reference():
    from torch import nn

    from lowbit.export import exportable

    model = add_scalar_layer(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), 0.5)
    q = prepare(model, SPEC)
    calibrate(q, [torch.rand(8, 4)])
    ex = exportable(q, example_input=torch.rand(1, 4))
    assert ex.model_ref["scalar_layer"] == 0.5
    bare = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))  # an instance without the scalar layer
    runner = FakeQuantExecutor(ex, model=bare)
    x = torch.rand(5, 4)
    with torch.no_grad():
        torch.testing.assert_close(runner(x), q.eval()(x))


def test_scalar_layer_is_learned_in_a_recipe(tmp_path):
    from lowbit.train import Trainer
    from lowbit.train.recipe import recipe_from_dict

    recipe = recipe_from_dict({
        "model": {"name": "mlp", "kwargs": {"hidden": 32}, "scalar_layer": 0.01},
        "data": {"dataset": "mnist", "batch_size": 100, "train_limit": 1000, "test_limit": 500,
                 "calib_batches": 1},
        "quant": {"weight": {"kind": "dorefa", "bits": 4}, "act": {"kind": "dorefa", "bits": 4}},
        "phases": [{"epochs": 1}], "log_every": 1000})
    Trainer(recipe, tmp_path / "run", verbose=False).run()
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["model"]
    assert abs(float(state["scalar_layer.scale"]) - 0.01) > 0.05  # learned (from 0.01)
    with pytest.raises(ConfigError, match="model.scalar_layer must be > 0"):
        recipe_from_dict({"model": {"name": "mlp", "scalar_layer": -1.0}, "data": {"dataset": "mnist"}})
