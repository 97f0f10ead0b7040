"""Which layers prepare wraps and with what: types, name patterns, overrides, errors."""

import pytest
import torch
from torch import nn

from lowbit import LayerOverride, QuantizerConfig, QuantSpec, prepare, set_quant_state
from lowbit.errors import ConfigError
from lowbit.models import create_model
from lowbit.nn import act_quantizers, quant_layers, quant_summary, quantizers, weight_quantizers
from lowbit.nn.control import project_quantizers

BASE = QuantSpec(weight=QuantizerConfig(kind="lsq", bits=4, granularity="channel"),
                 act=QuantizerConfig(kind="lsq", bits=4))


def names(model):
    return [n for n, _ in quant_layers(model)]


def wbits(model):
    return {n: (w.bits if w is not None else None) for n, m, w in weight_quantizers(model)}


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return create_model("resnet8")


def test_select_by_type(resnet):
    assert names(prepare(resnet, QuantSpec(layers=("linear",)))) == ["fc"]
    convs = names(prepare(resnet, QuantSpec(layers=("conv",))))
    assert "fc" not in convs and len(convs) == sum(isinstance(m, nn.Conv2d) for m in resnet.modules())
    assert names(prepare(resnet, QuantSpec(layers=("conv2d",)))) == convs
    assert names(prepare(nn.Sequential(nn.Conv1d(2, 2, 1), nn.Conv2d(2, 2, 1)),
                         QuantSpec(layers=("conv1d",)))) == ["0"]


@pytest.mark.parametrize("bad", ["lstm", "conv3d", "Linear", "multiheadattention", "embedding"])
def test_unquantizable_module_type_is_a_config_error(bad):
    with pytest.raises(ConfigError, match=f"cannot quantize module type {bad!r}: lowbit wraps "
                                          "conv, conv1d, conv2d, linear"):
        QuantSpec(layers=(bad,))


def test_exclude_glob_regex_first_last(resnet):
    all_names = names(prepare(resnet, BASE))
    first, last = all_names[0], all_names[-1]
    assert (first, last) == ("conv1", "fc")
    got = names(prepare(resnet, QuantSpec(exclude=("layer1.*",))))
    assert got == [n for n in all_names if not n.startswith("layer1.")]
    got = names(prepare(resnet, QuantSpec(exclude=(r"re:layer[23]\.0\.conv\d",))))
    assert set(all_names) - set(got) == {"layer2.0.conv1", "layer2.0.conv2", "layer3.0.conv1",
                                         "layer3.0.conv2"}
    got = names(prepare(resnet, QuantSpec(exclude=("@first", "@last"))))
    assert got == all_names[1:-1]


def test_first_and_last_layer_at_8_bits(resnet):
    spec = BASE.__class__(**{**BASE.__dict__, "overrides": (
        LayerOverride("@first", weight={"bits": 8}, act={"bits": 8}),
        LayerOverride("@last", weight={"bits": 8}, act={"bits": 8}))})
    q = prepare(resnet, spec)
    bits = wbits(q)
    assert bits["conv1"] == 8 and bits["fc"] == 8
    assert {b for n, b in bits.items() if n not in ("conv1", "fc")} == {4}
    acts = dict(act_quantizers(q))
    assert acts["conv1"].bits == 8 and acts["fc"].bits == 8 and acts["layer1.0.conv1"].bits == 4


def test_first_and_last_layer_in_float(resnet):
    spec = QuantSpec(weight=BASE.weight, act=BASE.act, overrides=(
        LayerOverride("@first", weight="float", act="float"), LayerOverride("@last", skip=True)))
    q = prepare(resnet, spec)
    assert "fc" not in names(q) and not hasattr(q.fc, "weight_quantizer")
    assert q.conv1.weight_quantizer is None and q.conv1.input_quantizer is None
    assert q.layer1[0].conv1.weight_quantizer is not None
    assert quant_summary(q)["conv1"] == {"type": "Conv2d", "weight": "float", "input": "float"}
    # a float input on the first layer, float weights elsewhere stay as configured
    x = torch.randn(2, 3, 32, 32)
    assert q(x).shape == (2, 10)


def test_later_overrides_win_and_globs_apply_to_many(resnet):
    spec = QuantSpec(weight=BASE.weight, act=BASE.act, overrides=(
        LayerOverride("layer*", weight={"bits": 3}),
        LayerOverride("layer3.*", weight={"bits": 2, "kind": "uniform"})))
    bits = wbits(prepare(resnet, spec))
    assert bits["layer1.0.conv1"] == 3 and bits["layer3.0.conv2"] == 2 and bits["conv1"] == 4
    q = prepare(resnet, spec)
    assert q.layer3[0].conv2.weight_quantizer.config.kind == "uniform"


def test_unknown_names_list_what_exists(resnet):
    with pytest.raises(ConfigError) as info:
        prepare(resnet, QuantSpec(overrides=(LayerOverride("layer9.*", skip=True),)))
    msg = str(info.value)
    assert "pattern 'layer9.*' matches no layer; layers that exist:" in msg
    assert "conv1" in msg and "layer3.0.downsample.0" in msg and "fc" in msg
    with pytest.raises(ConfigError, match="pattern 're:nothing' matches no layer"):
        prepare(resnet, QuantSpec(exclude=("re:nothing",)))


