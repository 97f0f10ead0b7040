"""prepare wraps the tensors a layer uses and keeps the layer's own forward (nn/modules.py), and
the exact linearity probe that decides BN folding and integer execution (nn/linearity.py)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

from lowbit import QuantizerConfig, QuantSpec, calibrate, prepare
from lowbit.fold import fold_batchnorm
from lowbit.nn.control import set_quant_state
from lowbit.nn.linearity import linear_probe, module_is_linear
from lowbit.nn.modules import has_own_forward

SPEC = QuantSpec(weight=QuantizerConfig(kind="lsq", bits=4, granularity="channel"),
                 act=QuantizerConfig(kind="lsq", bits=4))


class Scaled(nn.Conv2d):
    """Own forward: a learned gain on the output (an extra parameter the layer owns)."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.gain = nn.Parameter(torch.full((self.out_channels, 1, 1), 2.0))

    def forward(self, x):
        return super().forward(x) * self.gain


class Padded(nn.Conv2d):
    """Own forward: asymmetric zero padding, then the plain convolution (linear)."""

    def forward(self, x):
        return super().forward(F.pad(x, (0, 1, 0, 1)))[..., :-1, :-1]


class Standardized(nn.Conv2d):
    def forward(self, x):
        w = self.weight
        w = (w - w.mean((1, 2, 3), keepdim=True)) / (w.std((1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


def _net(conv=Scaled):
    torch.manual_seed(0)
    return nn.Sequential(conv(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 2))


def test_weight_is_the_parameter_outside_forward_and_keys_do_not_change():
    model = _net()
    q = prepare(model, SPEC)
    layer = q[0]
    assert type(layer).__name__ == "QuantScaled" and isinstance(layer, Scaled)
    assert layer.weight is layer._parameters["weight"] and isinstance(layer.weight, nn.Parameter)
    float_keys = set(model.state_dict())
    assert float_keys <= set(q.state_dict())
    assert {k for k in q.state_dict() if "quantizer" not in k} == float_keys
    with torch.no_grad():  # in-place edits reach the Parameter (fold, user code)
        layer.weight.mul_(0.5)
    assert torch.equal(layer._parameters["weight"], model[0].weight * 0.5)
    assert "gain" in dict(layer.named_parameters())


def test_inside_forward_the_layer_reads_the_quantized_weight():
    q = prepare(_net(), SPEC).eval()
    x = torch.randn(5, 3, 6, 6)
    calibrate(q, [x])
    layer, seen = q[0], {}

    def spy(mod, args, out):
        seen["w"] = None  # forward hooks run after forward: the Parameter again
        seen["after"] = mod.weight is mod._parameters["weight"]

    layer.register_forward_hook(spy)
    with torch.no_grad():
        xq = layer.input_quantizer(x)
        want = F.conv2d(xq, layer.weight_quantizer(layer.weight), layer.bias, padding=1) * layer.gain
        assert torch.equal(layer(x), want)
    assert seen["after"]


def test_quantizers_off_is_exactly_the_float_model_for_every_subclass():
    for conv in (Scaled, Padded, Standardized, nn.Conv2d):
        model = _net(conv).eval()
        q = prepare(model, SPEC).eval()
        set_quant_state(q, weights=False, acts=False)
        x = torch.randn(4, 3, 6, 6)
        with torch.no_grad():
            assert torch.equal(q(x), model(x)), conv


def test_keyword_input_is_quantized_too():
    q = prepare(nn.Sequential(nn.Linear(4, 3)), SPEC)
    x = torch.randn(6, 4)
    calibrate(q, [x])
    layer = q[0].eval()
    with torch.no_grad():
        assert torch.equal(layer(input=x), layer(x))


def test_deepcopy_and_float_checkpoint_round_trip():
    model = _net()
    q = prepare(model, SPEC)
    q2 = copy.deepcopy(q)
    assert isinstance(q2[0].weight, nn.Parameter) and q2[0].weight is not q[0].weight
    q2.load_state_dict(q.state_dict())


def test_linear_probe_accepts_padding_and_cropping_and_rejects_the_rest():
    conv = lambda x, w, b: F.conv2d(F.pad(x, (0, 1, 0, 1)), w, b, stride=2)  # noqa: E731
    assert linear_probe(conv, (1, 2, 7, 7), (3, 2, 3, 3), 1) is None
    crop = lambda x, w, b: F.linear(x, w, b)[..., :2]  # noqa: E731  fewer output channels
    assert linear_probe(crop, (1, 4), (3, 4), -1) == "output channels"
    relu = lambda x, w, b: F.relu(F.linear(x, w, b))  # noqa: E731
    assert linear_probe(relu, (1, 4), (3, 4), -1) in ("input additivity", "weight additivity")
    bias2 = lambda x, w, b: F.linear(x, w, 2 * b)  # noqa: E731
    assert linear_probe(bias2, (1, 4), (3, 4), -1) == "bias"
    mixed = lambda x, w, b: F.linear(x, w.flip(0), b)  # noqa: E731  row o feeds output 2 - o
    assert linear_probe(mixed, (1, 4), (3, 4), -1) == "per-channel weight scaling"

    def fails(x, w, b):
        raise RuntimeError("float32 only")

    assert linear_probe(fails, (1, 4), (3, 4), -1) == "probe raised RuntimeError"


def test_module_probe_and_batch_norm_folding_follow_linearity():
    x = torch.randn(2, 3, 6, 6)
    assert has_own_forward(Scaled) and not has_own_forward(nn.Conv2d)
    # padding then cropping is linear: the BN folds; (conv + b) * gain adds its bias scaled,
    # standardization is not linear in the weight: their BNs stay
    assert module_is_linear(Padded(3, 4, 3), x)
    assert not module_is_linear(Scaled(3, 4, 3), x) and not module_is_linear(Standardized(3, 4, 3), x)
    assert isinstance(fold_batchnorm(_net(Padded).eval(), x)[1], nn.Identity)
    model = _net(Standardized).eval()
    folded = fold_batchnorm(model, x)
    assert isinstance(folded[1], nn.BatchNorm2d)
    with torch.no_grad():
        assert torch.equal(folded(x), model(x))


def test_wrapping_refuses_before_touching_an_inplace_model():
    model = nn.Sequential(nn.Linear(4, 4), parametrizations.weight_norm(nn.Linear(4, 2)))
    with pytest.raises(Exception, match="layer '1'"):
        prepare(model, SPEC, inplace=True)
    assert type(model[0]) is nn.Linear  # nothing wrapped
