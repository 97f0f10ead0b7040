"""Fast path for the fake-quantization hot loops: fused kernels made by ``torch.compile``.

Eager PyTorch runs each elementwise step of fake quantization (divide, round, add, clamp,
subtract, multiply) as its own pass over memory, forward and backward, which made W4A4 training
several times slower than float on CPU. :func:`fast_fake_quantize` is an autograd Function whose
forward and backward elementwise work are each one compiled loop; :func:`fast_clip_round` does
the same for the learned-range quantizer (:func:`lowbit.ops.affine.clip_round`).

By default the values and input gradients are bit-identical to eager autograd, and each scale /
zero-point gradient is formed by adding its two per-element terms inside the compiled loop and
reducing once (equal to eager up to float32 summation order). With ``LOWBIT_EXACT_GRAD=1`` (or
``set_exact_gradients(True)``) every gradient is **bit-identical** to its eager function: the compiled loops evaluate the same float32 expressions that eager autograd
evaluates (``grad / scale``, ``-grad * ((x / scale) / scale)``, ...), and the reductions of
the scale and zero-point gradients to their (per-tensor / per-channel) shapes are done by the
same eager ``sum_to_size`` calls autograd uses, because a compiled reduction sums in a
different order and differs in the last bits. Only ``x`` (and the small scale and zero point)
is saved for the backward; the rest is recomputed there. The price of exactness: with a learned
scale, the backward writes an extra input-sized temporary and runs a second reduction per
parameter.

Estimators whose backward calls a transcendental function (acos, tanh, invtanh) always use the
eager kernel, since compiled ``sin``/``tanh``/``atanh`` round differently.

Compilation must never cost more than it saves, whatever the model: every call goes through a
canonical view (:mod:`lowbit.ops.layout`: ``(N,)`` per tensor, ``(C, n)`` per output channel,
in memory order), so one graph serves every layer shape and memory format, and a signature is
compiled only after its eager calls have taken as long as a compile (:mod:`lowbit.ops.compiled`).

It needs a C++ compiler on CPU; if compilation fails, lowbit warns once and falls back to eager
for the process. Control: ``LOWBIT_COMPILE=0`` (or ``set_fast_kernels(False)``) disables it;
``1`` forces it (default on).
"""

from __future__ import annotations

import os
import time
from typing import Callable, Optional

import torch
from torch.autograd import Function

from .affine import clip_round, fake_quantize
from .compiled import charge, decide, run as run_compiled
from .layout import canonical
from .rounding import ESTIMATORS, _ScaledRound, check_rounding, floor_fix

_state = {"enabled": None, "failed": False, "exact": None}
#: estimators whose backward is plain arithmetic, so compiled code reproduces eager bit for bit;
#: acos/tanh/invtanh call sin/tanh/atanh, whose compiled (vectorised) versions differ from
#: eager's in the last bit, so those run the eager kernel
FUSED_ESTIMATORS = ("ste", "pbgs", "ewgs")


def set_fast_kernels(enabled: Optional[bool]) -> None:
    """Enable (True), disable (False) or reset to the environment default (None)."""
    _state["enabled"] = enabled


def set_exact_gradients(exact: Optional[bool]) -> None:
    """True: scale/zero-point gradients bit-identical to eager autograd (two reductions per
    parameter); False: their two per-element terms are added inside the compiled loop and
    reduced once (faster; differs from eager in the last bits); None: environment default
    (``LOWBIT_EXACT_GRAD``, default off)."""
    _state["exact"] = exact


def exact_gradients() -> bool:
    """Whether the compiled backward reproduces eager's scale gradients bit for bit."""
    if _state["exact"] is not None:
        return bool(_state["exact"])
    return os.environ.get("LOWBIT_EXACT_GRAD", "0").strip().lower() in ("1", "true", "yes", "on")


def fast_kernels_enabled() -> bool:
    """Whether quantizers use the compiled kernel (env ``LOWBIT_COMPILE``, default on)."""
    if _state["failed"]:
        return False
    if _state["enabled"] is not None:
        return bool(_state["enabled"])
    return os.environ.get("LOWBIT_COMPILE", "1").strip().lower() not in ("0", "false", "no", "off")


