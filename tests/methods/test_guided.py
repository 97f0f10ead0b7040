"""Guided training (Zhuang et al., Towards Effective Low-bitwidth CNNs, eq. 5-7): the guidance
loss by hand, gradients of each network from its own objective only, a fixed twin, errors."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lowbit import LayerOverride, QuantizerConfig, QuantSpec, prepare
from lowbit.errors import ConfigError
from lowbit.methods import METHODS, TrainContext
from lowbit.methods.guided import (DEFAULT_POINTS, Guided, GuidedConfig, default_points, guidance_loss,
                                   resolve_points)
from lowbit.models import create_model, list_models
from lowbit.nn.control import quantizers_disabled
from lowbit.train.recipe import recipe_from_dict

SPEC = QuantSpec(weight=QuantizerConfig(kind="dorefa", bits=2), act=QuantizerConfig(kind="dorefa", bits=2),
                 overrides=(LayerOverride("@first", act="float"),))


def _tiny():
    torch.manual_seed(0)
    float_net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    return prepare(float_net, SPEC)


def _guided(model, **cfg):
    g = Guided(GuidedConfig(**cfg))
    g.setup(TrainContext(model=model))
    with torch.no_grad():  # the twin drifts away from the low-bit model, as in training
        for p in g.twin.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return g


def _dorefa_act(v):  # eq. 3 at 2 bits: round(3 clip(v, 0, 1)) / 3
    return torch.round(torch.clamp(v, 0, 1) * 3) / 3


def test_guidance_loss_equals_a_hand_computation():
    model = _tiny()
    g = _guided(model, lam=0.5, points=("2", "4"))
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    logits = model(x)
    term = g.loss(TrainContext(model=model), x, y, logits)
    with torch.no_grad():
        low1 = model[1](model[0](x))                # input of layer "2" in the low-bit model
        low2 = model[3](model[2](low1))            # input of layer "4"
        full1 = g.twin[1](g.twin[0](x))
        full2 = g.twin[3](g.twin[2](full1))
        r = sum(0.5 * (_dorefa_act(f) - _dorefa_act(lo)).pow(2).sum() / 8
                for f, lo in ((full1, low1), (full2, low2)))
        expected = 0.5 * r + F.cross_entropy(g.twin(x), y)
    assert float(r) > 0
    assert torch.allclose(term, expected, atol=1e-6)


def test_each_network_gets_the_gradient_of_its_own_objective():
    """One backward of task + term = eq. 7 for W_low and eq. 6 for W_full; the twin's task loss
    never reaches W_low and the low-bit task loss never reaches W_full."""
    model = _tiny()
    g = _guided(model, lam=0.7, points=("2", "4"))
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    low, full = list(model.parameters()), list(g.twin.parameters())
    logits = model(x)
    (F.cross_entropy(logits, y) + g.loss(TrainContext(model=model), x, y, logits)).backward()
    got_low, got_full = [p.grad.clone() for p in low], [p.grad.clone() for p in full]

    logits = model(x)
    twin_logits = g.twin(x)
    r = guidance_loss(g.pairs())
    ce_low, ce_full = F.cross_entropy(logits, y), F.cross_entropy(twin_logits, y)
    want_low = torch.autograd.grad(ce_low + 0.7 * r, low, retain_graph=True)
    want_full = torch.autograd.grad(ce_full + 0.7 * r, full, retain_graph=True)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got_low, want_low))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got_full, want_full))
    assert all(gr is None for gr in torch.autograd.grad(ce_full, low, retain_graph=True, allow_unused=True))
    assert all(gr is None for gr in torch.autograd.grad(ce_low, full, retain_graph=True, allow_unused=True))
    for params in (low, full):  # R reaches both networks
        grads = torch.autograd.grad(r, params, retain_graph=True, allow_unused=True)
        assert any(gr is not None and float(gr.abs().sum()) > 0 for gr in grads)


def test_fixed_twin_gets_no_gradient_and_no_optimizer():
    model = _tiny()
    g = _guided(model, lam=1.0, points=("4",), joint=False)
    before = copy.deepcopy(g.twin.state_dict())
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    logits = model(x)
    (F.cross_entropy(logits, y) + g.loss(TrainContext(model=model), x, y, logits)).backward()
    assert all(p.grad is None for p in g.twin.parameters())
    assert not g.twin.training and not g.companions()[0].trainable
    assert all(torch.equal(before[k], v) for k, v in g.twin.state_dict().items())


def test_twin_starts_as_the_float_model_and_defaults_follow_the_paper():
    q = prepare(create_model("resnet20"), SPEC)
    g = Guided(GuidedConfig())
    g.setup(TrainContext(model=q))
    assert g.points == ["layer3.0.conv1", "fc"]  # outputs of the last two residual stages
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), quantizers_disabled(q):
        assert torch.equal(g.twin.eval()(x), q.eval()(x))
    assert default_points(prepare(create_model("cnn"), SPEC)) == ("classifier.0", "classifier.3")
    assert default_points(_tiny()) == ("2", "4")  # any other model: its last two layers
    # never the first layer, whose input is the network input in both networks (R would be 0)
    two = prepare(nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)), SPEC)
    assert default_points(two) == ("2",)
    with pytest.raises(ConfigError, match="no feature map between them to guide; name the points"):
        default_points(prepare(nn.Sequential(nn.Linear(4, 3)), SPEC))


def test_guided_errors_name_the_problem():
    with pytest.raises(ConfigError, match="lam .*>= 0"):
        METHODS.get("guided").from_args({"lam": -0.1})
    with pytest.raises(ConfigError, match="'layer9.*' matches no quantized layer; quantized layers: 0, 2, 4"):
        Guided(GuidedConfig(points=("layer9.*",))).setup(TrainContext(model=_tiny()))
    with pytest.raises(ConfigError, match="point 'fc': the twin's feature map has shape \\[2, 5\\], the "
                                          "low-bit model's \\[2, 6\\]"):
        guidance_loss([("fc", torch.zeros(2, 5), torch.zeros(2, 6))])
    with pytest.raises(ConfigError, match="optim.momentun"):
        recipe_from_dict({"model": {"name": "mlp"}, "data": {"dataset": "mnist"}, "quant": {},
                          "methods": [{"name": "guided", "args": {"optim": {"momentun": 0.5}}}]})


@pytest.mark.parametrize("name", sorted(m["name"] for m in list_models()))
def test_every_bundled_model_has_default_points_that_resolve(name):
    q = prepare(create_model(name))
    assert name in DEFAULT_POINTS
    assert len(resolve_points(q, default_points(q))) == len(DEFAULT_POINTS[name])
