"""When the fast kernels compile: one graph per kernel signature, and only once it pays.

``torch.compile`` of a fake-quantization loop costs seconds per graph (the first ones in a
process 9 to 18 s with inductor's on-disk cache cold, about 2 s warm, on this project's shared
2-core CPU; benchmarks/results.md) and saves a fraction of a millisecond per call. Two rules
keep it from ever costing more than it saves:

* **one graph per signature, never per layer shape.** Calls arrive as canonical 1-D / 2-D
  views (:mod:`lowbit.ops.layout`) with detached tensors, and are compiled with dynamic shapes;
  a graph is keyed by :func:`signature`. At most ``LOWBIT_COMPILE_MAX`` (default 24) signatures
  are compiled per loop; further ones run eagerly.
* **compile at break-even (rent, then buy).** A new forward signature runs eagerly, timed
  (forward and backward), until its eager calls have taken as long as one compile is expected
  to take (``LOWBIT_COMPILE_BREAKEVEN`` seconds; default: the mean of this process's compiles
  so far, 30 s before the first, about twice a cold first compile). Then it is compiled, with
  its backward. A short run (a calibration, tens of steps) never compiles; a long run pays at
  most one compile per signature on top of what eager would have cost by then (the classic
  rent-or-buy bound: never more than about twice the better choice made in hindsight), and
  runs compiled after that.
  ``set_compile_breakeven(0)`` compiles at the first call.

The eager "rent" path costs what plain autograd costs: without gradients it *is*
``fake_quantize``; with gradients it runs the compiled loops' expressions eagerly, keeping the
intermediates (as autograd does) instead of recomputing them. Every path computes the same
values and gradients bit for bit (the compiled loops evaluate eager's expressions), so when a
signature gets compiled no number moves.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Callable, Dict, Optional, Set, Tuple

import torch

_compiled: Dict[str, Callable] = {}
_signatures: Dict[str, Set[Tuple]] = {}         # compiled signatures, per loop
_eager_seconds: Dict[Tuple, float] = {}          # (loop, signature) -> eager time so far
_settings: Dict[str, Optional[float]] = {"breakeven": None}
compile_stats = {"signatures": 0, "compile_seconds": 0.0, "eager_calls": 0}
DEFAULT_BREAKEVEN = 30.0  # seconds: about twice a first compile in a process (cold cache)


def max_signatures() -> int:
    """Compiled signatures allowed per loop (``LOWBIT_COMPILE_MAX``, default 24)."""
    return int(os.environ.get("LOWBIT_COMPILE_MAX", "24"))


def set_compile_breakeven(seconds: Optional[float]) -> None:
    """Eager seconds a signature runs before it is compiled (0: compile at once; None: the
    environment default, see the module docstring)."""
    _settings["breakeven"] = seconds


def breakeven_seconds() -> float:
    """Eager seconds a signature runs before it compiles: :func:`set_compile_breakeven`, else
    ``LOWBIT_COMPILE_BREAKEVEN``, else the mean compile time so far (30 s before the first)."""
    if _settings["breakeven"] is not None:
        return float(_settings["breakeven"])
    env = os.environ.get("LOWBIT_COMPILE_BREAKEVEN")
    if env is not None:
        return float(env)
    n = compile_stats["signatures"]
    return compile_stats["compile_seconds"] / n if n else DEFAULT_BREAKEVEN


def signature(args) -> Tuple:
    """What a compiled graph specialises on: tensor rank, size-1 dims, dtype, device; the
    value of every other argument except integer bounds (dynamic)."""
    sig = []
    for a in args:
        if isinstance(a, torch.Tensor):
            sig.append((a.dim(), tuple(s == 1 for s in a.shape), a.dtype, a.device.type))
        elif isinstance(a, int) and not isinstance(a, bool):
            sig.append(int)
        else:
            sig.append(a)
    return tuple(sig)


def _detached(args) -> tuple:
    # dynamo would otherwise guard on requires_grad and on the sizes and strides of a view's
    # base (one graph per layer shape again); no copy is made
    return tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)


def decide(name: str, args, state: Dict[str, object]) -> Optional[Tuple]:
    """None when ``name`` should run compiled for ``args`` (compiled already, or its eager
    calls have paid for a compile); otherwise the key to :func:`charge` eager time to."""
    sig = signature(args)
    if state.get("failed"):
        return (name, sig)
    seen = _signatures.setdefault(name, set())
    if sig in seen:
        return None
    key = (name, sig)
    if len(seen) >= max_signatures() or _eager_seconds.get(key, 0.0) < breakeven_seconds():
        return key
    return None


def charge(key: Tuple, seconds: float) -> None:
    """Add ``seconds`` of eager work to ``key``'s account (see :func:`decide`)."""
    _eager_seconds[key] = _eager_seconds.get(key, 0.0) + seconds
    compile_stats["eager_calls"] += 1


def run(name: str, fn: Callable, args: tuple, state: Dict[str, object]):
    """``fn(*args)`` compiled (a new signature is compiled now, up to the cap; beyond it, and
    after a compiler failure, eagerly); on a compiler failure warn once and set
    ``state["failed"]`` (same result either way)."""
    if state.get("failed"):
        return fn(*args)
    args = _detached(args)
    sig = signature(args)
    seen = _signatures.setdefault(name, set())
    try:
        if sig in seen:
            return _compiled[name](*args)
        if len(seen) >= max_signatures():
            return fn(*args)
        if name not in _compiled:
            from torch import _dynamo  # heavy; loaded only when something compiles

            _dynamo.config.cache_size_limit = max(_dynamo.config.cache_size_limit,
                                                  4 * max_signatures())
            _compiled[name] = torch.compile(fn, dynamic=True)
        start = time.perf_counter()
        out = _compiled[name](*args)
        seen.add(sig)
        compile_stats["signatures"] += 1
        compile_stats["compile_seconds"] += time.perf_counter() - start
        return out
    except Exception as exc:  # compiler missing or unsupported platform: stay correct
        out = fn(*args)  # a bad input raises here, and is not a compiler failure
        state["failed"] = True
        warnings.warn(f"lowbit: torch.compile of fake_quantize failed ({exc!r:.200}); "
                      "using the eager kernel (set LOWBIT_COMPILE=0 to silence)")
        return out
