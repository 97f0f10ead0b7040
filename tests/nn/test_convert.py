"""convert: integer weights + qparams per layer, exact dequantization, BN folding into scales."""

import copy

import pytest
import torch
from torch import nn

from lowbit import LayerOverride, QuantizerConfig, QuantSpec, calibrate, convert, prepare
from lowbit.errors import ConfigError
from lowbit.models import create_model
from lowbit.nn import QuantMixin, quant_layers, weight_quantizers

SPECS = {
    "lsq_channel": QuantizerConfig(kind="lsq", bits=4, granularity="channel"),
    "uniform_tensor_asym": QuantizerConfig(kind="uniform", bits=3, symmetric=False),
    "learned_range_channel": QuantizerConfig(kind="learned_range", bits=4, granularity="channel"),
    "nested_channel": QuantizerConfig(kind="nested", bits=None, granularity="channel"),
    "pow2_tensor": QuantizerConfig(kind="pow2", bits=4),
    "log2_channel": QuantizerConfig(kind="log2", bits=4, granularity="channel"),
    "dorefa_tensor": QuantizerConfig(kind="dorefa", bits=2),
}


def run_folded(qmodel: nn.Module, qm) -> nn.Module:
    """A float model that computes what the QuantizedModel ``qm`` describes: dequantized
    (folded) weights and biases, BN layers folded away, activation quantizers as calibrated."""
    model = copy.deepcopy(qmodel)
    mods = dict(model.named_modules())
    for name, layer in qm.layers.items():
        if layer.op == "add":
            continue
        mod = mods[name]
        with torch.no_grad():
            mod.weight.copy_(layer.dequantized_weight())
        if mod.weight_quantizer is not None:
            mod.weight_quantizer.disable()
        bias = layer.dequantized_bias()
        if bias is not None:
            mod.bias = nn.Parameter(bias.clone())
            mod.bias_quantizer = None
    for bn in qm.folded_bn:
        parent, _, child = bn.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, nn.Identity())
    return model.eval()


@pytest.mark.parametrize("spec_name", sorted(SPECS))
def test_convert_integer_weights_and_exact_dequantization(spec_name, helpers):
    torch.manual_seed(0)
    model = helpers.randomize_batchnorm(create_model("resnet8"))
    q = prepare(model, QuantSpec(weight=SPECS[spec_name], act=QuantizerConfig(kind="lsq", bits=8),
                                 residual=True))
    calibrate(q, [torch.randn(4, 3, 32, 32)])
    qm = convert(q)
    assert set(qm.layers) == {n for n, _ in quant_layers(q)}
    for name, mod, wq in weight_quantizers(q):
        layer = qm.layers[name]
        assert layer.weight_codes.dtype == torch.int32 and layer.weight_codes.shape == mod.weight.shape
        qp = layer.weight_qparams
        assert qp.scale.shape == wq.granularity.param_shape(mod.weight.shape)
        assert qp.zero_point.shape == qp.scale.shape and qp.bits.dtype == torch.int32
        # dequantized_weight() is exactly the fake-quantized weight used in training
        assert torch.equal(layer.dequantized_weight(), wq(mod.weight).detach()), name
        assert layer.input_qparams[0] is not None and layer.input_qparams[0].max_bits == 8
    adds = [layer for layer in qm.layers.values() if layer.op == "add"]
    assert adds and all(len(a.input_qparams) == 2 for a in adds)
    # everything that is not a quantized layer's tensor is kept in float
    assert "bn1.running_mean" in qm.float_state and "conv1.weight" not in qm.float_state
    assert not any("quantizer" in k for k in qm.float_state)
    rows = qm.summary()
    assert rows[0]["name"] == "conv1" and rows[0]["input_bits"] == [8]


def test_convert_keeps_float_layers_and_bias_codes():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2))
    spec = QuantSpec(weight=SPECS["lsq_channel"], act=None,
                     bias=QuantizerConfig(kind="uniform", bits=8),
                     overrides=(LayerOverride("@last", weight="float"),))
    q = prepare(model, spec)
    qm = convert(q)
    first, last = qm.layers["0"], qm.layers["2"]
    assert last.weight_codes is None and torch.equal(last.dequantized_weight(), model[2].weight)
    assert first.bias_codes is not None
    assert torch.equal(first.dequantized_bias(), q[0].bias_quantizer(q[0].bias).detach())
    assert first.input_qparams == [None]
    x = torch.randn(3, 6)
    with torch.no_grad():  # the converted tensors compute exactly what the fake-quant model does
        assert torch.equal(run_folded(q, qm)(x), q.eval()(x))


