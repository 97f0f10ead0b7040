"""Batch-norm folding: eval output unchanged, BN replaced by Identity, on real models."""

import pytest
import torch
from torch import nn

from lowbit import QuantizerConfig, QuantSpec, calibrate, find_bn_pairs, fold_batchnorm, prepare
from lowbit.errors import ConfigError
from lowbit.fold import apply_fold_structure
from lowbit.models import create_model


def randomize_bn(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
    return model


def n_bn(model):
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@pytest.mark.parametrize("arch,kwargs", [("resnet20", {}), ("mobilenet_v2", {"width_mult": 0.35}),
                                         ("resnet8", {})])
def test_fold_keeps_eval_output(arch, kwargs):
    torch.manual_seed(0)
    model = randomize_bn(create_model(arch, **kwargs)).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
    bns = n_bn(model)
    folded = fold_batchnorm(model)  # registry models carry their input size
    assert n_bn(folded) == 0 and n_bn(model) == bns  # a copy; the original keeps its BNs
    pairs = folded.lowbit_folded_pairs
    assert len(pairs) == bns
    for layer_name, bn_name in pairs:
        assert isinstance(folded.get_submodule(bn_name), nn.Identity)
        assert folded.get_submodule(layer_name).bias is not None  # bias-free convs gained one
    with torch.no_grad():
        out = folded.eval()(x)
    assert torch.allclose(out, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()) + 1e-6)


def test_fold_by_hand():
    conv = nn.Conv2d(1, 2, 1, bias=True)
    bn = nn.BatchNorm2d(2, eps=0.0)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([2.0, 3.0]).reshape(2, 1, 1, 1))
        conv.bias.copy_(torch.tensor([1.0, -1.0]))
        bn.running_mean.copy_(torch.tensor([0.5, 1.0]))
        bn.running_var.copy_(torch.tensor([4.0, 0.25]))
        bn.weight.copy_(torch.tensor([1.0, 2.0]))
        bn.bias.copy_(torch.tensor([0.0, 3.0]))
    folded = fold_batchnorm(nn.Sequential(conv, bn), torch.zeros(1, 1, 2, 2))
    # W' = W * gamma / sigma: 2 * 1/2 = 1, 3 * 2/0.5 = 12; b' = (b - mu) * gamma/sigma + beta
    assert folded[0].weight.flatten().tolist() == [1.0, 12.0]
    assert folded[0].bias.tolist() == [0.25, (-1 - 1.0) * 4 + 3]


def test_linear_batchnorm1d_and_unpaired_bn():
    torch.manual_seed(1)
    model = randomize_bn(nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(),
                                       nn.BatchNorm1d(6), nn.Linear(6, 2))).eval()
    x = torch.randn(5, 4)
    assert find_bn_pairs(model, x) == [("0", "1")]  # the second BN follows a ReLU: not folded
    with torch.no_grad():
        ref = model(x)
    folded = fold_batchnorm(model, x)
    assert isinstance(folded[1], nn.Identity) and isinstance(folded[3], nn.BatchNorm1d)
    with torch.no_grad():
        assert torch.allclose(folded(x), ref, atol=1e-5)


def test_fold_a_prepared_model_reinitialises_weight_quantizers():
    torch.manual_seed(2)
    model = randomize_bn(create_model("resnet8"))
    spec = QuantSpec(weight=QuantizerConfig(kind="lsq", bits=8, granularity="channel"), act=None)
    q = prepare(model, spec).eval()
    folded = fold_batchnorm(q)
    wq = folded.conv1.weight_quantizer
    expected = prepare(nn.Sequential(nn.Conv2d(3, 16, 3)), spec)[0].weight_quantizer
    expected.init_from_tensor(folded.conv1.weight)
    assert torch.equal(wq.scale, expected.scale)  # scales follow the folded weights
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():  # 8-bit weights: the folded quantized model is close to the float one
        ref = model.eval()(x)
        assert torch.allclose(folded(x), ref, atol=0.05 * float(ref.abs().max()))


def test_inplace_and_apply_fold_structure():
    torch.manual_seed(3)
    model = randomize_bn(create_model("resnet8")).eval()
    same = fold_batchnorm(model, inplace=True)
    assert same is model and n_bn(model) == 0
    fresh = create_model("resnet8")
    apply_fold_structure(fresh, model.lowbit_folded_pairs)
    fresh.load_state_dict(model.state_dict())  # a folded checkpoint loads into the structure
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(x), model(x))


def test_fold_needs_an_example_input_for_foreign_models():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    with pytest.raises(ConfigError, match="pass example_input=torch.zeros"):
        fold_batchnorm(model)
