"""QGT (the QGT paper): the regularizer's value and gradient, its pull towards the grid on real data,
the two ends of lambda (PTQ and hard QAT), the bottleneck ranking, and bad input."""

import copy

import pytest
import torch
from torch import nn

from lowbit import QuantSpec, QuantizerConfig, calibrate, prepare
from lowbit.data import BatchLoader, eval_augment, load_split
from lowbit.errors import ConfigError
from lowbit.methods.qgt import QGT, QGTConfig
from lowbit.models import create_model
from lowbit.nn.control import set_quant_state
from lowbit.methods.qgt_report import bottleneck_table
from lowbit.evaluate import evaluate

SYM2 = {"kind": "uniform", "bits": 2, "symmetric": True, "narrow_range": True}
ASYM2_PC = {"kind": "uniform", "bits": 2, "symmetric": False, "granularity": "channel"}


def test_value_and_gradient_by_hand():
    lin = nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.1, 0.35, -0.2, 0.9]]))
    qgt = QGT(QGTConfig(lam=0.5, quantizer=SYM2))
    reg = qgt(lin)
    # narrow symmetric 2 bits: levels -1, 0, 1 times scale = max|w| / 1 = 0.9
    dq = torch.tensor([[0.0, 0.0, 0.0, 0.9]])
    expected = 0.5 * ((dq - lin.weight.detach()) ** 2).sum()
    assert torch.allclose(reg, expected)
    reg.backward()
    assert torch.allclose(lin.weight.grad, 2 * 0.5 * (lin.weight.detach() - dq))


def test_zero_on_the_grid():
    lin = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[-1.0, 0.0, 1.0], [1.0, -1.0, 0.0]]))  # step 1: on the grid
    reg = QGT(QGTConfig(lam=10.0, quantizer=SYM2))(lin)
    assert reg.item() == 0.0


def test_biases_and_batch_norm_are_excluded_by_default():
    model = create_model("resnet8")
    names = [t.name for t in QGT(QGTConfig(quantizer=ASYM2_PC)).attach(model)]
    assert names and all(n.endswith(".weight") for n in names)
    assert not any("bn" in n or "bias" in n for n in names)
    assert len(names) == sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())


@pytest.fixture(scope="module")
def mnist():
    torch.manual_seed(0)
    train = load_split("mnist", "train", limit=12000)
    test = load_split("mnist", "test", limit=2000)
    aug = eval_augment("mnist")
    tl = BatchLoader(train, 100, augment=aug, shuffle=True, seed=0, drop_last=True)
    vl = BatchLoader(test, 500, augment=aug)
    model = create_model("mlp", hidden=128)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for x, y in tl:
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model, tl, vl


def _qgt_finetune(model, loader, lam, epochs=1, quantizer=ASYM2_PC):
    model = copy.deepcopy(model)
    qgt = QGT(QGTConfig(lam=lam, quantizer=quantizer))
    qgt.attach(model)
    start = qgt.errors()
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            (nn.functional.cross_entropy(model(x), y) + qgt(model)).backward()
            opt.step()
    return model, start, qgt.errors()


def _quantized_acc(model, loader, quantizer=ASYM2_PC):
    spec = QuantSpec(weight=QuantizerConfig(**quantizer), act=None)
    q = prepare(model, spec)
    return evaluate(q, loader)["top1"]


def test_qgt_moves_weights_to_the_grid_and_keeps_accuracy(mnist):
    model, tl, vl = mnist
    float_acc = evaluate(model, vl)["top1"]
    tuned, start, end = _qgt_finetune(model, tl, lam=0.05)
    assert all(end[k] < 0.6 * start[k] for k in start), (start, end)
    assert evaluate(tuned, vl)["top1"] > float_acc - 2.0, "the float accuracy holds"
    assert _quantized_acc(tuned, vl) >= _quantized_acc(model, vl), "2-bit accuracy does not get worse"


def test_lambda_zero_is_ptq_and_large_lambda_is_hard_qat(mnist):
    model, tl, vl = mnist
    q = SYM2  # ternary per-tensor weights: PTQ loses a lot, which makes both ends visible
    # lambda = 0 without training: the QGT model is exactly the PTQ model
    untouched, _, _ = _qgt_finetune(model, [], lam=0.0, quantizer=q)
    assert _quantized_acc(untouched, vl, q) == _quantized_acc(model, vl, q)
    ptq_gap = evaluate(model, vl)["top1"] - _quantized_acc(model, vl, q)
    # large lambda (2 * lambda * lr = 0.4 < 1, so the pull contracts instead of overshooting):
    # the trained float weights sit on the grid, and quantizing them changes almost nothing
    tuned, _, end = _qgt_finetune(model, tl, lam=10.0, quantizer=q)
    assert max(end.values()) < 0.05
    qat_gap = abs(evaluate(tuned, vl)["top1"] - _quantized_acc(tuned, vl, q))
    assert ptq_gap > 5.0 and qat_gap < 0.2 * ptq_gap, (ptq_gap, qat_gap)


def test_bottleneck_ranks_the_hard_layer_first(mnist):
    model, _, vl = mnist
    model = copy.deepcopy(model)
    with torch.no_grad():  # an outlier per row ruins per-tensor scales of fc1 only
        model.fc1.weight[:, 0] += 25.0 * torch.sign(torch.randn(model.fc1.weight.shape[0]))
    spec = QuantSpec(weight=QuantizerConfig(kind="uniform", bits=4), act=None)
    q = prepare(model, spec)
    table = bottleneck_table(q, vl, max_images=1000)
    assert table["layers"][0]["layer"] == "fc1"
    # (its relative error is not the largest: ||w|| is dominated by the outliers, which
    # quantize exactly; the accuracy drop is what exposes it)
    assert table["layers"][0]["drop"] > table["layers"][1]["drop"] + 5.0


@pytest.mark.parametrize("cfg, message", [
    (dict(lam=-1.0), "lam must be a finite number >= 0"),
    (dict(lam=float("nan")), "lam must be a finite number >= 0"),
    (dict(layer_lams={"fc1.*": -2}), "layer_lams"),
    (dict(quantizer={"kind": "dorefa", "bits": 2}), "cannot be a QGT target"),
    (dict(quantizer={"kind": "nested", "bits": None}), "cannot be a QGT target"),
])
def test_bad_config(cfg, message):
    with pytest.raises(ConfigError, match=message):
        QGTConfig(**cfg)


def test_patterns_that_match_nothing():
    model = create_model("mlp")
    with pytest.raises(ConfigError, match="matches no parameter; parameters: fc1.weight"):
        QGT(QGTConfig(quantizer=ASYM2_PC, targets=("conv*.weight",))).attach(model)
    with pytest.raises(ConfigError, match="matches no parameter"):
        QGT(QGTConfig(quantizer=ASYM2_PC, layer_lams={"layer9.*": 1.0})).attach(model)


def test_float_model_needs_a_quantizer():
    with pytest.raises(ConfigError, match="has no quantizer"):
        QGT(QGTConfig()).attach(create_model("mlp"))
