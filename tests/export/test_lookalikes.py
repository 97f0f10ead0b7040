"""Layers and models that look like third-party ones (see lookalike_nets.py), through every stage.

For each: with quantizers off the prepared model computes exactly what the original computes;
calibrate, a training step, convert, the packed file, the integer executor, ONNX (onnxruntime)
and QONNX (qonnx's executor) all run and agree with the fake-quant model on >= 99% of a batch;
or lowbit refuses with a one-line reason naming the layer.
"""

from __future__ import annotations

import warnings

import onnx
import pytest
import torch
import torch.nn.functional as F
from lookalike_nets import (Conv1D, Fragile, GPT2Net, MatmulLinear, PatchNet, SameNet, StdConvNet,
                            TokenNet, image_batch, token_batch)
from torch import nn

from lowbit import QuantizerConfig, QuantSpec, account, calibrate, prepare
from lowbit.errors import ConfigError, DataError
from lowbit.export import (FakeQuantExecutor, IntegerExecutor, export_onnx, export_qonnx, exportable,
                           load_packed, save_packed)
from lowbit.nn.control import set_quant_state
from lowbit.nn.inputs import run_model

ort = pytest.importorskip("onnxruntime")

# int4 weight containers (the unused-layer case broke int4 export), 8-bit activations
SPEC = QuantSpec(weight=QuantizerConfig(kind="lsq", bits=4, granularity="channel"),
                 act=QuantizerConfig(kind="lsq", bits=8))
N = 100  # batch: >= 99% agreement allows one flipped prediction


def _tokens():
    ids, mask = token_batch(N)
    return {"input_ids": ids, "attention_mask": mask}


CASES = {"std_conv": (StdConvNet, lambda: image_batch(N)),
         "same_padding": (SameNet, lambda: image_batch(N)),
         "reads_attributes": (PatchNet, lambda: image_batch(N)),
         "keyword_inputs": (TokenNet, _tokens)}


def agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.argmax(-1) == b.argmax(-1)).float().mean())


def _calibration(x):
    if isinstance(x, dict):  # with and without the mask: reaches both heads of TokenNet
        return [x, {"input_ids": x["input_ids"]}]
    return [x]


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    cls, data = CASES[request.param]
    torch.manual_seed(0)
    float_model = cls().eval()
    x = data()
    with torch.no_grad():
        for _ in range(3):  # give batch norms real statistics
            run_model(float_model.train(), x)
    float_model.eval()
    model = prepare(float_model, SPEC)
    calibrate(model, _calibration(x))
    return request.param, float_model, model.eval(), x


