"""prepare on real architectures: ResNet-20 (residual adds), MobileNetV2 (depthwise), MLP,
a transformer block built from Linear layers, Conv1d/grouped convs, nn.MultiheadAttention."""

import pytest
import torch
from torch import nn

import lowbit
from lowbit import QuantizerConfig, QuantSpec, calibrate, prepare
from lowbit.errors import CheckpointError, ConfigError
from lowbit.models import create_model
from lowbit.nn import (Add, QuantAdd, QuantMixin, act_quantizers, load_float_state_dict,
                       quant_layers, quantizer_parameters, weight_quantizers)

W4A8 = QuantSpec(weight=QuantizerConfig(kind="lsq", bits=4, granularity="channel"),
                 act=QuantizerConfig(kind="lsq", bits=8), residual=True)


def count(model, cls):
    return sum(isinstance(m, cls) for m in model.modules())


def test_resnet20_every_conv_linear_and_add_is_wrapped():
    torch.manual_seed(0)
    model = create_model("resnet20")
    q = prepare(model, W4A8)
    n_conv, n_lin, n_add = count(model, nn.Conv2d), count(model, nn.Linear), count(model, Add)
    assert (n_conv, n_lin, n_add) == (21, 1, 9)
    layers = dict(quant_layers(q))
    assert len(layers) == n_conv + n_lin + n_add
    assert all(isinstance(m, QuantMixin) for n, m in layers.items() if not n.endswith("add"))
    assert all(isinstance(q.get_submodule(f"layer{i}.0.add"), QuantAdd) for i in (1, 2, 3))
    # one weight quantizer per Conv/Linear, per output channel; one act quantizer per input
    wq = {n: w for n, _, w in weight_quantizers(q)}
    assert len(wq) == 22
    assert wq["layer2.0.conv1"].scale.shape == (32,)
    assert wq["layer2.0.downsample.0"].scale.shape == (32,)
    assert len(list(act_quantizers(q))) == 22 + 2 * 9
    # prepare copies: the float model is untouched; parameters keep their names
    assert count(model, QuantMixin) == 0
    assert set(model.state_dict()) <= set(q.state_dict())
    # train-mode forward initialises activation quantizers from the batch and backprops
    x = torch.randn(4, 3, 32, 32)
    q(x).sum().backward()
    assert all(bool(a.initialized) for _, a in act_quantizers(q))
    assert all(p.grad is not None for p in quantizer_parameters(q))
    assert q.conv1.weight.grad is not None


def test_resnet20_without_residual_leaves_adds_alone():
    q = prepare(create_model("resnet20"), QuantSpec())
    assert count(q, QuantAdd) == 0 and count(q, Add) == 9


