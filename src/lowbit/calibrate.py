"""Calibration: initialise every quantizer of a prepared model from data.

Observers (see :mod:`lowbit.quantizers.observers`): ``minmax``, ``percentile`` (e.g. 99.99th
for activations), ``gaussian`` (mean +- k sigma, for weights), ``mse`` (clip that minimises the
quantization error). Each quantizer uses the observer of its config unless overridden here.

PTQ is prepare + calibrate + evaluate:

>>> import torch
>>> from torch import nn
>>> from lowbit import QuantSpec, QuantizerConfig, ptq
>>> model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
>>> data = [(torch.randn(32, 8), None) for _ in range(4)]
>>> spec = QuantSpec(weight=QuantizerConfig(kind="uniform", bits=8, granularity="channel"),
...                  act=QuantizerConfig(kind="uniform", bits=8, observer="percentile"))
>>> qmodel = ptq(model, spec, data, batches=4)
>>> qmodel.eval()(torch.randn(2, 8)).shape
torch.Size([2, 4])
"""

from __future__ import annotations

import sys
from typing import Dict, Iterable, Optional

import torch
from torch import nn

from .errors import ConfigError, DataError
from .nn.inputs import batch_inputs, model_device, run_model
from .nn.prepare import prepare
from .nn.spec import QuantSpec
from .nn.walk import act_quantizers, weight_quantizers
from .quantizers.observers import Observer

__all__ = ["calibrate", "calibrate_weights", "ptq", "Observer"]


def _inputs(batch):
    """The model input of a loader item (see :func:`lowbit.nn.inputs.batch_inputs`)."""
    try:
        return batch_inputs(batch)
    except ConfigError as exc:
        raise DataError(f"calibration {exc}") from None


def _check_reached(observers: Dict[str, Observer]) -> None:
    """A DataError naming the layers whose observers saw no data (keys ``layer`` or ``add[i]``)."""
    never = sorted({name.split("[")[0] for name, o in observers.items() if o.lo is None})
    if never:
        raise DataError(f"layer(s) {', '.join(never[:8])} never ran during calibration (the "
                        "model's forward did not call them on these batches); calibrate with "
                        "inputs that reach them, or leave them out (QuantSpec(exclude=[...]))")


def calibrate_weights(model: nn.Module, observer: Optional[str] = None) -> int:
    """Re-initialise every weight quantizer from its current weight; returns how many."""
    n = 0
    for _, mod, wq in weight_quantizers(model):
        wq.init_from_tensor(mod.weight, observer)
        n += 1
    return n


@torch.no_grad()
def calibrate(model: nn.Module, loader: Iterable, batches: Optional[int] = None, *,
              weights: bool = True, weight_observer: Optional[str] = None,
              act_observer: Optional[str] = None, device: Optional[torch.device] = None,
              verbose: bool = False) -> None:
    """Initialise weight quantizers from the weights and activation quantizers from data.

    Runs up to ``batches`` batches of ``loader`` through the model in eval mode with activation
    quantizers passing data through while their observers watch it, then sets every scale.
    Raises DataError for an empty loader or NaN/Inf activations.
    """
    if batches is not None and batches < 1:
        raise ConfigError(f"batches must be >= 1, got {batches}")
    if weights:
        calibrate_weights(model, weight_observer)
    targets = [(name, q) for name, q in act_quantizers(model)
               if q.enabled and q.calibrated]
    if not targets:
        return
    observers = {name: q.observer(act_observer) for name, q in targets}
    handles = [q.register_forward_pre_hook(lambda m, a, o=observers[name]: o.update(a[0]))
               for name, q in targets]
    for _, q in targets:
        q.enabled = False
    was_training = model.training
    device = device or model_device(model)
    seen = 0
    try:
        model.eval()
        for i, batch in enumerate(loader):
            if batches is not None and i >= batches:
                break
            run_model(model, _inputs(batch), device)
            seen += 1
            if verbose:
                print(f"\rcalibrating: batch {seen}{'/' + str(batches) if batches else ''}",
                      end="", file=sys.stderr, flush=True)
    finally:
        for h in handles:
            h.remove()
        for _, q in targets:
            q.enabled = True
        model.train(was_training)
        if verbose:
            print(file=sys.stderr)
    if seen == 0:
        raise DataError("the calibration loader yielded no batches; give it at least one batch of data")
    _check_reached(observers)
    for name, q in targets:
        q.calibrate_from(*observers[name].compute())


def ptq(model: nn.Module, spec: Optional[QuantSpec], loader: Iterable,
        batches: Optional[int] = 8, **kwargs) -> nn.Module:
    """Post-training quantization: ``prepare`` a copy of ``model`` and ``calibrate`` it."""
    qmodel = prepare(model, spec)
    calibrate(qmodel, loader, batches, **kwargs)
    return qmodel
