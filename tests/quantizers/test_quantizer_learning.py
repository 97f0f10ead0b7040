"""Learned quantizers: LSQ's scale gradient formula, parameters that learn, the nested
quantizer's scale rule (Chinbat, section 3.1) and the learned-range quantizer (Schaefer et al.)."""

import math

import numpy as np
import pytest
import torch

from lowbit.ops import qrange
from lowbit.quantizers import QuantizerConfig, make_quantizer
from lowbit.quantizers.learned_range import levels_for_bits


# ----- LSQ ---------------------------------------------------------------------------------------
def lsq_reference_grad(x, s, g, qmin, qmax, per_slice_dims):
    """d loss / d s of LSQ: sum of g * (round(x/s) - x/s) inside, qmin / qmax outside,
    times 1 / sqrt(N * qmax) with N the elements per scale (float64)."""
    x, s, g = (t.double() for t in (x, s, g))
    u = x / s
    r = torch.round(u)
    local = torch.where(r < qmin, torch.full_like(u, qmin),
                        torch.where(r > qmax, torch.full_like(u, qmax), r - u))
    n = x.numel() // s.numel()
    total = (g * local).sum(dim=per_slice_dims) if per_slice_dims else (g * local).sum()
    return total / math.sqrt(n * qmax)


@pytest.mark.parametrize("signed", [True, False])
def test_lsq_per_tensor_scale_gradient(signed):
    torch.manual_seed(0)
    x = torch.randn(64, 10) * 2 if signed else torch.rand(64, 10) * 4
    q = make_quantizer(QuantizerConfig(kind="lsq", bits=3, signed=signed), "act")
    q.init_from_tensor(x)
    with torch.no_grad():
        q.scale.mul_(0.6)  # make some values clip
    qmin, qmax = qrange(3, signed)
    g = torch.randn_like(x)
    q(x).backward(g)
    expected = lsq_reference_grad(x, q.scale.detach(), g, qmin, qmax, ())
    assert float(q.scale.grad) == pytest.approx(float(expected), rel=1e-4, abs=1e-6)


def test_lsq_per_channel_scale_gradient():
    torch.manual_seed(1)
    w = torch.randn(6, 4, 3, 3)
    q = make_quantizer(QuantizerConfig(kind="lsq", bits=4, granularity="channel"), "weight", w.shape)
    q.init_from_tensor(w)
    with torch.no_grad():
        q.scale.mul_(torch.linspace(0.5, 1.2, 6))
    g = torch.randn_like(w)
    q(w).backward(g)
    s = q.scale.detach().reshape(6, 1, 1, 1)
    expected = lsq_reference_grad(w, s, g, -8, 7, (1, 2, 3))
    np.testing.assert_allclose(q.scale.grad.numpy(), expected.numpy(), rtol=1e-4, atol=1e-6)


def test_lsq_grad_scale_can_be_switched_off():
    torch.manual_seed(2)
    x = torch.randn(100)
    q = make_quantizer(QuantizerConfig(kind="lsq", bits=4, lsq_grad_scale=False, signed=True), "act")
    q.init_from_tensor(x)
    g = torch.ones_like(x)
    q(x).backward(g)
    expected = lsq_reference_grad(x, q.scale.detach(), g, -8, 7, ()) * math.sqrt(100 * 7)
    assert float(q.scale.grad) == pytest.approx(float(expected), rel=1e-4)


# ----- parameters receive gradients and move ----------------------------------------------------
LEARNED = {
    "lsq": ["scale"],
    "pow2": ["scale"],
    "learned_range": ["log2_step", "log2_qplus"],
    "nested": ["scale"],
}


@pytest.mark.parametrize("kind", sorted(LEARNED))
def test_learned_parameters_get_gradients_and_move(kind):
    """A few Adam steps on a task loss (match a target through a fixed linear map)."""
    torch.manual_seed(3)
    w = torch.randn(8, 16) * 0.5
    cfg = QuantizerConfig(kind=kind, bits=3, granularity="channel")
    q = make_quantizer(cfg, "weight", w.shape)
    q.init_from_tensor(w)
    if kind == "learned_range":
        q.set_step_and_range(qplus=q.qplus * 0.7)  # some values clip, so q+ has a gradient
    before = {n: p.detach().clone() for n, p in q.named_parameters()}
    assert set(before) == set(LEARNED[kind])
    x = torch.randn(32, 16)
    target = x @ w.t() * 1.3 if kind != "nested" else x @ w.t()
    opt = torch.optim.Adam(q.parameters(), lr=0.05)
    for _ in range(5):
        opt.zero_grad()
        loss = (x @ q(w).t() - target).pow(2).mean() if kind != "nested" else q(w).sum() * 1e-9
        loss.backward()
        for n, p in q.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), n
            assert float(p.grad.abs().sum()) > 0, n
        opt.step()
        q.project_()
    for n, p in q.named_parameters():
        assert not torch.equal(p.detach(), before[n]), f"{kind}.{n} did not move"


