"""The three loss terms on learned scales (Chinbat 2025, section 3.2): values against a hand
computation, the sign of their gradients, the span surrogate of the bin count, LSQ as well as
nested quantizers, and bad input."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lowbit import QuantSpec, QuantizerConfig, prepare
from lowbit.errors import ConfigError
from lowbit.methods import METHODS
from lowbit.methods.penalties import (BinCount, BinCountConfig, Deviation, DeviationConfig,
                                      InverseScale, InverseScaleConfig)
from lowbit.ops.scale_penalties import bins_used, soft_bins

W = torch.tensor([[0.55, -0.3, 1.0], [0.12, 0.2, -0.33]])  # off the grids below
B = torch.tensor([0.4, -0.8])


def nested_linear(scale_grad="ratio", kind="nested", bits=None):
    """Linear(3, 2) with weight W (row scales 0.25, 0.1) and bias B (scale 0.2)."""
    lin = nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(W)
        lin.bias.copy_(B)
    q = QuantizerConfig(kind=kind, bits=bits, granularity="row", scale_grad=scale_grad) if kind == "nested" \
        else QuantizerConfig(kind=kind, bits=bits, granularity="row")
    model = prepare(nn.Sequential(lin), QuantSpec(weight=q, act=None, bias=q))
    with torch.no_grad():
        model[0].weight_quantizer.scale.copy_(torch.tensor([0.25, 0.1]))
        model[0].bias_quantizer.scale.fill_(0.2)
    return model


def test_inverse_scale_by_hand_and_it_pushes_scales_up():
    model = nested_linear()
    pen = InverseScale(InverseScaleConfig(coef=0.5))
    reg = pen(model)
    # weight rows: max|P| / s = 1.0 / 0.25 = 4 and 0.33 / 0.1 = 3.3 (3 elements each); bias: 0.8 / 0.2 = 4
    expected = 0.5 * (3 * 4 + 3 * 3.3 + 2 * 4) / 8
    assert reg.item() == pytest.approx(expected)
    reg.backward()
    wq, bq = model[0].weight_quantizer, model[0].bias_quantizer
    # d/ds (ref/s) = -ref/s^2, times coef and the slice's share of the elements
    assert torch.allclose(wq.scale.grad, torch.tensor([-0.5 * 3 / 8 * 1.0 / 0.25 ** 2,
                                                       -0.5 * 3 / 8 * 0.33 / 0.1 ** 2]))
    assert (wq.scale.grad < 0).all() and (bq.scale.grad < 0).all()  # descent raises every scale
    assert model[0].weight.grad is None  # ref is detached: the weights are not touched


def test_inverse_scale_without_normalisation_is_the_bare_inverse():
    model = nested_linear()
    reg = InverseScale(InverseScaleConfig(coef=1.0, normalize="none"))(model)
    assert reg.item() == pytest.approx((3 * 4 + 3 * 10 + 2 * 5) / 8)  # 1/0.25, 1/0.1, 1/0.2


def test_bin_count_by_hand_and_its_gradient_sign():
    model = nested_linear()
    pen = BinCount(BinCountConfig(coef=2.0, max_bins=4))
    # spans: row 0 (1.0 + 0.3)/0.25 + 1 = 6.2, row 1 (0.2 + 0.33)/0.1 + 1 = 6.3, bias (0.4 + 0.8)/0.2 + 1 = 7
    excess = [math.log2(b / 4) ** 2 for b in (6.2, 6.3, 7)]  # squared excess in bits
    reg = pen(model)
    assert reg.item() == pytest.approx(2.0 * (3 * excess[0] + 3 * excess[1] + 2 * excess[2]) / 8)
    reg.backward()
    assert (model[0].weight_quantizer.scale.grad < 0).all()  # over the target: coarser grid
    assert (model[0].bias_quantizer.scale.grad < 0).all()
    model[0].zero_grad()
    under = BinCount(BinCountConfig(coef=2.0, max_bins=8))(model)  # 6.2, 6.3, 7 <= 8
    assert under.item() == 0.0  # every slice already fits


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-10, 10, allow_nan=False, width=32, allow_subnormal=False), min_size=1, max_size=20),
       st.floats(0.01, 5.0))
def test_span_surrogate_is_within_one_bin_and_falls_as_bins_are_removed(vals, s):
    x = torch.tensor([vals])
    scales = torch.tensor([s, s * 1.5, s * 2.25, s * 4]).reshape(-1, 1)
    soft, exact = [], []
    for sc in scales:
        sc = sc.reshape(1, 1)
        soft.append(float(soft_bins(x, sc)))
        exact.append(float(bins_used(torch.floor(x / sc))))
        assert abs(soft[-1] - exact[-1]) <= 1 + 1e-4
    assert all(a >= b for a, b in zip(exact, exact[1:]))  # fewer bins as s grows
    assert all(a >= b - 1e-6 for a, b in zip(soft, soft[1:]))  # and the surrogate falls with them


def test_deviation_by_hand_and_its_pull_toward_the_grid():
    model = nested_linear()
    pen = Deviation(DeviationConfig(coef=1.0))
    reg = pen(model)
    qw = torch.floor(W / torch.tensor([[0.25], [0.1]])) * torch.tensor([[0.25], [0.1]])
    qb = torch.floor(B / 0.2) * 0.2
    rel_w = ((qw - W) ** 2).sum() / (W ** 2).sum()
    rel_b = ((qb - B) ** 2).sum() / (B ** 2).sum()
    assert reg.item() > 0.01 and reg.item() == pytest.approx(float((6 * rel_w + 2 * rel_b) / 8), rel=1e-5)
    reg.backward()
    grad = model[0].weight.grad
    expected = 6 / 8 * 2 * (W - qw) / (W ** 2).sum()
    assert torch.allclose(grad, expected, atol=1e-6)  # descent moves P toward Q(P)
    assert model[0].weight_quantizer.scale.grad is not None


@pytest.mark.parametrize("kind", ["nested", "lsq"])
@pytest.mark.parametrize("name", ["inverse_scale", "bin_count", "deviation"])
def test_every_term_reaches_lsq_and_nested_scales(kind, name):
    model = nested_linear(kind=kind, bits=None if kind == "nested" else 4)
    args = {"coef": 1.0, **({"max_bins": 2} if name == "bin_count" else {})}
    pen = METHODS.get(name).from_args(args)
    pen(model).backward()
    assert pen.names() == ["0.weight", "0.bias"]
    g = model[0].weight_quantizer.scale.grad
    assert g is not None and torch.isfinite(g).all() and float(g.abs().sum()) > 0


def test_ste_scale_gradient_is_the_straight_through_one():
    """scale_grad: ste gives floor(P/s) - P/s per element (summed per slice); ratio does not."""
    model = nested_linear("ste")
    model[0].weight_quantizer(model[0].weight).sum().backward()
    s = torch.tensor([[0.25], [0.1]])
    expected = (torch.floor(W / s) - W / s).sum(dim=1)
    assert torch.allclose(model[0].weight_quantizer.scale.grad, expected, atol=1e-5)


def test_targets_and_exclude():
    model = nested_linear()
    assert InverseScale(InverseScaleConfig(targets=("*.bias",))).attach(model)[0].name == "0.bias"
    assert [t.name for t in Deviation(DeviationConfig(exclude=("*.bias",))).attach(model)] == ["0.weight"]


@pytest.mark.parametrize("make, message", [
    (lambda: InverseScaleConfig(coef=-1.0), "inverse_scale coef must be a finite number >= 0, got -1.0"),
    (lambda: DeviationConfig(coef=math.nan), "deviation coef must be a finite number >= 0"),
    (lambda: BinCountConfig(max_bins=1), "bin_count max_bins must be an integer >= 2"),
    (lambda: BinCountConfig(max_bins=3.5), "bin_count max_bins must be an integer >= 2"),
    (lambda: InverseScaleConfig(normalize="log"), "normalize must be one of range, none"),
    (lambda: QuantizerConfig(kind="nested", bits=None, threshold=-1e-3), "threshold \\(lambda\\) must be > 0"),
    (lambda: QuantizerConfig(kind="nested", bits=None, scale_grad="lsq"), "scale_grad must be one of ratio, ste"),
])
def test_bad_values_are_one_line_errors(make, message):
    with pytest.raises(ConfigError, match=message) as err:
        make()
    assert "\n" not in str(err.value)


def test_no_learned_scale_and_unmatched_targets_are_errors():
    uniform = prepare(nn.Sequential(nn.Linear(3, 2)), QuantSpec(
        weight=QuantizerConfig(kind="uniform", bits=4), act=None))
    with pytest.raises(ConfigError, match="no quantized weight or bias has a learned scale.*uniform"):
        InverseScale(InverseScaleConfig())(uniform)
    with pytest.raises(ConfigError, match="pattern 'fc9.\\*' matches no quantized tensor"):
        BinCount(BinCountConfig(targets=("fc9.*",)))(nested_linear())
    pen = BinCount(BinCountConfig())
    with pytest.raises(ConfigError, match="phase arguments: unknown \\['beta'\\]"):
        pen.on_phase_start(None, None, {"beta": 1})
    with pytest.raises(ConfigError, match="max_bins must be an integer >= 2"):
        pen.on_phase_start(None, None, {"max_bins": 0})


@pytest.mark.parametrize("name", ["lowbit.methods.penalties", "lowbit.report.fronts"])
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
