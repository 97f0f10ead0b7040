"""The compiled fast kernel is bit-identical to the eager one, forward and backward, with exact
gradients (``set_exact_gradients(True)``); in the default fused mode the values and input
gradients are still identical and the scale / zero-point gradients agree to float32 rounding.

Compilation takes a few seconds per graph, so this file compiles few graphs: per-channel STE
(a conv weight: x and scale gradients), per-tensor EWGS with a learned asymmetric zero point (a
channels_last activation), and the learned-range clip-and-round (signed: x, q+ and d gradients).
"""

import warnings

import pytest
import torch

from lowbit.ops import (clip_round, fake_quantize, fast_clip_round, fast_fake_quantize,
                        fast_kernels_enabled, set_fast_kernels)
from lowbit.ops import compiled as policy
from lowbit.ops import kernels
from lowbit.ops.compiled import set_compile_breakeven


@pytest.fixture(params=[True, False], ids=["exact", "fused"])
def compiled(request):
    set_fast_kernels(True)
    set_compile_breakeven(0)  # compile at the first call
    kernels.set_exact_gradients(request.param)
    try:
        yield request.param
    finally:
        set_fast_kernels(None)
        set_compile_breakeven(None)
        kernels.set_exact_gradients(None)


def _same(a, b, exact: bool, what: str) -> None:
    """Bit-identical, or (a reduced parameter gradient in fused mode) equal to float32 rounding."""
    assert a.shape == b.shape, what
    if exact or what in ("y", "dx"):
        assert torch.equal(a, b), what
    else:
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * float(b.abs().max()), msg=what)


def _run(fn, x, s, z, qmin, qmax, est, g, need_z):
    x = x.clone().requires_grad_()
    s = s.clone().requires_grad_()
    z = z.clone().requires_grad_(need_z)
    y = fn(x, s, z, qmin, qmax, "round", est, 0.2, 1.0)
    y.backward(g)
    return y.detach(), x.grad, s.grad, z.grad


CASES = [
    # (x shape, scale shape, estimator, learned zero point, memory format)
    ((16, 3, 3, 3), (16, 1, 1, 1), "ste", False, torch.contiguous_format),
    ((8, 4, 6, 6), (), "ewgs", True, torch.channels_last),
]


@pytest.mark.parametrize("xs,ss,est,need_z,fmt", CASES)
def test_compiled_kernel_is_bit_identical(compiled, xs, ss, est, need_z, fmt):
    if not fast_kernels_enabled():
        pytest.skip("fast kernels unavailable on this machine (compiler failed earlier)")
    gen = torch.Generator().manual_seed(len(xs) + len(ss))
    x = (torch.randn(xs, generator=gen) * 3).contiguous(memory_format=fmt)
    s = torch.rand(ss, generator=gen) * 0.5 + 0.05
    z = torch.randint(-3, 3, ss, generator=gen).float() if need_z else torch.zeros(ss)
    g = torch.randn(xs, generator=gen).contiguous(memory_format=fmt)
    with warnings.catch_warnings():
        # a fallback to eager would pass trivially: make lowbit's fallback warning an error
        warnings.filterwarnings("error", message="lowbit: torch.compile")
        fast = _run(fast_fake_quantize, x, s, z, -8, 7, est, g, need_z)
    eager = _run(fake_quantize, x, s, z, -8, 7, est, g, need_z)
    assert not kernels._state["failed"], "torch.compile failed and lowbit fell back to eager"
    for a, b, what in zip(fast, eager, ("y", "dx", "dscale", "dzero_point")):
        if b is None:
            assert a is None, what
        else:
            _same(a, b, compiled, what)


def _run_clip(fn, x, q, d, est, g, signed):
    x = x.clone().requires_grad_()
    q = q.clone().requires_grad_()
    d = d.clone().requires_grad_()
    lower = -q if signed else torch.zeros_like(q)
    y = fn(x, lower, q, d, est, 0.2, 1.0)
    y.backward(g)
    return y.detach(), x.grad, q.grad, d.grad


def test_compiled_clip_round_is_bit_identical(compiled, signed=True):
    """The learned-range quantizer's kernel: per-channel (d, q+) on a conv weight."""
    if not fast_kernels_enabled():
        pytest.skip("fast kernels unavailable on this machine (compiler failed earlier)")
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(16, 3, 3, 3, generator=gen) * 2
    d = torch.rand(16, 1, 1, 1, generator=gen) * 0.2 + 0.05
    q = d * torch.randint(1, 12, (16, 1, 1, 1), generator=gen) + 0.3 * d  # q+/d not integral
    g = torch.randn(x.shape, generator=gen)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="lowbit: torch.compile")
        fast = _run_clip(fast_clip_round, x, q, d, "ste", g, signed)
    eager = _run_clip(clip_round, x, q, d, "ste", g, signed)
    for a, b, what in zip(fast, eager, ("y", "dx", "dq+", "dstep")):
        _same(a, b, compiled, what)