def _run_ort(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = ({"input": x.numpy()} if isinstance(x, torch.Tensor)
             else {k: v.numpy() for k, v in x.items()})
    return torch.from_numpy(sess.run(None, feeds)[0])


def test_quantizers_off_computes_exactly_the_original(case):
    name, float_model, model, x = case
    with torch.no_grad():
        ref = run_model(float_model, x)
        set_quant_state(model, weights=False, acts=False)
        try:
            off = run_model(model, x)
        finally:
            set_quant_state(model, weights=True, acts=True)
    assert torch.equal(off, ref)


def test_training_step_moves_weights_and_scales(case):
    name, _, model, x = case
    import copy

    model = copy.deepcopy(model).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    before = {k: v.clone() for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
    loss = F.cross_entropy(run_model(model, x), torch.zeros(N, dtype=torch.long))
    loss.backward()
    opt.step()
    moved = [k for k, v in model.state_dict().items()
             if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.equal(v, before[k])]
    assert torch.isfinite(loss) and any(k.endswith(".weight") for k in moved)
    assert any("quantizer.scale" in k for k in moved)


def test_packed_integer_and_fake_quant_executors_agree(case, tmp_path):
    name, float_model, model, x = case
    ex1 = x if isinstance(x, dict) else x[:1]
    with torch.no_grad():
        ref = run_model(model, x)
    path = tmp_path / "m.lowbit"
    save_packed(model, path, example_input=ex1)
    loaded = load_packed(path)
    integer = IntegerExecutor(loaded, model=float_model)
    fake = FakeQuantExecutor(loaded, model=float_model)
    assert agreement(run_model(integer, x), ref) >= 0.99
    assert agreement(run_model(fake, x), ref) >= 0.99
    modes = integer.modes()
    if name == "std_conv":  # standardization is not linear in the weight: float64, said so
        assert modes == {"conv1": "float-forward", "conv2": "float-forward", "fc": "integer"}
    else:
        assert set(modes.values()) == {"integer"}, modes


def test_unfolded_fake_quant_executor_is_bit_identical(case):
    name, _, model, x = case
    ex1 = x if isinstance(x, dict) else x[:1]
    with torch.no_grad():
        assert torch.equal(run_model(FakeQuantExecutor(model, fold_bn=False, example_input=ex1), x),
                           run_model(model, x))


def test_batch_norm_folds_only_into_layers_linear_in_their_weight(case):
    name, _, model, x = case
    ex1 = x if isinstance(x, dict) else x[:1]
    folded = exportable(model, example_input=ex1).quantized.folded_bn
    want = {"std_conv": [], "same_padding": ["bn1", "bn2", "bn3"]}.get(name, [])
    assert folded == want


def test_onnx_runs_in_onnxruntime(case, tmp_path):
    name, _, model, x = case
    with torch.no_grad():
        ref = run_model(model, x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        proto = export_onnx(model, tmp_path / "m.onnx", example_input=x)
    unused = [str(w.message) for w in caught if "not used by the model's forward" in str(w.message)]
    assert unused == (["ONNX export: quantized layer(s) fc_nomask are not used by the model's "
                       "forward on this input and are left out of the graph"]
                      if name == "keyword_inputs" else [])
    if name == "keyword_inputs":
        assert [i.name for i in proto.graph.input] == ["input_ids", "attention_mask"]
        assert onnx.TensorProto.INT4 in {i.data_type for i in proto.graph.initializer}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            positional = export_onnx(model, tmp_path / "p.onnx", example_input=tuple(x.values()))
        assert [i.name for i in positional.graph.input] == ["input0", "input1"]
        sess = ort.InferenceSession(str(tmp_path / "p.onnx"), providers=["CPUExecutionProvider"])
        y = torch.from_numpy(sess.run(None, {"input0": x["input_ids"].numpy(),
                                             "input1": x["attention_mask"].numpy()})[0])
        assert agreement(y, ref) >= 0.99
    assert agreement(_run_ort(tmp_path / "m.onnx", x), ref) >= 0.99


def test_qonnx_runs_in_qonnx(case, tmp_path):
    pytest.importorskip("qonnx")
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    name, _, model, x = case
    with torch.no_grad():
        ref = run_model(model, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unused head, checked for ONNX above
        export_qonnx(model, tmp_path / "m.qonnx", example_input=x)  # static batch of N
    # (not qonnx's cleanup_model: its tensor renaming misses a Mul of a tensor with itself)
    mw = ModelWrapper(str(tmp_path / "m.qonnx")).transform(InferShapes())
    values = [x] if isinstance(x, torch.Tensor) else list(x.values())
    feeds = {i.name: v.numpy() for i, v in zip(mw.graph.input, values)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # qonnx: "Output shapes disagree" (Quant infers no shape)
        out = execute_onnx(mw, feeds)[mw.graph.output[0].name]
    assert agreement(torch.from_numpy(out), ref) >= 0.99


# ----- what lowbit refuses, by name, in one line ------------------------------------------------
def _one_line(exc) -> str:
    assert "\n" not in str(exc.value)
    return str(exc.value)


def test_custom_dense_class_is_named_with_how_to_include_it():
    with pytest.raises(ConfigError) as exc:
        prepare(GPT2Net())
    msg = _one_line(exc)
    assert "Conv1D x2 (c_fc, c_proj)" in msg and "replace such layers by nn.Linear" in msg


class MixedDense(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.c_proj, self.wte = nn.Linear(8, 8), Conv1D(4, 8), nn.Embedding(5, 3)

    def forward(self, x):
        return self.c_proj(F.relu(self.fc(x)))


def test_custom_dense_layers_beside_linears_are_listed_as_float():
    q = prepare(MixedDense(), SPEC)
    calibrate(q, [torch.randn(4, 8)])
    rows = {r["name"]: r for r in account(q, torch.zeros(1, 8)).float_modules}
    assert set(rows) == {"c_proj", "wte"}
    assert rows["c_proj"]["type"] == "Conv1D" and rows["c_proj"]["params"] == 36
    assert "not a subclass of nn.Conv1d/Conv2d/Linear" in rows["c_proj"]["reason"]
    assert rows["wte"]["reason"] == "lowbit does not quantize Embedding"


def test_parametrized_and_hook_computed_weights_are_refused():
    from torch.nn.utils import parametrizations

    model = nn.Sequential(parametrizations.weight_norm(nn.Linear(4, 4)), nn.Linear(4, 2))
    with pytest.raises(ConfigError, match="layer '0' .*torch.nn.utils.parametrize") as exc:
        prepare(model)
    _one_line(exc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.nn.utils.weight_norm is deprecated
        old = nn.Sequential(torch.nn.utils.weight_norm(nn.Linear(4, 4)))
    with pytest.raises(ConfigError, match="layer '0' .*not a Parameter .*remove_weight_norm"):
        prepare(old, inplace=True)  # (such a model cannot even be deep-copied)


class Sneaky(nn.Linear):
    def forward(self, x):  # reads the Parameter behind lowbit's back
        return F.linear(x, self._parameters["weight"], self.bias)


def test_a_forward_that_never_reads_self_weight_is_refused_at_first_use():
    q = prepare(nn.Sequential(Sneaky(4, 3)), SPEC)
    with pytest.raises((ConfigError, DataError), match="Sneaky.forward never reads self.weight"):
        calibrate(q, [torch.randn(2, 4)])


class Moody(nn.Conv2d):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.mode = "fancy"  # a name lowbit's integer layer needs itself


def test_runtime_name_clash_is_refused_by_name():
    q = prepare(nn.Sequential(Moody(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2)), SPEC)
    x = torch.randn(4, 3, 8, 8)
    calibrate(q, [x])
    with pytest.raises(ConfigError, match="layer '0' \\(Moody\\) has attribute\\(s\\) mode"):
        IntegerExecutor(q, example_input=x[:1])


def test_dense_subclass_with_its_own_forward_runs_on_integers():
    torch.manual_seed(0)
    model = nn.Sequential(MatmulLinear(6, 5), nn.ReLU(), MatmulLinear(5, 3))
    q = prepare(model, SPEC)
    x = torch.randn(N, 2, 6)  # 3-D input, as in transformers
    calibrate(q, [x])
    runner = IntegerExecutor(q.eval(), example_input=x[:1])
    with torch.no_grad():
        assert agreement(runner(x), q(x)) >= 0.99
    assert runner.modes() == {"0": "integer", "2": "integer"}


def test_rebuilding_your_class_asks_permission_and_reports_its_errors_in_one_line(tmp_path):
    model = prepare(Fragile(boom=False), SPEC)
    calibrate(model, [torch.randn(4, 6)])
    path = tmp_path / "fragile.lowbit"
    save_packed(model, path, example_input=torch.zeros(1, 6))
    with pytest.raises(ConfigError, match="your own class lookalike_nets:Fragile; pass model=<an "
                                          "instance of it> .* --allow-import") as exc:
        IntegerExecutor(str(path))
    _one_line(exc)
    with pytest.raises(ConfigError) as exc:
        IntegerExecutor(str(path), allow_import=True)
    assert "lookalike_nets:Fragile() raised RuntimeError: needs its weights file (a second line)" \
        in _one_line(exc)
    x = torch.randn(5, 6)
    with torch.no_grad():
        assert torch.equal(IntegerExecutor(str(path), model=Fragile(boom=False))(x).argmax(1),
                           model.eval()(x).argmax(1))