def test_frozen_quantizer_does_not_learn():
    w = torch.randn(4, 4, requires_grad=True)
    q = make_quantizer(QuantizerConfig(kind="lsq", bits=4), "weight", w.shape)
    q.init_from_tensor(w)
    q.freeze()
    q(w).sum().backward()
    assert q.scale.grad is None and not q.scale.requires_grad
    q.unfreeze()
    q(w).sum().backward()
    assert q.scale.grad is not None


# ----- nested: insensitive parameters are quantized harder, sensitive ones are left alone -------
def test_nested_scale_grows_for_insensitive_rows_and_stays_for_sensitive_ones():
    """Row 0 sees tiny gradients (r << lambda), row 1 large ones (r >= lambda).

    Expected gradient per row (Chinbat's thesis, section 3.1): sum_j g_s(r_j) * m with
    g_s = -tanh(lambda - r) if r < lambda else 0 and m = max_j |floor(P_j / s)|.
    """
    lam = 1e-2
    P = torch.tensor([[0.8, -0.5, 0.3, 0.9], [0.8, -0.5, 0.3, 0.9]])
    cfg = QuantizerConfig(kind="nested", bits=None, granularity="row", threshold=lam)
    q = make_quantizer(cfg, "weight", P.shape)
    q.init_from_tensor(P)
    s0 = q.scale.detach().clone()
    c = torch.tensor([[1e-6], [10.0]]).expand(2, 4)  # dL/dP_rec per row
    (q(P) * c).sum().backward()

    pq = q.quantize(P).double()  # floor(P / s); P[:, 3] = absmax sits exactly on code 127
    assert pq[:, 3].tolist() == [127, 127]
    p_rec = pq * s0.double().reshape(2, 1)
    r = c.double().abs() / p_rec.abs().clamp_min(1e-8)
    g_s = torch.where(r < lam, -torch.tanh(lam - r), torch.zeros_like(r))
    m = pq.abs().amax(dim=1, keepdim=True)
    expected = (g_s * m).sum(dim=1)
    assert torch.allclose(q.scale.grad.double(), expected, rtol=1e-5)
    assert float(q.scale.grad[0]) < 0 and float(q.scale.grad[1]) == 0.0

    opt = torch.optim.SGD(q.parameters(), lr=1e-3)
    opt.step()
    q.project_()
    assert float(q.scale.detach()[0]) > float(s0[0])  # insensitive row: coarser grid
    assert float(q.scale.detach()[1]) == float(s0[1])  # sensitive row: unchanged


def test_nested_bits_follow_the_codes():
    P = torch.tensor([[1.0, -3.0, 2.0], [0.5, 0.2, -0.1]])
    q = make_quantizer(QuantizerConfig(kind="nested", bits=None, granularity="row"), "weight", P.shape)
    q.init_from_tensor(P)
    with torch.no_grad():
        q.scale.copy_(torch.tensor([0.5, 0.1]))
    # codes: row 0 floor(2, -6, 4) -> [-6, 4] -> 4 signed bits; row 1 (5, 2, -1) -> 4 bits
    assert q.quantize(P).tolist() == [[2, -6, 4], [5, 2, -1]]
    assert q.channel_bits(P).tolist() == [4, 4]
    q.set_bits(3)  # clip to -4..3
    assert q.quantize(P).tolist() == [[2, -4, 3], [3, 2, -1]]


# ----- learned range (Schaefer et al.) ---------------------------------------------------------
def _lr_quantizer(shape=(4, 8), **kw):
    cfg = QuantizerConfig(kind="learned_range", granularity="channel", **{"bits": 4, **kw})
    return make_quantizer(cfg, "weight", shape)


