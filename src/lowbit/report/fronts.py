"""Compare accuracy-vs-size fronts (e.g. a sweep of learned quantization against uniform PTQ).

Rows are dicts with at least ``top1`` and a size field (``size_bytes_packed`` by default: the
packed weights and biases with their scales, what the thesis of Chinbat 2025 plots); a
sweep's ``sweep.json`` rows qualify. The questions a results table answers:

* :func:`front_vs_reference`: for every reference point (say uniform PTQ at b bits), the most
  accurate row that is no larger, and the gap;
* :func:`best_within`: the most accurate row no larger than a size;
* :func:`smallest_within_tolerance`: the smallest row within ``tolerance`` points of a float
  model.

>>> ref = [{"top1": 90.0, "size_bytes_packed": 100}, {"top1": 97.0, "size_bytes_packed": 200}]
>>> rows = [{"top1": 95.0, "size_bytes_packed": 80}, {"top1": 96.5, "size_bytes_packed": 150}]
>>> [c["gap"] for c in front_vs_reference(rows, ref)]
[5.0, -0.5]
>>> best_within(rows, 150)["top1"]
96.5
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

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