def test_pattern_on_a_module_that_cannot_be_quantized(resnet):
    with pytest.raises(ConfigError, match=r"pattern 'bn1' matches 'bn1' \(BatchNorm2d\), which "
                                          r"lowbit cannot quantize.*quantizable layers: conv1"):
        prepare(resnet, QuantSpec(overrides=(LayerOverride("bn1", weight={"bits": 8}),)))
    with pytest.raises(ConfigError, match=r"'fc' \(Linear\), which lowbit cannot quantize with "
                                          r"layers=\['conv'\]"):
        prepare(resnet, QuantSpec(layers=("conv",), exclude=("fc",)))


def test_bad_override_values():
    with pytest.raises(ConfigError, match="unknown weight override field 'bit'.*did you mean 'bits'"):
        LayerOverride("fc", weight={"bit": 8})
    with pytest.raises(ConfigError, match="mapping of quantizer fields or 'float'"):
        LayerOverride("fc", act="int8")
    with pytest.raises(ConfigError, match="non-empty string"):
        LayerOverride("")
    with pytest.raises(ConfigError, match="bits must be in 1..16, got 0"):
        prepare(nn.Sequential(nn.Linear(2, 2)), QuantSpec(overrides=(LayerOverride("0", weight={"bits": 0}),)))
    with pytest.raises(ConfigError, match="override weight: .* leaves in float; set the base weight config first"):
        prepare(nn.Sequential(nn.Linear(2, 2)),
                QuantSpec(weight=None, overrides=(LayerOverride("0", weight={"bits": 4}),)))
    with pytest.raises(ConfigError, match="override bias: .* leaves in float; set the base bias config first"):
        prepare(nn.Sequential(nn.Linear(2, 2)), QuantSpec(overrides=(LayerOverride("0", bias={"bits": 8}),)))


def test_spec_from_plain_mappings():
    spec = QuantSpec(weight={"kind": "uniform", "bits": 6}, act=None,
                     overrides=[{"pattern": "@last", "weight": "float"}])
    assert spec.weight.bits == 6 and spec.overrides[0].weight == "float"
    q = prepare(nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1)), spec)
    assert q[0].weight_quantizer.bits == 6 and q[1].weight_quantizer is None
    assert q[0].input_quantizer is None


def test_bias_quantization_is_optional():
    model = nn.Sequential(nn.Linear(4, 3))
    assert prepare(model)[0].bias_quantizer is None  # float by default
    q = prepare(model, QuantSpec(bias=QuantizerConfig(kind="uniform", bits=8, granularity="channel")))
    bq = q[0].bias_quantizer
    assert bq is not None and bq.granularity.mode == "tensor" and bq.bits == 8
    assert torch.equal(q[0].quantized_bias(), bq(q[0].bias))


def test_set_quant_state_and_projection():
    torch.manual_seed(1)
    q = prepare(create_model("resnet8"), BASE)
    x = torch.randn(2, 3, 32, 32)
    q(x)
    counts = set_quant_state(q, weights=False, act_bits=6)
    assert counts["weights"] == len(list(weight_quantizers(q)))
    assert all(not w.enabled for _, _, w in weight_quantizers(q))
    assert all(a.bits == 6 for _, a in act_quantizers(q))
    set_quant_state(q, weights=True, weight_bits=2, freeze=True)
    assert all(w.enabled and w.bits == 2 and w.frozen for _, _, w in weight_quantizers(q))
    set_quant_state(q, freeze=False)
    with torch.no_grad():
        q.conv1.weight_quantizer.scale.mul_(-1)  # an optimizer step made a scale negative
    project_quantizers(q)
    assert bool((q.conv1.weight_quantizer.scale > 0).all())
    with pytest.raises(ConfigError):
        set_quant_state(q, weight_bits=0)
    assert len(list(quantizers(q, "weight"))) == len(list(weight_quantizers(q)))


def test_phase_bits_change_the_default_and_overrides_keep_their_bits(resnet):
    """A phase's weight_bits/act_bits re-bit the layers that follow the default; a layer whose
    bits an override sets (first/last at 8, the input at 8) keeps them through 8 -> 4 -> 2."""
    spec = QuantSpec(weight=QuantizerConfig(kind="dorefa", bits=8),
                     act=QuantizerConfig(kind="dorefa", bits=8), residual=True,
                     overrides=(LayerOverride("@first", act={"kind": "uniform", "bits": 8}),
                                LayerOverride("@last", weight={"bits": 8}),
                                LayerOverride("layer1.*", act={"kind": "uniform"}),  # no bits: follows
                                LayerOverride("layer2.0.add", act={"bits": 6})))
    q = prepare(resnet, spec)
    for bits in (4, 2):
        set_quant_state(q, weight_bits=bits, act_bits=bits)
        assert q.conv1.input_quantizer.bits == 8 and q.conv1.weight_quantizer.bits == bits
        assert q.fc.weight_quantizer.bits == 8 and q.fc.input_quantizer.bits == bits
        assert q.layer1[0].conv1.input_quantizer.bits == bits
        assert [a.bits for a in q.layer2[0].add.input_quantizers] == [6, 6]
        others = [w.bits for n, _, w in weight_quantizers(q) if n != "fc"]
        assert set(others) == {bits}


def test_phase_bits_without_overrides_rebit_every_quantizer(resnet):
    q = prepare(resnet, BASE)
    set_quant_state(q, weight_bits=3, act_bits=5)
    assert {w.bits for _, _, w in weight_quantizers(q)} == {3}
    assert {a.bits for _, a in act_quantizers(q)} == {5}