def test_learned_range_bits_per_channel():
    w = torch.randn(4, 8)
    q = _lr_quantizer(bits_min=2, bits_max=8)
    q.init_from_tensor(w)
    assert q.channel_bits().tolist() == [4, 4, 4, 4]
    # n = q+/d = 1, 3, 7, 127 -> 2, 3, 4, 8 bits (signed)
    q.set_step_and_range(qplus=q.step * torch.tensor([1.0, 3.0, 7.0, 127.0]))
    assert q.channel_bits().tolist() == [2, 3, 4, 8]
    assert q.bits == 8
    codes = q.quantize(w)
    n = torch.tensor([1, 3, 7, 127]).reshape(4, 1)
    assert bool((codes.abs() <= n).all())
    assert torch.equal(q.dequantize(codes), q(w))
    bits, has_zp = q.storage(w)
    assert bits.tolist() == [2, 3, 4, 8] and not has_zp


def test_learned_range_bits_stay_in_bounds_after_projection():
    torch.manual_seed(4)
    w = torch.randn(4, 8)
    q = _lr_quantizer(bits=4, bits_min=3, bits_max=5)
    q.init_from_tensor(w)
    # an optimizer step pushed q+ far out of bounds both ways (log2 q+: +10, -6.6, ...)
    q.set_step_and_range(qplus=q.step * torch.tensor([1000.0, 0.01, 1e-6, 9.0]))
    q.project_()
    bits = q.channel_bits()
    assert bool((bits >= 3).all()) and bool((bits <= 5).all())
    assert bits.tolist()[:2] == [5, 3]
    # the forward pass also respects the bounds before projection
    q2 = _lr_quantizer(bits=4, bits_min=3, bits_max=5)
    q2.init_from_tensor(w)
    q2.set_step_and_range(qplus=q2.qplus * 1000)
    assert int(q2.quantize(w).abs().max()) <= levels_for_bits(5, True)


def test_learned_range_set_bits():
    w = torch.randn(4, 8)
    q = _lr_quantizer(bits=4)
    q.init_from_tensor(w)
    q.set_bits(6)
    assert q.channel_bits().tolist() == [6] * 4
    assert torch.allclose(q.qplus, q.step * levels_for_bits(6, True))
    q.set_bits(2)
    assert q.channel_bits().tolist() == [2] * 4 and int(q.quantize(w).abs().max()) <= 1


def test_learned_range_learn_bits_false_ties_range_to_step():
    torch.manual_seed(5)
    w = torch.randn(4, 8)
    q = _lr_quantizer(bits=4, learn_bits=False)
    q.init_from_tensor(w)
    q.set_step_and_range(qplus=q.qplus * 3.0)  # ignored while tied
    assert torch.allclose(q.effective_range(), q.effective_step() * 7)
    assert q.channel_bits().tolist() == [4] * 4
    q(w).pow(2).sum().backward()
    assert q.log2_qplus.grad is None or float(q.log2_qplus.grad.abs().sum()) == 0
    assert float(q.log2_step.grad.abs().sum()) > 0
    q.set_learn_bits(True)  # untying keeps the grid
    assert torch.allclose(q.qplus, q.effective_step() * 7)


def test_learned_range_tying_after_learning_keeps_the_learned_bits():
    """A fine-tuning phase with learn_bits=False keeps each channel's learned bit-width (it used
    to fall back to the configured width, silently undoing the precision phase)."""
    torch.manual_seed(7)
    w = torch.randn(4, 8)
    q = _lr_quantizer(bits=6, bits_min=2, bits_max=8)
    q.init_from_tensor(w)
    q.set_step_and_range(qplus=q.effective_step() * torch.tensor([1.0, 3.0, 7.0, 15.0]))
    learned = q.channel_bits().tolist()
    assert learned == [2, 3, 4, 5]
    q.set_learn_bits(False)
    assert q.channel_bits().tolist() == learned
    codes = q.quantize(w)
    q(w).pow(2).sum().backward()  # the steps still learn, the ranges follow them
    assert float(q.log2_step.grad.abs().sum()) > 0
    assert torch.equal(q.dequantize(codes), q(w).detach())
    q.set_bits(4)  # an explicit width ties every channel to it again
    assert q.channel_bits().tolist() == [4] * 4


def test_learned_range_bit_tensor_equals_channel_bits_and_has_a_gradient():
    torch.manual_seed(6)
    w = torch.randn(5, 8)
    q = _lr_quantizer(shape=(5, 8), bits_min=2, bits_max=8)
    q.init_from_tensor(w)
    q.set_step_and_range(qplus=q.step * torch.tensor([1.2, 2.6, 6.9, 40.0, 100.3]))
    b = q.bit_tensor()
    assert b.dtype.is_floating_point and b.requires_grad
    assert torch.equal(b.detach().int(), q.channel_bits())
    b.sum().backward()
    assert q.log2_qplus.grad is not None and float(q.log2_qplus.grad.abs().sum()) > 0
    assert q.log2_step.grad is not None and float(q.log2_step.grad.abs().sum()) > 0


