"""Accuracy vs total size plots (Schaefer et al., Figure 1): one series per method, fronts joined."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..plotting import pyplot, save_figure

KB = 1024


def pareto_front(points: Sequence[Dict[str, Any]], x: str = "size", y: str = "top1") -> List[Dict[str, Any]]:
    """Points not dominated in (smaller ``x``, larger ``y``), sorted by ``x``.

    >>> pts = [{"size": 1, "top1": 80}, {"size": 2, "top1": 79}, {"size": 3, "top1": 90}]
    >>> [p["size"] for p in pareto_front(pts)]
    [1, 3]
    """
    front, best = [], -math.inf
    for p in sorted(points, key=lambda p: (p[x], -p[y])):
        if p[y] > best:
            front.append(p)
            best = p[y]
    return front


def save_pareto_plot(series: Dict[str, List[Dict[str, Any]]], path: Path,
                     title: str = "accuracy vs total memory (weights + activations)",
                     x: str = "size", xlabel: Optional[str] = None) -> Optional[Path]:
    """Scatter ``top1`` against ``x`` (bytes; default the total ``size``) for each named
    series, Pareto fronts as lines; a point's ``label`` is written next to it."""
    plt = pyplot()
    if plt is None or not any(series.values()):
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for (name, pts), marker in zip(series.items(), "osD^v<>"):
        if not pts:
            continue
        ax.scatter([p[x] / KB for p in pts], [p["top1"] for p in pts], marker=marker, label=name)
        front = pareto_front(pts, x=x)
        ax.plot([p[x] / KB for p in front], [p["top1"] for p in front], alpha=0.6)
        for p in pts:
            if p.get("label"):
                ax.annotate(p["label"], (p[x] / KB, p["top1"]), fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(xlabel or "total memory: packed weights + activation feature maps (KB)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path, ax=ax)
