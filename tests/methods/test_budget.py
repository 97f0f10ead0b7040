"""Learned mixed precision (Schaefer et al.): cost = hand count, the rectified quadratic penalty, a
tight budget met on real MNIST, bit updates every Phi steps, frozen phases, bad input."""

import pytest
import torch
from torch import nn

from lowbit import QuantSpec, QuantizerConfig, account, prepare
from lowbit.errors import ConfigError
from lowbit.methods import METHODS, TrainContext
from lowbit.methods.budget import Budget, BudgetConfig
from lowbit.nn.walk import quantizers, weight_quantizers
from lowbit.train import Trainer, recipe_from_dict
from lowbit.train.recipe import ScheduleConfig

LR = {"kind": "learned_range", "bits": 4, "bits_min": 2, "bits_max": 8}


def _toy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    spec = QuantSpec(weight=QuantizerConfig(**LR, granularity="channel"), act=QuantizerConfig(**LR))
    q = prepare(model, spec)
    q.train()
    q(torch.randn(32, 6))  # initialise the activation quantizers
    return q


def _budget(model, **cfg):
    b = Budget(BudgetConfig(**cfg))
    b.setup(TrainContext(model=model, example_input=torch.zeros(1, 6)))
    return b


def test_cost_equals_hand_count_and_accounting():
    model = _toy()
    w0 = model[0].weight_quantizer
    qplus = w0.qplus.detach().clone()
    qplus[:2] = w0.step.detach()[:2] * 1  # two channels of layer 0 down to 2 bits (n = 1)
    w0.set_step_and_range(qplus=qplus)
    b = _budget(model, weight_avg_bits=8)
    bits0 = [2, 2, 4, 4]  # per output channel, 6 weights each
    hand_w = sum(bits0) * 6 + 4 * 4 * 3            # layer 1: 3 channels x 4 weights x 4 bits
    hand_a = 4 * 6 + 4 * 4                          # act bits x elements at each layer input
    w_kb, a_kb = b.costs_kb()
    assert w_kb.item() * 8192 == hand_w and a_kb.item() * 8192 == hand_a
    cost = account(model, torch.zeros(1, 6))
    assert cost.weight_bits_total == hand_w and cost.act_bits_total == hand_a


def test_penalty_is_zero_under_budget_and_quadratic_above():
    model = _toy()
    w_kb = _budget(model, weight_avg_bits=8).costs_kb()[0].item()
    assert _budget(model, weight_kb=w_kb * 1.02).penalty(1.0).item() == 0.0
    # relative excess: cost / target - 1 = 10% and 20% (margin 0: aim at the target itself)
    p1 = _budget(model, weight_kb=w_kb / 1.1, margin=0.0).penalty(2.0).item()
    p2 = _budget(model, weight_kb=w_kb / 1.2, margin=0.0).penalty(2.0).item()
    assert p1 == pytest.approx(2.0 * 0.1 ** 2, rel=1e-4) and p2 == pytest.approx(4 * p1, rel=1e-4)


def test_under_term_is_quadratic_below_the_aim_and_raises_bits():
    model = _toy()
    w_kb = _budget(model, weight_avg_bits=8).costs_kb()[0].item()
    # cost is 80% of the target: one-sided (paper) is zero, two-sided is under * beta * 0.2^2
    assert _budget(model, weight_kb=w_kb / 0.8, margin=0.0).penalty(2.0).item() == 0.0
    b = _budget(model, weight_kb=w_kb / 0.8, margin=0.0, under=0.5)
    pen = b.penalty(2.0)
    assert pen.item() == pytest.approx(0.5 * 2.0 * 0.2 ** 2, rel=1e-4)
    pen.backward()
    for _, _, q in weight_quantizers(model):
        assert (q.log2_qplus.grad < 0).all(), "descent widens the range: more bits"
    # at or above the aim the under term adds nothing
    over = _budget(model, weight_kb=w_kb / 1.1, margin=0.0)
    both = _budget(model, weight_kb=w_kb / 1.1, margin=0.0, under=3.0)
    assert both.penalty(2.0).item() == pytest.approx(over.penalty(2.0).item(), rel=1e-6)


def test_penalty_gradient_lowers_bits():
    model = _toy()
    w_kb = _budget(model, weight_avg_bits=8).costs_kb()[0].item()
    b = _budget(model, weight_kb=0.7 * w_kb)  # feasible: bits_min=2 allows half of 4 bits
    b.penalty(1.0).backward()
    for _, _, q in weight_quantizers(model):
        assert q.log2_qplus.grad is not None and (q.log2_qplus.grad > 0).all(), "descent shrinks the range"


def test_total_target_penalises_the_sum_and_lets_weights_and_acts_trade():
    model = _toy()
    w, a = (c.item() for c in _budget(model, weight_avg_bits=8).costs_kb())
    # the sum is 10% over: the same relative penalty as a weight target 10% under its cost
    assert _budget(model, total_kb=(w + a) / 1.1, margin=0.0).penalty(2.0).item() == pytest.approx(
        2.0 * 0.1 ** 2, rel=1e-4)
    # weights far over the weight part of the uniform split, but the sum within the total: free
    assert _budget(model, total_kb=(w + a) * 1.02).penalty(1.0).item() == 0.0
    assert _budget(model, weight_kb=w / 2, total_kb=(w + a) * 1.02).penalty(1.0).item() > 0
    # its gradient shrinks weight and activation ranges alike (2 weight + 2 act quantizers)
    b = _budget(model, total_kb=(w + a) / 2)
    b.penalty(1.0).backward()
    grads = [q.log2_qplus.grad for _, q in quantizers(model)]
    assert len(grads) == 4 and all(g is not None and bool((g > 0).all()) for g in grads)