def test_learned_range_unsigned_activation():
    x = torch.rand(16, 8) * 3
    q = make_quantizer(QuantizerConfig(kind="learned_range", bits=4), "act")
    q.init_from_tensor(x)
    assert q.signed is False and q.channel_bits().item() == 4
    y = q(x)
    assert float(y.detach().min()) >= 0 and torch.equal(q.dequantize(q.quantize(x)), y)
    assert int(q.quantize(x).max()) == 15


def test_learned_range_fill_levels_uses_every_level_the_bits_pay_for():
    """Without fill_levels the penalty's gradient pushes q+/d down inside a bit-width (n = 3 ->
    2 at 2 unsigned bits: 3 levels for the price of 4); with it the grid stays full."""
    torch.manual_seed(8)
    w = torch.randn(4, 8)
    q = _lr_quantizer(bits=6, bits_min=2, bits_max=8, fill_levels=True)
    q.init_from_tensor(w)
    ratio = torch.tensor([1.2, 2.2, 4.4, 9.0])  # 2, 3, 4, 5 bits signed
    q.set_step_and_range(qplus=q.effective_step() * ratio)
    assert q.channel_bits().tolist() == [2, 3, 4, 5]
    assert q.levels().tolist() == [1, 3, 7, 15]
    assert int(q.quantize(w * 100).abs().max()) == 15
    assert torch.equal(q.dequantize(q.quantize(w)), q(w).detach())
    q.project_()  # keeps q+ where it was inside each bit-width, so it can keep moving
    assert torch.allclose(q.qplus, q.effective_step() * ratio)
    b = q.bit_tensor()
    assert torch.equal(b.detach().int(), q.channel_bits())
    b.sum().backward()
    assert float(q.log2_qplus.grad.abs().sum()) > 0, "the penalty still reaches q+"
    q.set_learn_bits(False)  # fine-tuning keeps the full grids
    assert q.levels().tolist() == [1, 3, 7, 15]


def test_learned_range_fill_levels_unsigned():
    x = torch.rand(16, 8) * 3
    q = make_quantizer(QuantizerConfig(kind="learned_range", bits=2, fill_levels=True), "act")
    q.init_from_tensor(x)
    q.set_step_and_range(qplus=q.effective_step() * 2.0)  # n = 2: still 2 bits
    assert q.channel_bits().item() == 2 and q.levels().item() == 3
    assert int(q.quantize(x * 100).max()) == 3


def _filled_channels():
    """A 4-channel filled learned_range quantizer at q+/d = 1.2, 2.2, 4.4, 9.0 (2-5 bits)."""
    torch.manual_seed(8)
    w = torch.randn(4, 8)
    q = _lr_quantizer(bits=6, bits_min=2, bits_max=8, fill_levels=True)
    q.init_from_tensor(w)
    q.set_step_and_range(qplus=q.effective_step() * torch.tensor([1.2, 2.2, 4.4, 9.0]))
    return q, w


def test_learned_range_filled_grid_keeps_the_step_and_clips_at_its_levels():
    """A filled grid keeps d and clips at d * levels (up to 1.7 x q+ here), the codes match
    the forward pass, and switching bit learning off and on again keeps the forward pass."""
    q, w = _filled_channels()
    assert q.channel_bits().tolist() == [2, 3, 4, 5] and q.levels().tolist() == [1, 3, 7, 15]
    clipped = q(w.sign() * 100).detach().abs().amax(1)
    assert torch.allclose(clipped, (q.effective_step() * q.levels()).reshape(-1))
    assert torch.equal(q.dequantize(q.quantize(w)), q(w).detach())
    before = q(w).detach()
    q.set_learn_bits(False)
    assert torch.allclose(q(w).detach(), before, atol=1e-7) and q.channel_bits().tolist() == [2, 3, 4, 5]
    q.set_learn_bits(True)
    assert torch.allclose(q(w).detach(), before, atol=1e-7)


def test_learned_range_filled_grid_task_gradient_skips_qplus_inside_a_bit_width():
    """A value between q+ and d * levels is not clipped, so the task loss does not move q+
    inside a bit-width: only the budget penalty (through the bits) does."""
    q, _ = _filled_channels()
    x = (q.qplus.detach() * 1.3).unsqueeze(1).expand(4, 8).clone()  # between q+ and d * levels for 3-5 bits
    q(x).sum().backward()
    assert float(q.log2_qplus.grad[1:].abs().max()) == 0.0