def test_mobilenet_v2_depthwise_convolutions():
    torch.manual_seed(1)
    model = create_model("mobilenet_v2", width_mult=0.35)
    q = prepare(model, W4A8)
    depthwise = [(n, m) for n, m in quant_layers(q)
                 if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert depthwise and all(m.groups == m.in_channels == m.out_channels for _, m in depthwise)
    for name, m in depthwise:
        assert m.weight_quantizer.scale.shape == (m.out_channels,)
    assert len([1 for _, m in quant_layers(q) if isinstance(m, nn.Conv2d)]) == count(model, nn.Conv2d)
    x = torch.randn(2, 3, 32, 32)
    calibrate(q, [x])
    q.eval()
    with torch.no_grad():
        y, y_float = q(x), model.eval()(x)
    assert y.shape == (2, 10) and torch.isfinite(y).all()
    # per-group weights (groups of 3 of the 3x3 kernels) on the depthwise convs only
    group = {"granularity": "group", "group_size": 3}
    g = prepare(model, QuantSpec(act=None, overrides=[lowbit.LayerOverride(n, weight=group)
                                                      for n, _ in depthwise]))
    layers = dict(quant_layers(g))
    dw = layers[depthwise[0][0]]
    assert dw.weight_quantizer.scale.shape == (dw.out_channels, 3)
    assert layers["features.0.0"].weight_quantizer.granularity.mode == "channel"


def test_mlp_and_8bit_is_close_to_float():
    torch.manual_seed(2)
    model = create_model("mlp").eval()
    spec = QuantSpec(weight=QuantizerConfig(kind="uniform", bits=8, granularity="channel"),
                     act=QuantizerConfig(kind="uniform", bits=8))
    q = prepare(model, spec)
    assert [n for n, _ in quant_layers(q)] == ["fc1", "fc2"]
    x = torch.rand(16, 1, 28, 28)
    calibrate(q, [x])
    q.eval()
    with torch.no_grad():
        y, ref = q(x), model(x)
    assert not torch.equal(y, ref)
    assert float((y - ref).abs().max()) < 0.02 * float(ref.abs().max())


def test_transformer_block_linear_layers(helpers):
    torch.manual_seed(3)
    block = helpers.TransformerBlock(dim=16, heads=2)
    spec = QuantSpec(weight=QuantizerConfig(kind="lsq", bits=4, granularity="channel"),
                     act=QuantizerConfig(kind="lsq", bits=8), residual=True)
    q = prepare(block, spec)
    names = [n for n, _ in quant_layers(q)]
    assert names == ["attn.q", "attn.k", "attn.v", "attn.proj", "mlp.0", "mlp.2", "add1", "add2"]
    assert isinstance(q.ln1, nn.LayerNorm) and not isinstance(q.ln1, QuantMixin)
    x = torch.randn(2, 5, 16)
    out = q(x)
    out.pow(2).sum().backward()
    assert out.shape == x.shape
    assert all(p.grad is not None for p in quantizer_parameters(q))
    # the weights really are quantized: at most 16 levels per output row
    w = q.attn.q.quantized_weight().detach()
    assert max(len(torch.unique(row)) for row in w) <= 16


def test_multihead_attention_is_refused_when_asked_for(helpers):
    with pytest.raises(ConfigError, match="cannot quantize module type 'multiheadattention'.*"
                                          "build attention from nn.Linear"):
        QuantSpec(layers=("linear", "multiheadattention"))
    with pytest.raises(ConfigError, match=r"'attn' \(MultiheadAttention\), which lowbit cannot "
                                          r"quantize.*quantizable layers: head"):
        prepare(helpers.MHABlock(), QuantSpec(overrides=[lowbit.LayerOverride("attn", weight={"bits": 4})]))
    with pytest.raises(ConfigError, match="inside MultiheadAttention 'attn'.*would do nothing"):
        prepare(helpers.MHABlock(), QuantSpec(exclude=("attn.out_proj",)))


def test_prepare_wraps_only_the_linears_it_can_next_to_multihead_attention(helpers):
    """MultiheadAttention reads out_proj.weight directly; wrapping it would quantize nothing."""
    torch.manual_seed(4)
    block = helpers.MHABlock()
    q = prepare(block, QuantSpec(act=None))
    assert [n for n, _ in quant_layers(q)] == ["head"]
    assert not isinstance(q.attn.out_proj, QuantMixin)
    x = torch.randn(2, 3, 16)
    with torch.no_grad():  # the attention part is unchanged; only the head is quantized
        a_q = q.attn(x, x, x, need_weights=False)[0]
        a_f = block.attn(x, x, x, need_weights=False)[0]
    assert torch.equal(a_q, a_f)
    cost = lowbit.account(q, x[:1])
    assert [layer.name for layer in cost.layers] == ["head"]


def test_conv1d_and_grouped_convolutions():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv1d(4, 8, 3, padding=1), nn.ReLU(), nn.Identity(),
                          nn.Conv1d(8, 8, 3, groups=2), nn.Flatten(), nn.Linear(8 * 8, 3))
    q = prepare(model, W4A8)
    assert [n for n, _ in quant_layers(q)] == ["0", "3", "5"]
    assert q[3].weight_quantizer.scale.shape == (8,)
    assert q(torch.randn(2, 4, 10)).shape == (2, 3)
    conv2d = prepare(nn.Sequential(nn.Conv2d(8, 12, 3, groups=4)), QuantSpec(layers=("conv2d",)))
    assert conv2d[0].weight_quantizer.scale.shape == (12,)
    assert conv2d(torch.randn(1, 8, 5, 5)).shape == (1, 12, 3, 3)


def test_float_checkpoint_loads_into_prepared_model():
    torch.manual_seed(6)
    float_model = create_model("resnet20")
    q = prepare(create_model("resnet20"), W4A8)
    before = q.conv1.weight_quantizer.scale.detach().clone()
    load_float_state_dict(q, float_model.state_dict())
    assert torch.equal(q.conv1.weight, float_model.conv1.weight)
    assert torch.equal(q.layer3[2].bn2.running_var, float_model.layer3[2].bn2.running_var)
    # weight quantizers were re-initialised from the loaded weights
    assert not torch.equal(q.conv1.weight_quantizer.scale, before)
    ref = prepare(float_model, W4A8).conv1.weight_quantizer.scale
    assert torch.equal(q.conv1.weight_quantizer.scale, ref)
    bad = dict(float_model.state_dict())
    bad.pop("fc.weight")
    bad["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"missing \['fc.weight'\].*unexpected \['extra.weight'\]"):
        load_float_state_dict(q, bad)


def test_prepared_model_state_dict_round_trip():
    torch.manual_seed(7)
    q = prepare(create_model("resnet8"), W4A8)
    x = torch.randn(2, 3, 32, 32)
    calibrate(q, [x])
    q2 = prepare(create_model("resnet8"), W4A8)
    q2.load_state_dict(q.state_dict())
    q.eval(), q2.eval()
    with torch.no_grad():
        assert torch.equal(q(x), q2(x))


def test_prepare_refuses_prepared_models_and_non_modules():
    q = prepare(nn.Sequential(nn.Linear(3, 3)))
    with pytest.raises(ConfigError, match="already prepared"):
        prepare(q)
    with pytest.raises(ConfigError, match="needs an nn.Module"):
        prepare("resnet20")
    with pytest.raises(ConfigError, match="no layer matches.*nothing to quantize"):
        prepare(nn.Sequential(nn.ReLU()))


def test_inplace_prepare_keeps_the_same_tensors():
    model = nn.Sequential(nn.Linear(3, 4))
    w = model[0].weight
    q = prepare(model, inplace=True)
    assert q is model and q[0].weight is w and isinstance(q[0], nn.Linear)
