"""Fast path for the fake-quantization hot loop: ``torch.compile`` of :func:`fake_quantize`.

Eager PyTorch runs each elementwise step of fake quantization (divide, round, add, clamp,
subtract, multiply) as its own pass over memory, forward and backward, which made W4A4 training
several times slower than float on CPU. Compiling the pure function fuses them into one loop
per direction and gives bit-identical results (checked in the tests). It needs a C++ compiler
on CPU; if compilation fails, lowbit warns once and falls back to eager for the process.

Control: ``LOWBIT_COMPILE=0`` (or ``set_fast_kernels(False)``) disables it; ``1`` forces it.
"""

from __future__ import annotations

import os
import warnings
from typing import Callable, Optional

import torch

from .affine import fake_quantize

_state = {"enabled": None, "compiled": None, "failed": False}


def set_fast_kernels(enabled: Optional[bool]) -> None:
    """Enable (True), disable (False) or reset to the environment default (None)."""
    _state["enabled"] = enabled


def fast_kernels_enabled() -> bool:
    """Whether quantizers use the compiled kernel (env ``LOWBIT_COMPILE``, default on)."""
    if _state["failed"]:
        return False
    if _state["enabled"] is not None:
        return bool(_state["enabled"])
    return os.environ.get("LOWBIT_COMPILE", "1").strip().lower() not in ("0", "false", "no", "off")


def _compiled() -> Callable:
    if _state["compiled"] is None:
        import torch._dynamo

        # one compiled graph per (rounding, estimator, bit range kind); allow plenty of them
        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 256)
        _state["compiled"] = torch.compile(fake_quantize, dynamic=True)
    return _state["compiled"]


def fast_fake_quantize(x, scale, zero_point, qmin, qmax, rounding="round", estimator="ste",
                       delta=0.0, alpha=1.0) -> torch.Tensor:
    """Same contract and result as :func:`fake_quantize`, fused by ``torch.compile`` when on."""
    if fast_kernels_enabled() and not torch.jit.is_scripting():
        try:
            return _compiled()(x, scale, zero_point, qmin, qmax, rounding, estimator, delta, alpha)
        except Exception as exc:  # compiler missing or unsupported platform: stay correct
            _state["failed"] = True
            warnings.warn(f"lowbit: torch.compile of fake_quantize failed ({exc!r:.200}); "
                          "using the eager kernel (set LOWBIT_COMPILE=0 to silence)")
    return fake_quantize(x, scale, zero_point, qmin, qmax, rounding, estimator, delta, alpha)