def test_qparams_carry_rounding_and_zero_point_storage_of_their_quantizer():
    """What an exporter needs and only the module knew: convert copies it into QParams."""
    torch.manual_seed(0)
    spec = QuantSpec(weight=SPECS["nested_channel"], bias=SPECS["uniform_tensor_asym"],
                     act=QuantizerConfig(kind="uniform", bits=4, symmetric=False, rounding="floor"))
    q = prepare(nn.Sequential(nn.Linear(6, 5)), spec)
    calibrate(q, [torch.randn(8, 6)])
    layer = convert(q).layers["0"]
    w, b, a = layer.weight_qparams, layer.bias_qparams, layer.input_qparams[0]
    assert (w.rounding, w.stored_zero_point) == ("floor", False)
    assert (b.rounding, b.stored_zero_point) == ("round", True)
    assert (a.rounding, a.stored_zero_point) == ("floor", True)


def test_fold_bn_after_an_unquantized_layer_folds_its_float_state(helpers):
    model = helpers.randomize_batchnorm(nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3), nn.BatchNorm2d(2))).eval()
    q = prepare(model, QuantSpec(weight=SPECS["lsq_channel"], act=None,
                                 overrides=(LayerOverride("@first", skip=True),))).eval()
    x = torch.randn(2, 3, 8, 8)
    qm = convert(q, fold_bn=True, example_input=x)
    assert qm.fold_bn and qm.fold_structure == [["0", "1"]] and qm.folded_bn == ["4"]
    assert sorted(qm.float_state) == ["0.bias", "0.weight"]  # both BNs gone
    with torch.no_grad():
        y = torch.relu(nn.functional.conv2d(x, qm.float_state["0.weight"], qm.float_state["0.bias"]))
        assert torch.allclose(y, torch.relu(model[1](model[0](x))), atol=1e-5)


@pytest.mark.parametrize("arch,kwargs", [("resnet20", {}), ("mobilenet_v2", {"width_mult": 0.35})])
@pytest.mark.parametrize("wspec", ["lsq_channel", "uniform_tensor_asym"])
def test_fold_bn_keeps_the_eval_output(arch, kwargs, wspec, helpers):
    """Weights quantized, activations float: the folded model equals the model with BN."""
    torch.manual_seed(2)
    model = helpers.randomize_batchnorm(create_model(arch, **kwargs))
    q = prepare(model, QuantSpec(weight=SPECS[wspec], act=None)).eval()
    x = torch.randn(4, 3, 32, 32)
    qm = convert(q, fold_bn=True)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert len(qm.folded_bn) == n_bn  # every BN follows a conv in these models
    folded = run_folded(q, qm)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    for name, layer in qm.layers.items():
        if layer.folded_bn:  # codes unchanged, scales absorbed the BN multiplier (per channel)
            assert torch.equal(layer.weight_codes, q.get_submodule(name).weight_quantizer.quantize(
                q.get_submodule(name).weight))
            assert layer.weight_qparams.granularity.mode == "channel"
            assert layer.weight_qparams.scale.shape == (layer.weight_codes.shape[0],)
    with torch.no_grad():
        y, y_folded = q(x), folded(x)
    assert torch.allclose(y_folded, y, rtol=1e-4, atol=1e-4 * float(y.abs().max()))


def test_fold_bn_with_activation_quantizers_matches_up_to_rounding_flips(helpers):
    """With 8-bit activations, float rounding of the folded product can move a value across a
    rounding boundary of the next activation quantizer: differences stay a few steps at most."""
    torch.manual_seed(3)
    model = helpers.randomize_batchnorm(create_model("resnet20"))
    q = prepare(model, QuantSpec(weight=SPECS["lsq_channel"],
                                 act=QuantizerConfig(kind="uniform", bits=8), residual=True))
    x = torch.randn(8, 3, 32, 32)
    calibrate(q, [x])
    q.eval()
    folded = run_folded(q, convert(q, fold_bn=True))
    with torch.no_grad():
        y, y_folded = q(x), folded(x)
    assert torch.equal(y.argmax(1), y_folded.argmax(1))
    assert float((y - y_folded).abs().mean()) < 0.01 * float(y.abs().mean())


def test_convert_errors(helpers):
    with pytest.raises(ConfigError, match="no quantized layers; call lowbit.prepare"):
        convert(nn.Sequential(nn.Linear(2, 2)))
    q = prepare(nn.Sequential(nn.Linear(2, 2)), QuantSpec())  # act quantizer never calibrated
    with pytest.raises(ConfigError, match="never calibrated.*run lowbit.calibrate"):
        convert(q)
    model = helpers.randomize_batchnorm(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
    col = QuantizerConfig(kind="uniform", bits=4, granularity="column")
    q = prepare(model, QuantSpec(weight=col, act=None))
    with pytest.raises(ConfigError, match="per-column weight scales cannot absorb"):
        convert(q, fold_bn=True, example_input=torch.zeros(1, 3, 8, 8))
    q = prepare(model, QuantSpec(weight=SPECS["log2_channel"], act=None))
    with pytest.raises(ConfigError, match="cannot fold batch norm into log2 weights"):
        convert(q, fold_bn=True, example_input=torch.zeros(1, 3, 8, 8))
    with pytest.raises(ConfigError, match="pass example_input"):
        convert(q, fold_bn=True)
