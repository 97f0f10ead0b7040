"""QuantSpec.int_bias: biases on the int32 accumulator grid s_x * s_w, as integer runtimes add them."""

import pytest
import torch
from torch import nn

from lowbit import LayerOverride, QuantizerConfig, QuantSpec, calibrate, convert, fold_batchnorm, prepare
from lowbit.errors import ConfigError
from lowbit.models import create_model

W = QuantizerConfig(kind="lsq", bits=4, granularity="channel")
A = QuantizerConfig(kind="lsq", bits=4)


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, bias=True), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))


def prepared(spec: QuantSpec) -> nn.Module:
    model = net().eval()
    x = torch.randn(16, 3, 8, 8)
    model = prepare(fold_batchnorm(model, x[:1]), spec)
    calibrate(model, [x])
    return model.eval()


def on_grid(bias: torch.Tensor, acc: torch.Tensor) -> bool:
    codes = bias / acc
    return bool(torch.all((codes - torch.round(codes)).abs() < 1e-3))


def test_biases_sit_on_the_accumulator_grid_in_forward_and_convert():
    model = prepared(QuantSpec(weight=W, act=A, int_bias=True))
    qm = convert(model)
    for name in ("0", "3", "6"):
        mod = model.get_submodule(name)
        acc = mod.input_quantizer.effective_scale() * mod.weight_quantizer.effective_scale().reshape(-1)
        assert mod.int_bias_active()
        qb = mod.quantized_bias()
        assert on_grid(qb, acc) and not on_grid(mod.bias, acc)  # the float bias is off the grid
        assert torch.equal(qm.layers[name].bias, qb.detach())  # convert stores what forward adds


def test_float_bias_is_the_default_and_a_float_input_keeps_it():
    plain = prepared(QuantSpec(weight=W, act=A))
    assert not plain.get_submodule("0").int_bias_active()
    spec = QuantSpec(weight=W, act=A, int_bias=True, overrides=(LayerOverride("3", act="float"),))
    model = prepared(spec)
    assert model.get_submodule("0").int_bias_active() and not model.get_submodule("3").int_bias_active()
    mod = model.get_submodule("3")
    assert torch.equal(mod.quantized_bias(), mod.bias)


def test_disabling_a_quantizer_restores_the_float_bias():
    model = prepared(QuantSpec(weight=W, act=A, int_bias=True))
    mod = model.get_submodule("0")
    mod.input_quantizer.disable()
    assert not mod.int_bias_active() and torch.equal(mod.quantized_bias(), mod.bias)


def test_bias_gets_a_straight_through_gradient():
    model = prepared(QuantSpec(weight=W, act=A, int_bias=True)).train()
    model(torch.randn(4, 3, 8, 8)).sum().backward()
    assert model.get_submodule("6").bias.grad is not None
    assert torch.all(model.get_submodule("6").bias.grad == 4)  # d(sum)/d(bias) per logit, batch 4


@pytest.mark.parametrize("weight, act, match", [
    (QuantizerConfig(kind="learned_range", bits=4, granularity="channel"), A, "learned_range"),
    (W, QuantizerConfig(kind="dorefa", bits=4), "dorefa"),
    (QuantizerConfig(kind="lsq", bits=4, granularity="column"), A, "axis 1"),
    (QuantizerConfig(kind="lsq", bits=4, granularity="group", group_size=3), A, "group"),
])
def test_unsupported_quantizers_are_refused(weight, act, match):
    with pytest.raises(ConfigError, match=match):
        prepare(fold_batchnorm(net().eval(), torch.zeros(1, 3, 8, 8)),
                QuantSpec(weight=weight, act=act, int_bias=True))


def test_int_bias_and_a_bias_quantizer_are_exclusive():
    with pytest.raises(ConfigError, match="one of bias / int_bias"):
        QuantSpec(weight=W, act=A, bias=QuantizerConfig(kind="uniform", bits=8), int_bias=True)


def test_prepare_refuses_batch_norms_that_are_not_folded_yet():
    model = create_model("resnet8").eval()
    with pytest.raises(ConfigError, match="fold them first"):
        prepare(model, QuantSpec(weight=W, act=A, int_bias=True))
    prepare(fold_batchnorm(model), QuantSpec(weight=W, act=A, int_bias=True))


def test_unfolded_batch_norms_are_refused_on_any_model():
    """Not only registry models: a plain conv -> BN Sequential is refused, traced when an
    example input is given, and accepted once folded."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 2))
    spec = QuantSpec(weight=W, act=A, int_bias=True)
    with pytest.raises(ConfigError, match="has 1 batch norm\\(s\\) \\(e.g. 1\\) .*example_input"):
        prepare(model, spec)
    x = torch.zeros(1, 3, 8, 8)
    with pytest.raises(ConfigError, match="1 batch norm\\(s\\) still follow quantized layers \\(e.g. 1 after 0\\)"):
        prepare(model, spec, example_input=x)
    prepare(fold_batchnorm(model, x), spec)
    bn_first = nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 4, 3))  # a BN on the input folds nowhere
    prepare(bn_first, spec, example_input=x)
