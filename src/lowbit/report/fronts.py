"""Compare accuracy-vs-size fronts (e.g. a sweep of learned quantization against uniform PTQ).

Rows are dicts with at least ``top1`` and a size field (``size_bytes_packed`` by default: the
packed weights and biases with their scales, what the thesis of Chinbat 2025 plots); a
sweep's ``sweep.json`` rows qualify. The questions a results table answers:

* :func:`front_vs_reference`: for every reference point (say uniform PTQ at b bits), the most
  accurate row that is no larger, and the gap;
* :func:`best_within`: the most accurate row no larger than a size;
* :func:`smallest_within_tolerance`: the smallest row within ``tolerance`` points of a float
  model;
* :func:`compare_fronts`: the first question over several seeds a point (``lowbit sweep
  --compare``): means, the standard error of each gap and the paired gap of every seed.

>>> ref = [{"top1": 90.0, "size_bytes_packed": 100}, {"top1": 97.0, "size_bytes_packed": 200}]
>>> rows = [{"top1": 95.0, "size_bytes_packed": 80}, {"top1": 96.5, "size_bytes_packed": 150}]
>>> [c["gap"] for c in front_vs_reference(rows, ref)]
[5.0, -0.5]
>>> best_within(rows, 150)["top1"]
96.5
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Optional, Sequence

from .aggregate import mean_se

Row = Dict[str, Any]
SIZE = "size_bytes_packed"


def best_within(rows: Sequence[Row], size: float, x: str = SIZE) -> Optional[Row]:
    """The most accurate row whose ``x`` is at most ``size`` (None if every row is larger)."""
    fits = [r for r in rows if r[x] <= size]
    return max(fits, key=lambda r: (r["top1"], -r[x])) if fits else None


def front_vs_reference(rows: Sequence[Row], reference: Sequence[Row], x: str = SIZE) -> List[Dict[str, Any]]:
    """For each reference point (by size): the best row no larger and ``gap`` = its top-1 minus
    the reference's (None where no row is that small). ``gap >= 0`` everywhere means the
    front of ``rows`` is at or above the reference at every size the reference covers."""
    out = []
    for ref in sorted(reference, key=lambda r: r[x]):
        best = best_within(rows, ref[x], x)
        out.append({"reference": ref, "best": best,
                    "gap": None if best is None else round(best["top1"] - ref["top1"], 4)})
    return out


def smallest_within_tolerance(rows: Sequence[Row], top1_float: float, tolerance: float = 1.0,
                              x: str = SIZE) -> Optional[Row]:
    """The smallest row whose top-1 is at least ``top1_float - tolerance`` (None if none)."""
    ok = [r for r in rows if r["top1"] >= top1_float - tolerance]
    return min(ok, key=lambda r: (r[x], -r["top1"])) if ok else None


def seed_points(rows: Sequence[Row], x: str = SIZE) -> List[Row]:
    """Runs (sweep rows: ``recipe``, ``params``, ``seed``, ``top1``, ``x``) -> one point per recipe
    and params, in first-seen order: ``top1`` the mean over its seeds, ``se`` its standard error
    (None for one run), ``x`` the largest over the seeds (a point is "no larger" only if every
    seed is), ``by_seed`` {seed: top1}."""
    groups: Dict[str, List[Row]] = {}
    for r in rows:
        groups.setdefault(json.dumps([r.get("recipe"), r["params"]], sort_keys=True), []).append(r)
    points = []
    for runs in groups.values():
        mean, se = mean_se([r["top1"] for r in runs])
        points.append({**runs[0], "top1": mean, "se": se, x: max(r[x] for r in runs),
                       "by_seed": {str(r.get("seed")): r["top1"] for r in runs}})
    return points


def compare_fronts(rows: Sequence[Row], reference: Sequence[Row], x: str = SIZE) -> List[Dict[str, Any]]:
    """:func:`front_vs_reference` over the seed means of runs: for each reference point, the
    most accurate point no larger, ``gap`` (difference of the means), ``se`` its standard error
    ``sqrt(se_a^2 + se_b^2)`` (unpaired; None under two seeds a side) and ``paired`` {seed: gap}
    for the seeds both points have.

    >>> runs = [{"params": {"b": 2}, "seed": s, "top1": t, "size": 90} for s, t in ((0, 81.0), (1, 83.0))]
    >>> ref = [{"params": {"b": 4}, "seed": s, "top1": t, "size": 100} for s, t in ((0, 80.0), (1, 80.0))]
    >>> c = compare_fronts(runs, ref, x="size")[0]
    >>> c["gap"], c["se"], c["paired"]
    (2.0, 1.0, {'0': 1.0, '1': 3.0})
    """
    out = []
    for c in front_vs_reference(seed_points(rows, x), seed_points(reference, x), x):
        ref, best = c["reference"], c["best"]
        if best is not None:
            c["gap"] = best["top1"] - ref["top1"]
            c["se"] = None if best["se"] is None or ref["se"] is None else math.hypot(best["se"], ref["se"])
            c["paired"] = {s: t - ref["by_seed"][s] for s, t in best["by_seed"].items() if s in ref["by_seed"]}
        out.append(c)
    return out


def kb(size_bytes: float) -> str:
    return f"{size_bytes / 1024:.1f}"


def comparison_table(rows: Sequence[Row], reference: Sequence[Row], label, ref_label,
                     x: str = SIZE) -> str:
    """Markdown: one line per reference point, the best row no larger, and the gap.

    ``label(row)`` / ``ref_label(row)`` name a point (e.g. its lambda, its bit-width).
    """
    lines = ["| reference | size (KB) | top-1 | best no larger | size (KB) | top-1 | gap |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: |"]
    for c in front_vs_reference(rows, reference, x):
        ref, best = c["reference"], c["best"]
        right = "none this small | | | " if best is None else \
            f"{label(best)} | {kb(best[x])} | {best['top1']:.2f} | {c['gap']:+.2f}"
        lines.append(f"| {ref_label(ref)} | {kb(ref[x])} | {ref['top1']:.2f} | {right} |")
    return "\n".join(lines)
