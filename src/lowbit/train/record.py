"""report.json: the one record of a run; Markdown, HTML and plots are rendered from it.

Schema ``lowbit.report/1`` (documented in docs/report.md)::

    schema, lowbit_version, created      identification
    recipe                               the resolved recipe (dict)
    metrics                              the same numbers as metrics.json
    model                                {name, params, input_shape}
    size                                 totals: weight_bits_total, act_bits_total, act_bits_max,
                                         size_bytes_packed, float32_bytes, compression, ...
    layers                               one row per Conv/Linear/Add: op, params, bits (per
                                         slice), weight_bits, weight/overhead/bias/total bytes,
                                         act_elements, act_bits_each, quantizers, folded_bn
    float_modules                        modules whose parameters stay float32 (embeddings,
                                         attention without nn.Linear, norms, custom dense
                                         classes, ...): name, type, params, reason
    history                              one row per epoch: phase, epoch, step, top1, test_loss,
                                         seconds (and what methods add, e.g. swa_top1, twin_top1)
    methods                              {method name: its own section}
    environment                          {python, torch, platform, cpu_capability, threads,
                                         device}: what a trained number depends on beyond the
                                         recipe and seed
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from torch import nn

from .. import __version__
from ..accounting import ModelCost
from ..errors import ConfigError, FormatError
from ..nn.walk import quant_summary

SCHEMA = "lowbit.report/1"


def _layer_rows(cost: ModelCost, model: nn.Module) -> List[Dict[str, Any]]:
    summary = quant_summary(model)
    rows = []
    for layer, d in zip(cost.layers, cost.to_dict()["layers"]):
        q = summary.get(layer.name, {})
        d["weight_quantizer"] = q.get("weight", "float")
        d["input_quantizer"] = q.get("input", q.get("inputs", "float"))
        rows.append(d)
    return rows


def _cpu_name() -> str:
    try:  # Linux; elsewhere platform.processor() is the best there is
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(device: Any = "cpu") -> Dict[str, Any]:
    """Versions and hardware a run's trained numbers depend on: the same recipe and seed give
    the same weights on one machine (at any thread count), not necessarily on another CPU or a
    GPU, whose float sums may round differently.

    >>> sorted(environment())
    ['cpu_capability', 'device', 'platform', 'python', 'threads', 'torch']
    """
    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    return {"python": sys.version.split()[0], "torch": torch.__version__,
            "platform": f"{platform.system()} {platform.machine()}",
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(), "device": f"{device.type}: {name}"}


def build_report(*, recipe: Dict[str, Any], metrics: Dict[str, Any], cost: ModelCost,
                 model: nn.Module, history: List[Dict[str, Any]],
                 methods: Optional[Dict[str, Any]] = None, device: Any = "cpu") -> Dict[str, Any]:
    """Assemble the report dictionary of a finished run."""
    size = {k: v for k, v in cost.to_dict().items() if k not in ("layers", "float_modules")}
    spec = getattr(model, "lowbit_spec", None) or {}
    params = sum(p.numel() for n, p in model.named_parameters() if "quantizer" not in n)
    return {
        "schema": SCHEMA,
        "lowbit_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "recipe": recipe,
        "metrics": metrics,
        "model": {"name": spec.get("name", type(model).__name__), "params": params,
                  "input_shape": cost.input_shape},
        "size": size,
        "layers": _layer_rows(cost, model),
        "float_modules": cost.float_modules,
        "history": history,
        "methods": methods or {},
        "environment": environment(device),
    }


_SECTIONS = {"recipe": dict, "metrics": dict, "model": dict, "size": dict, "layers": list,
             "history": list, "methods": dict}


def read_report(path, run=None) -> Dict[str, Any]:
    """Load and check a report.json: a ConfigError/FormatError (one line) for a missing,
    binary, malformed, empty or foreign file, never a half-rendered report."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; run `lowbit train ... --out {run or path.parent}` first")
    try:
        report = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise FormatError(f"{path} is not text (binary data); it is damaged: train the run again") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise FormatError(f"{path} is not valid JSON: {str(exc)[:120]}") from None
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        got = (f"a JSON {type(report).__name__}" if not isinstance(report, dict)
               else "an empty object" if not report else f"schema {report.get('schema')!r}")
        raise FormatError(f"{path} is not a lowbit report (expected an object with schema "
                          f"{SCHEMA!r}, got {got})")
    for key, kind in _SECTIONS.items():
        if not isinstance(report.get(key), kind):
            raise FormatError(f"{path}: section {key!r} is missing or not a JSON "
                              f"{'object' if kind is dict else 'list'}; the report is damaged")
    for key in ("layers", "history"):
        if not all(isinstance(row, dict) for row in report[key]):
            raise FormatError(f"{path}: every row of {key!r} must be a JSON object")
    return report
