"""Runs of the same point over several seeds: mean and standard error of every metric, and
mean learning curves (top-1 per epoch).

The standard error is ``s / sqrt(n)`` with the sample standard deviation ``s`` (n - 1 in the
denominator); one run has no standard error (None).

>>> mean_se([80.0, 82.0, 84.0])
(82.0, 1.1547005383792515)
>>> mean_se([4.0])
(4.0, None)
>>> rows = [{"recipe": "a", "params": {}, "seed": s, "run": f"r{s}", "metrics": {"top1": t},
...          "curves": {"top1": [t - 1, t]}} for s, t in ((0, 80.0), (1, 82.0))]
>>> p = aggregate_points(rows)[0]
>>> p["n"], p["mean"]["top1"], p["se"]["top1"], p["curves"]["top1"]
(2, 81.0, 1.0, [80.0, 81.0])
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple


def mean_se(values: Sequence[float]) -> Tuple[float, Optional[float]]:
    """Mean and standard error of the mean (None for a single value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def numeric(d: Dict[str, Any]) -> Dict[str, float]:
    """The plain-number entries of a metrics dict."""
    return {k: float(v) for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def history_curves(history: Iterable[Dict[str, Any]]) -> Dict[str, List[float]]:
    """``{"top1": [...], "twin_top1": [...]}``: every ``*top1`` value of a run's epoch history."""
    curves: Dict[str, List[float]] = {}
    for entry in history:
        for k, v in entry.items():
            if k.endswith("top1") and isinstance(v, (int, float)):
                curves.setdefault(k, []).append(float(v))
    return curves


def mean_curves(curves: List[Dict[str, List[float]]]) -> Dict[str, List[float]]:
    """Epoch-wise means of the curves every run has (cut to the shortest run)."""
    keys = [k for k in (curves[0] if curves else {}) if all(k in c for c in curves)]
    out = {}
    for k in keys:
        length = min(len(c[k]) for c in curves)
        out[k] = [sum(c[k][i] for c in curves) / len(curves) for i in range(length)]
    return out


def aggregate_points(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Group sweep rows (recipe, params, seed, run, metrics, curves) into points, in the order
    each point first appears: ``n``, ``seeds``, ``runs``, ``mean`` / ``se`` of every metric all
    its runs report, and the mean ``curves``."""
    groups: Dict[Tuple[Any, str], List[Dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r.get("recipe"), json.dumps(r["params"], sort_keys=True)), []).append(r)
    points = []
    for (recipe, _), runs in groups.items():
        metrics = [numeric(r["metrics"]) for r in runs]
        keys = [k for k in metrics[0] if all(k in m for m in metrics)]
        stats = {k: mean_se([m[k] for m in metrics]) for k in keys}
        points.append({"recipe": recipe, "params": runs[0]["params"], "n": len(runs),
                       "seeds": [r.get("seed") for r in runs], "runs": [r["run"] for r in runs],
                       "mean": {k: v[0] for k, v in stats.items()},
                       "se": {k: v[1] for k, v in stats.items()},
                       "curves": mean_curves([r.get("curves", {}) for r in runs])})
    return points
