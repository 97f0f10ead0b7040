"""PNG plots rendered from run data (matplotlib is optional: without it, no plots).

* QGT weight histograms (the QGT paper, Figure 4): float baseline vs QGT-trained weights of selected
  layers, in units of the quantization step, where QGT's clustering on the grid is visible.
* Learning curves: test top-1 per epoch of several runs or sweep points in one plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import torch

from ..files import atomic_path


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        return plt
    except ImportError:
        return None


def save_figure(fig, path, ax=None, legend_size: int = 8) -> Path:
    """Save a matplotlib figure atomically (the format from the file's suffix) and close it; with
    ``ax``, first give it a light grid and a legend and tighten the layout."""
    import matplotlib.pyplot as plt

    path = Path(path)
    if ax is not None:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=legend_size)
        fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".") or "png")
    finally:
        plt.close(fig)
    return path


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
    plt = _pyplot()
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


def save_curves_plot(curves: Dict[str, List[float]], path: Path, ylabel: str = "test top-1 (%)",
                     title: str = "") -> Optional[Path]:
    """One line per named curve (a value per epoch, epochs from 1) in one PNG."""
    plt = _pyplot()
    if plt is None or not any(curves.values()):
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for name, values in curves.items():
        if values:
            ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path, ax=ax, legend_size=7)
