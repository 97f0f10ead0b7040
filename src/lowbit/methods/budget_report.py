"""Bit allocation reports (Schaefer et al., Figure 5): per-layer and per-channel bits, budget check."""

from __future__ import annotations

from typing import Any, Dict, List

import torch

from ..plotting import pyplot, save_figure

TOLERANCE = 0.01  # the final size must meet the budget within 1%


def allocation(weights, acts) -> List[Dict[str, Any]]:
    """Per layer: weight bits per slice (and mean), activation bits of its input(s)."""
    rows: Dict[str, Dict[str, Any]] = {}
    for t in weights:
        bits = t.bits().detach().round().int().tolist()
        rows[t.layer] = {"layer": t.layer, "weight_bits_mean": sum(bits) / len(bits),
                         "weight_bits_min": min(bits), "weight_bits_max": max(bits),
                         "weight_bits": bits, "params": t.per_slice * t.slices}
    for t in acts:
        row = rows.setdefault(t.layer, {"layer": t.layer})
        row.setdefault("act_bits", []).append(int(t.bits().detach().round().max()))
    return list(rows.values())


def _check(name: str, achieved: float, target) -> Dict[str, Any]:
    if target is None:
        return {"achieved_kb": achieved}
    over = (achieved - target) / target
    return {"target_kb": target, "achieved_kb": achieved, "met": over <= TOLERANCE,
            "over_percent": 100 * max(over, 0.0),
            "note": (f"{name} budget met ({achieved:.2f} of {target:.2f} KB)" if over <= TOLERANCE else
                     f"{name} budget MISSED by {100 * over:.2f}% ({achieved:.2f} KB vs {target:.2f} KB)")}


def budget_report(budget, ctx) -> Dict[str, Any]:
    """The budget method's report.json section (and bits.png when matplotlib is present)."""
    with torch.no_grad():
        w, a = budget.costs_kb()
    out = {"act_mode": budget.config.act_mode, "phi": budget.config.phi, "beta": budget.config.beta,
           "weights": _check("weight", float(w), budget.t_w),
           "activations": _check("activation", float(a), budget.t_a),
           "total": _check("total", float(w + a), budget.t_total),
           "layers": allocation(budget.weights, budget.acts)}
    if ctx.out_dir is not None:
        path = save_bits_plot(out["layers"], ctx.out_dir / "bits.png")
        if path:
            out["images"] = {"bits": path.name}
    return out


def save_bits_plot(rows: List[Dict[str, Any]], path):
    """Weight bits (mean with per-channel min/max) and activation bits per layer."""
    plt = pyplot()
    if plt is None or not rows:
        return None
    names = [r["layer"] for r in rows]
    x = list(range(len(rows)))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(6, 0.35 * len(rows)), 5), sharex=True)
    mean = [r.get("weight_bits_mean", 0) for r in rows]
    lo = [m - r.get("weight_bits_min", m) for m, r in zip(mean, rows)]
    hi = [r.get("weight_bits_max", m) - m for m, r in zip(mean, rows)]
    top.bar(x, mean, yerr=[lo, hi], color="#6baed6", capsize=2)
    top.set_ylabel("weight bits\n(mean, channel range)")
    bottom.bar(x, [max(r.get("act_bits", [0])) for r in rows], color="#fd8d3c")
    bottom.set_ylabel("activation bits")
    bottom.set_xticks(x)
    bottom.set_xticklabels(names, rotation=90, fontsize=6)
    fig.tight_layout()
    return save_figure(fig, path)