# ----- the elementwise math, written as eager autograd evaluates fake_quantize --------------------
def _codes(x, scale, zero_point, rounding):
    """(u, r, v): ``u = x / scale``, the rounded ``r`` and ``v = r + zero_point`` (unclamped)."""
    u = x / scale
    if rounding == "floor":
        r = torch.floor(u)
        r = r + floor_fix(x, scale, r)
    else:
        r = torch.round(u)
    return u, r, r + zero_point


def _fq_forward(x, scale, zero_point, qmin, qmax, rounding: str):
    _, _, v = _codes(x, scale, zero_point, rounding)
    return (torch.clamp(v, qmin, qmax) - zero_point) * scale


def _estimator_scale(estimator: str, rounding: str = "round") -> Optional[Callable]:
    """The estimator's gradient-scale function, or None for the straight-through estimator.

    Resolved outside the compiled loops: a registry lookup inside them breaks the graph in two
    (and the fusion with it)."""
    est = ESTIMATORS.get(estimator)
    return est.scale if rounding == "round" and issubclass(est, _ScaledRound) else None


def _fq_backward(g, x, scale, zero_point, qmin, qmax, rounding: str, est_scale: Optional[Callable],
                 delta: float, alpha: float, need_x: bool, need_s: bool, need_z: bool,
                 combine: bool = False, codes=None):
    """Per-element gradient terms, each the expression eager autograd computes for that op.

    y = (clamp(round(x / s) + z, qmin, qmax) - z) * s. Returns ``dx`` and the unreduced terms
    of ``ds`` (from ``* s`` and from ``x / s``) and ``dz`` (from ``+ z`` and ``- z``).
    ``codes``: ``(u, r, v)`` of the forward (eager path), recomputed when None (compiled).
    """
    u, r, v = _codes(x, scale, zero_point, rounding) if codes is None else codes
    gd = g * scale                                            # MulBackward (self): grad * other
    gc = torch.where((v >= qmin) & (v <= qmax), gd, gd.new_zeros(()))  # ClampBackward
    gr = gc if est_scale is None else gc * est_scale(u - r, gc, delta, alpha)
    gx = gr / scale if need_x else None                       # DivBackward (self): grad / other
    gs_mul = g * (torch.clamp(v, qmin, qmax) - zero_point) if need_s else None  # grad * self
    gs_div = -(gr * (u / scale)) if need_s else None  # DivBackward (other): x / s / s
    gz_add = gc if need_z else None
    gz_sub = -gd if need_z else None
    if combine:  # one input-sized term per parameter, reduced once by the caller
        return (gx, None if gs_mul is None else gs_mul + gs_div, None,
                None if gz_add is None else gz_add + gz_sub, None)
    return gx, gs_mul, gs_div, gz_add, gz_sub


def _cr_forward(x, lower, upper, step):
    return torch.round(torch.clamp(x, lower, upper) / step) * step


def _cr_codes(x, lower, upper, step):
    xc = torch.clamp(x, lower, upper)
    u = xc / step
    return xc, u, torch.round(u)


def _cr_backward(g, x, lower, upper, step, est_scale: Optional[Callable], delta: float,
                 alpha: float, need_x: bool, need_lo: bool, need_hi: bool, need_d: bool,
                 combine: bool = False, codes=None):
    """Per-element gradient terms of ``clip_round`` as eager autograd computes them.

    y = round(clamp(x, lo, hi) / d) * d. Returns ``dx``, the unreduced ``dlo``, ``dhi`` (the
    ClampBackward rules for tensor bounds) and the two unreduced terms of ``dd``. ``codes``:
    ``(clamp(x), u, r)`` of the forward (eager path), recomputed when None (compiled).
    """
    xc, u, r = _cr_codes(x, lower, upper, step) if codes is None else codes
    gr = g * step                                             # MulBackward (self)
    gu = gr if est_scale is None else gr * est_scale(u - r, gr, delta, alpha)
    gxc = gu / step                                           # DivBackward (self)
    zero = gxc.new_zeros(())
    gx = torch.where((x >= lower) & (x <= upper), gxc, zero) if need_x else None
    glo = torch.where((x < lower) & (lower < upper), gxc, zero) if need_lo else None
    ghi = torch.where((x > upper) | (upper < lower), gxc, zero) if need_hi else None
    gd_mul = g * r if need_d else None                        # MulBackward (other)
    gd_div = -(gu * (u / step)) if need_d else None           # DivBackward (other): xc / d / d
    if combine and need_d:
        return gx, glo, ghi, gd_mul + gd_div, None
    return gx, glo, ghi, gd_mul, gd_div


