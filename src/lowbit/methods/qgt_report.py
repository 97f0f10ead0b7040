"""QGT's report section: weight errors, compression bottlenecks, weight histograms (the QGT paper).

Compression bottlenecks: which layers make quantization lose accuracy.

For every layer with a weight quantizer: the relative quantization error
``||DQ(w) - w|| / ||w||``, the accuracy when *only that layer* is quantized (sensitivity),
its bits, parameters and packed KB; ranked by accuracy drop, then error.

Weight histograms (the QGT paper, Figure 4): float baseline vs QGT-trained weights of selected
layers, in units of the quantization step, where QGT's clustering on the grid is visible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

import torch
from torch import nn

from ..evaluate import evaluate
from ..nn.walk import weight_quantizers
from ..plotting import pyplot, save_figure

KB = 1024


def _limited(loader: Iterable, max_images: int):
    seen = 0
    for x, y in loader:
        if seen >= max_images:
            return
        take = min(len(y), max_images - seen)
        yield x[:take], y[:take]
        seen += take


def grid_distance(w: torch.Tensor, quantizer) -> float:
    """Mean distance of ``w / step`` to the nearest grid point, in steps (0 = on the grid,
    0.25 for weights spread uniformly between grid points). Affine quantizers only."""
    qp = quantizer.qparams(w)
    if qp.kind != "affine":
        return float("nan")
    g = quantizer.granularity
    wv = g.view(w.detach())
    u = wv / g.expand(qp.scale, wv)
    return float((u - torch.round(u)).abs().mean())


@torch.no_grad()
def bottleneck_table(model: nn.Module, loader: Iterable, max_images: int = 2000,
                     device: Optional[torch.device] = None) -> Dict[str, Any]:
    """Per-layer sensitivity of a prepared model whose weight quantizers are calibrated."""
    layers = list(weight_quantizers(model))
    states = [q.enabled for _, _, q in layers]
    acc = lambda: evaluate(model, _limited(loader, max_images), device)["top1"]  # noqa: E731
    try:
        for _, _, q in layers:
            q.enabled = False
        float_acc = acc()
        for _, _, q in layers:
            q.enabled = True
        quant_acc = acc()
        rows = []
        for name, mod, q in layers:
            for _, _, other in layers:
                other.enabled = other is q
            w = mod.weight.detach()
            rel = float((q(w) - w).norm() / w.norm().clamp_min(1e-12))
            bits = q.channel_bits(w).reshape(-1).float()
            cost_bits = int(bits.sum()) * q.granularity.per_param_count(w.shape)
            rows.append({"layer": name, "rel_error": rel, "solo_top1": acc(), "bits": float(bits.mean()),
                         "params": w.numel(), "kb": cost_bits / 8 / KB})
    finally:
        for (_, _, q), s in zip(layers, states):
            q.enabled = s
    for r in rows:
        r["drop"] = float_acc - r["solo_top1"]
    rows.sort(key=lambda r: (-r["drop"], -r["rel_error"]))
    return {"float_top1": float_acc, "quant_top1": quant_acc, "images": max_images, "layers": rows}


def summary_line(table: Dict[str, Any], top: int = 3) -> str:
    """The layers most responsible for the accuracy drop, in words."""
    worst = [r for r in table["layers"][:top] if r["drop"] > 0]
    if not worst:
        return "no single layer loses accuracy when quantized alone"
    return "layers most responsible for the drop: " + ", ".join(
        f"{r['layer']} (-{r['drop']:.2f} points alone, error {r['rel_error']:.3f})" for r in worst)


def qgt_report(qgt, ctx) -> Dict[str, Any]:
    """QGT's section of report.json: lambdas, errors before/after, bottlenecks, histograms."""
    out: Dict[str, Any] = {"lambda": qgt.config.lam, "targets": len(qgt.targets)}
    start, end = getattr(qgt, "_start_errors", {}), getattr(qgt, "_end_errors", {})
    rows = []
    for t in qgt.targets:
        init, trained = qgt._initial[t.name], getattr(qgt, "_trained", {}).get(t.name)
        rows.append({"param": t.name, "lambda": t.lam, "bits": t.quantizer.bits,
                     "rel_error_start": start.get(t.name), "rel_error_end": end.get(t.name),
                     "grid_distance_start": _grid(t.quantizer, init),
                     "grid_distance_end": _grid(t.quantizer, trained)})
    out["weights"] = rows
    if qgt.config.sensitivity_images > 0 and ctx.test_loader is not None:
        table = bottleneck_table(ctx.model, ctx.test_loader, qgt.config.sensitivity_images, ctx.device)
        out["bottleneck"] = table["layers"]
        out["bottleneck_summary"] = summary_line(table)
        out["float_top1_subset"], out["quant_top1_subset"] = table["float_top1"], table["quant_top1"]
    if ctx.out_dir is not None and getattr(qgt, "_trained", None):
        image = save_weight_histograms(qgt, ctx.out_dir / "qgt_histograms.png")
        if image:
            out["images"] = {"histograms": image.name}
    return out


def _grid(quantizer, w: Optional[torch.Tensor]) -> Optional[float]:
    if w is None:
        return None
    w = w.to(next(iter(quantizer.buffers()), torch.zeros(())).device)
    quantizer.init_from_tensor(w)
    return grid_distance(w, quantizer)


def pick_layers(names: List[str], count: int) -> List[str]:
    """``count`` names spread evenly from first to last (always including the last)."""
    if count >= len(names):
        return list(names)
    idx = sorted({round(i * (len(names) - 1) / max(count - 1, 1)) for i in range(count)})
    return [names[i] for i in idx]


def _grid_units(quantizer, w: torch.Tensor) -> torch.Tensor:
    quantizer.init_from_tensor(w)
    qp = quantizer.qparams(w)
    g = quantizer.granularity
    wv = g.view(w)
    return (wv / g.expand(qp.scale, wv) + g.expand(qp.zero_point, wv)).reshape(-1)


def save_weight_histograms(qgt, path: Path) -> Optional[Path]:
    """Float vs QGT-trained weight histograms of a few layers, x axis in grid steps."""
    plt = pyplot()
    if plt is None:
        return None
    names = pick_layers([t.name for t in qgt.targets], qgt.config.histogram_layers)
    by_name = {t.name: t for t in qgt.targets}
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        q = by_name[name].quantizer
        device = next(iter(q.buffers()), torch.zeros(())).device
        before = _grid_units(q, qgt._initial[name].to(device)).cpu()
        after = _grid_units(q, qgt._trained[name].to(device)).cpu()
        lo, hi = float(min(before.min(), after.min())), float(max(before.max(), after.max()))
        bins = torch.linspace(lo - 0.5, hi + 0.5, max(int((hi - lo + 1) * 12), 24)).numpy()
        ax.hist(before.numpy(), bins=bins, color="#9ecae1", alpha=0.8, label="float baseline")
        ax.hist(after.numpy(), bins=bins, color="#fa8072", alpha=0.7, label="QGT-trained")
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("weight / step + zero point (grid points at integers)", fontsize=7)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)