def test_infeasible_total_says_the_minimum():
    with pytest.raises(ConfigError, match=r"total target 0\.001 KB .* infeasible; the minimum is"):
        _budget(_toy(), total_kb=0.001)


@pytest.mark.parametrize("cfg, message", [
    (dict(wieght_kb=10.0), "unknown field 'wieght_kb'.*did you mean 'weight_kb'"),
    (dict(weight_kb=10.0, phi=0), "phi .* must be >= 1"),
    (dict(), "budget needs a target"),
    (dict(weight_kb=1.0, weight_avg_bits=3.0), "not both"),
    (dict(weight_kb=-1.0), "must be > 0"),
    (dict(total_kb=0.0), "total_kb must be > 0"),
    (dict(totl_kb=10.0), "did you mean 'total_kb'"),
    (dict(weight_kb=1.0, under=-1.0), "under .* must be >= 0"),
])
def test_bad_config(cfg, message):
    with pytest.raises(ConfigError, match=message):
        METHODS.get("budget").config_from(cfg)


def test_infeasible_budget_says_the_minimum():
    model = _toy()
    with pytest.raises(ConfigError, match=r"infeasible; with bits_min .* minimum is 0\.008789 KB"):
        _budget(model, weight_kb=0.001)


def test_bits_min_above_bits_max_is_refused():
    with pytest.raises(ConfigError, match=r"bits_min \(6\) must be <= bits_max \(4\)"):
        QuantizerConfig(kind="learned_range", bits=4, bits_min=6, bits_max=4)


def _three_phase_recipe(weight_avg_bits=3.0, phi=5):
    q = {"kind": "learned_range", "bits": 6, "bits_min": 2, "bits_max": 8}
    return {
        "name": "mp", "seed": 1,
        "model": {"name": "mlp", "kwargs": {"hidden": 64}},
        "data": {"dataset": "mnist", "batch_size": 100, "train_limit": 4000, "test_limit": 1000,
                 "calib_batches": 2},
        "quant": {"weight": {**q, "granularity": "channel", "observer": "gaussian"},
                  "act": {**q, "observer": "percentile"}},
        "methods": [{"name": "budget", "args": {"weight_avg_bits": weight_avg_bits, "beta": 50.0,
                                                 "ramp": 0.3, "phi": phi}}],
        "optim": {"name": "sgd", "lr": 0.05, "quant_optimizer": "adam", "quant_lr": 0.25},
        "phases": [
            {"name": "pretrain", "epochs": 1, "learn_bits": False, "disable_methods": ["budget"]},
            {"name": "precision", "epochs": 2, "learn_bits": True, "schedule": {"kind": "constant"}},
            {"name": "finetune", "epochs": 1, "freeze_quantizers": True, "disable_methods": ["budget"]},
        ],
        "log_every": 1000,
    }


class BitsRecorder:
    """Wraps a trainer step to record bits after every optimizer step of the precision phase."""

    def __init__(self, trainer):
        self.t, self.log = trainer, []
        original = trainer._step

        def step(*a, **k):
            out = original(*a, **k)
            if trainer.ctx.phase_index == 1:
                bits = torch.cat([q.channel_bits().reshape(-1) for _, _, q in weight_quantizers(trainer.model)])
                self.log.append((trainer.ctx.phase_step, bits.clone()))
            return out

        trainer._step = step


def test_tight_budget_is_met_bits_change_every_phi_and_frozen_phase_is_still(tmp_path):
    t = Trainer(recipe_from_dict(_three_phase_recipe(3.0, phi=5)), tmp_path, verbose=False)
    rec = BitsRecorder(t)
    frozen = {}
    original_phase = t._run_phase

    def run_phase(index, *a):
        if index == 2:
            frozen.update({n: p.detach().clone() for n, q in quantizers(t.model) for n, p in
                           q.named_parameters(prefix=n)})
        return original_phase(index, *a)

    t._run_phase = run_phase
    m = t.run()
    # bits change only on steps right after an update step (phase_step % phi == 0 before the step)
    prev = None
    for step_after, bits in rec.log:
        if prev is not None and not torch.equal(bits, prev):
            assert (step_after - 1) % 5 == 0, f"bits changed at step {step_after - 1}"
        prev = bits
    assert rec.log[0][1].float().mean() > rec.log[-1][1].float().mean(), "bits went down"
    # the budget is met (within 1%) and the report says so
    import json

    report = json.loads((tmp_path / "report.json").read_text())["methods"]["budget"]
    assert report["weights"]["met"], report["weights"]
    assert m["weight_bits_total"] <= 3.0 * (784 * 64 + 64 * 10) * 1.01
    # the fine-tuning phase changed no quantizer parameter
    after = {n: p for n, q in quantizers(t.model) for n, p in q.named_parameters(prefix=n)}
    assert frozen and all(torch.equal(frozen[n], after[n]) for n in frozen)
    assert m["top1"] > 80.0


def test_filled_grids_meet_the_budget_and_use_every_code(tmp_path):
    from lowbit.quantizers.learned_range import levels_for_bits
    from lowbit.train.restore import load_run

    data = _three_phase_recipe(3.0, phi=5)
    for side in ("weight", "act"):
        data["quant"][side]["fill_levels"] = True
    t = Trainer(recipe_from_dict(data), tmp_path, verbose=False)
    m = t.run()
    assert m["weight_bits_total"] <= 3.0 * (784 * 64 + 64 * 10) * 1.01
    for name, q in quantizers(t.model):
        bits = q.channel_bits().reshape(-1).tolist()
        full = [levels_for_bits(b, q.signed) for b in bits]
        assert q.levels().reshape(-1).tolist() == full, name
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(load_run(tmp_path).model(x), t.model.eval()(x)), "the run folder rebuilds it"
    assert m["top1"] > 80.0