_EAGER = {"forward": _fq_forward, "backward": _fq_backward,
          "clip_forward": _cr_forward, "clip_backward": _cr_backward}


def _run(name: str, *args):
    """The ``name`` loop compiled (see :mod:`lowbit.ops.compiled`)."""
    return run_compiled(name, _EAGER[name], args, _state)


def _saved(ctx, tensors, codes) -> None:
    """Save ``tensors`` and, on the eager path, the forward's intermediates."""
    ctx.n_codes = len(codes)
    ctx.save_for_backward(*tensors, *codes)


def _unsaved(ctx):
    saved = ctx.saved_tensors
    n = len(saved) - ctx.n_codes
    return saved[:n], (tuple(saved[n:]) if ctx.n_codes else None)


def _timed_backward(ctx, name: str, args, codes):
    """The backward loop: compiled, or (eager path, ``ctx.key`` set) eagerly with the saved
    intermediates, its time charged to the forward's signature."""
    if ctx.key is None:
        return _run(name, *args)
    start = time.perf_counter()
    out = _EAGER[name](*args, codes=codes)
    charge(ctx.key, time.perf_counter() - start)
    return out


def _reduce(t: Optional[torch.Tensor], like: torch.Tensor) -> Optional[torch.Tensor]:
    return None if t is None else t.sum_to_size(like.shape)


def _add(a: Optional[torch.Tensor], b: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    return a if a is None or b is None else a + b


class FastFakeQuantize(Function):
    """``fake_quantize`` with compiled forward/backward loops and eager reductions."""

    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin, qmax, rounding, estimator, delta, alpha, key):
        ctx.bounds = tuple(isinstance(b, torch.Tensor) for b in (qmin, qmax))
        ctx.consts, ctx.key = (qmin, qmax, rounding, estimator, delta, alpha), key
        bounds = [b for b in (qmin, qmax) if isinstance(b, torch.Tensor)]
        if key is None:  # compiled: keep x only, the backward loop recomputes the rest
            _saved(ctx, (x, scale, zero_point, *bounds), ())
            return _run("forward", x, scale, zero_point, qmin, qmax, rounding)
        codes = _codes(x, scale, zero_point, rounding)  # eager: keep them, as autograd would
        _saved(ctx, (x, scale, zero_point, *bounds), codes)
        return (torch.clamp(codes[2], qmin, qmax) - zero_point) * scale  # = _fq_forward

    @staticmethod
    def backward(ctx, g):
        (x, scale, zero_point, *tensor_bounds), codes = _unsaved(ctx)
        qmin, qmax, rounding, estimator, delta, alpha = ctx.consts
        bounds = iter(tensor_bounds)
        qmin = next(bounds) if ctx.bounds[0] else qmin
        qmax = next(bounds) if ctx.bounds[1] else qmax
        need_x, need_s, need_z = ctx.needs_input_grad[:3]
        gx, gs_mul, gs_div, gz_add, gz_sub = _timed_backward(ctx, "backward", (
            g, x, scale, zero_point, qmin, qmax, rounding, _estimator_scale(estimator, rounding),
            delta, alpha, need_x, need_s, need_z, not exact_gradients()), codes)
        gs = _add(_reduce(gs_mul, scale), _reduce(gs_div, scale))
        gz = _add(_reduce(gz_add, zero_point), _reduce(gz_sub, zero_point))
        return gx, gs, gz, None, None, None, None, None, None, None