def test_transcendental_estimators_use_the_eager_kernel(compiled):
    x = torch.randn(5, requires_grad=True)
    s = torch.tensor(0.3, requires_grad=True)
    y = fast_fake_quantize(x, s, torch.tensor(0.0), -8, 7, "round", "tanh", 0.2, 1.0)
    assert "FastFakeQuantize" not in type(y.grad_fn).__name__


def test_disabled_fast_kernels_run_eager():
    set_fast_kernels(False)
    try:
        assert not fast_kernels_enabled()
        y = fast_fake_quantize(torch.randn(5, requires_grad=True), torch.tensor(0.3), torch.tensor(0.0),
                               -8, 7)
        assert "FastFakeQuantize" not in type(y.grad_fn).__name__
    finally:
        set_fast_kernels(None)


def test_env_default_is_off_in_the_test_session(monkeypatch):
    monkeypatch.setenv("LOWBIT_COMPILE", "0")
    assert not fast_kernels_enabled()
    monkeypatch.setenv("LOWBIT_COMPILE", "1")
    assert fast_kernels_enabled() or kernels._state["failed"]


def test_one_graph_per_kernel_signature_not_per_layer_shape():
    """Layers of every shape and memory format share the compiled graphs of their signature
    (per tensor: 1-D, per channel: 2-D); past the cap, new signatures run eagerly."""
    set_fast_kernels(True)
    set_compile_breakeven(0)
    try:
        shapes = [((24, 16, 3, 3), (24, 1, 1, 1), torch.contiguous_format),
                  ((40, 1, 5, 5), (40, 1, 1, 1), torch.contiguous_format),   # depthwise
                  ((32, 24, 1, 1), (32, 1, 1, 1), torch.channels_last),      # 1x1, channels_last
                  ((10, 48), (10, 1), torch.contiguous_format),              # linear
                  ((4, 8, 7, 7), (), torch.channels_last),                   # activation
                  ((2, 5, 12), (), torch.contiguous_format)]                 # transformer act
        before = set(policy._signatures.get("forward", set()))
        for xs, ss, fmt in shapes:
            x = torch.randn(xs).contiguous(memory_format=fmt) if len(xs) == 4 else torch.randn(xs)
            s = torch.rand(ss) + 0.1
            y = fast_fake_quantize(x, s, torch.zeros(ss), -8, 7)
            assert torch.equal(y, fake_quantize(x, s, torch.zeros(ss), -8, 7))
            assert y.stride() == x.stride()
        if kernels._state["failed"]:
            pytest.skip("fast kernels unavailable on this machine (compiler failed earlier)")
        assert len(policy._signatures["forward"] - before) <= 2  # whatever the layer shapes
        eager = policy.compile_stats["eager_calls"]
        old_max = policy.max_signatures
        policy.max_signatures = lambda: 0  # as if the cap were reached
        try:
            x, s, z = torch.randn(3, 4, 5).double(), torch.tensor(0.1).double(), torch.tensor(0.0).double()
            y = fast_fake_quantize(x, s, z, -8, 7)  # float64: a signature not compiled yet
            assert torch.equal(y, fake_quantize(x, s, z, -8, 7))
            assert policy.compile_stats["eager_calls"] == eager + 1
        finally:
            policy.max_signatures = old_max
    finally:
        set_fast_kernels(None)
        set_compile_breakeven(None)


def test_a_signature_compiles_only_after_its_eager_calls_paid_for_it():
    set_fast_kernels(True)
    set_compile_breakeven(3600.0)  # an hour of eager time first: nothing compiles here
    try:
        x, s = torch.randn(7, 9, 11), torch.tensor(0.05)
        n = policy.compile_stats["signatures"]
        for _ in range(3):
            assert torch.equal(fast_fake_quantize(x, s, torch.tensor(0.0), -4, 3),
                               fake_quantize(x, s, torch.tensor(0.0), -4, 3))
        assert policy.compile_stats["signatures"] == n
        key = next(k for k in policy._eager_seconds if k[0] == "forward")
        assert policy._eager_seconds[key] > 0
    finally:
        set_fast_kernels(None)
        set_compile_breakeven(None)


@pytest.mark.parametrize("xs,ss,est,need_z,fmt", CASES[:1])
def test_switching_from_eager_loops_to_compiled_moves_no_bit(xs, ss, est, need_z, fmt):
    """Before break-even a signature runs the same loops eagerly: values and every gradient,
    fused scale gradients included, equal the compiled ones bit for bit."""
    torch.manual_seed(0)
    x = torch.randn(xs).contiguous(memory_format=fmt)
    s, z, g = torch.rand(ss) * 0.2 + 0.05, torch.zeros(ss), torch.randn(xs)
    set_fast_kernels(True)
    try:
        set_compile_breakeven(3600.0)
        eager = _run(fast_fake_quantize, x, s, z, -8, 7, est, g, need_z)
        set_compile_breakeven(0)
        fast = _run(fast_fake_quantize, x, s, z, -8, 7, est, g, need_z)
        if kernels._state["failed"]:
            pytest.skip("fast kernels unavailable on this machine (compiler failed earlier)")
        for a, b in zip(eager, fast):
            assert (a is None and b is None) or torch.equal(a, b)
    finally:
        set_fast_kernels(None)
        set_compile_breakeven(None)