class FastClipRound(Function):
    """``clip_round`` with compiled forward/backward loops and eager reductions."""

    @staticmethod
    def forward(ctx, x, lower, upper, step, estimator, delta, alpha, key):
        ctx.consts, ctx.key = (estimator, delta, alpha), key
        if key is None:
            _saved(ctx, (x, lower, upper, step), ())
            return _run("clip_forward", x, lower, upper, step)
        codes = _cr_codes(x, lower, upper, step)
        _saved(ctx, (x, lower, upper, step), codes)
        return codes[2] * step  # = _cr_forward

    @staticmethod
    def backward(ctx, g):
        (x, lower, upper, step), codes = _unsaved(ctx)
        need_x, need_lo, need_hi, need_d = ctx.needs_input_grad[:4]
        estimator, delta, alpha = ctx.consts
        gx, glo, ghi, gd_mul, gd_div = _timed_backward(ctx, "clip_backward", (
            g, x, lower, upper, step, _estimator_scale(estimator), delta, alpha, need_x, need_lo,
            need_hi, need_d, not exact_gradients()), codes)
        gd = _add(_reduce(gd_mul, step), _reduce(gd_div, step))
        return gx, _reduce(glo, lower), _reduce(ghi, upper), gd, None, None, None, None


def _needs_fused_grad(*tensors) -> bool:
    """Gradients will flow and are the fused kind (exact ones are plain autograd's)."""
    return (torch.is_grad_enabled() and not exact_gradients()
            and any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors))


def _dispatch(function, name: str, keyed: tuple, consts: tuple, grad_inputs: tuple,
              eager: Callable[[], torch.Tensor], restore) -> torch.Tensor:
    """``function.apply(*keyed, *consts, key)`` on canonical views: compiled once the
    signature of ``keyed`` has paid for its compile (key None), until then eagerly and timed,
    through ``function`` (its saved-intermediate path) when fused gradients flow to
    ``grad_inputs``, else through the plain ``eager`` op."""
    key = decide(name, keyed, _state)
    if key is None:
        return restore(function.apply(*keyed, *consts, None))
    start = time.perf_counter()  # eager until this signature has paid for its compile
    if _needs_fused_grad(*grad_inputs):
        y = restore(function.apply(*keyed, *consts, key))
    else:
        y = eager()
    charge(key, time.perf_counter() - start)
    return y


def fast_clip_round(x, lower, upper, step, estimator="ste", delta=0.0, alpha=1.0) -> torch.Tensor:
    """Same contract and bit-identical result as :func:`lowbit.ops.affine.clip_round` (the
    learned-range quantizer's forward), fused when enabled."""
    if fast_kernels_enabled() and not torch.jit.is_scripting() and estimator in FUSED_ESTIMATORS:
        xc, params, restore = canonical(x, [lower, upper, step])
        return _dispatch(FastClipRound, "clip_forward", (xc, *params),
                         (estimator, float(delta), float(alpha)), (x, lower, upper, step),
                         lambda: clip_round(x, lower, upper, step, estimator, delta, alpha), restore)
    return clip_round(x, lower, upper, step, estimator, delta, alpha)


def fast_fake_quantize(x, scale, zero_point, qmin, qmax, rounding="round", estimator="ste",
                       delta=0.0, alpha=1.0) -> torch.Tensor:
    """Same contract and bit-identical result as :func:`fake_quantize`, fused when enabled
    (and the estimator is one of :data:`FUSED_ESTIMATORS`)."""
    if fast_kernels_enabled() and not torch.jit.is_scripting() and estimator in FUSED_ESTIMATORS:
        check_rounding(rounding, estimator)
        xc, params, restore = canonical(x, [scale, zero_point, qmin, qmax])
        return _dispatch(FastFakeQuantize, "forward", (xc, *params, rounding),
                         (estimator, float(delta), float(alpha)), (x, scale, zero_point),
                         lambda: fake_quantize(x, scale, zero_point, qmin, qmax, rounding,
                                               estimator, delta, alpha), restore)
    return fake_quantize(x, scale, zero_point, qmin, qmax, rounding, estimator, delta, alpha)
