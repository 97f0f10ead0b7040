"""matplotlib for the PNG plots of reports; it is optional: without it, no plots.

Learning curves (test top-1 per epoch of several runs or sweep points) are drawn here too.

>>> plt = pyplot()   # None when matplotlib is not installed: callers then skip their plot
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

from .files import atomic_path


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed), or None without matplotlib."""
    try:
        import matplotlib  # optional (the plot extra)

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        return plt
    except ImportError:
        return None


def save_figure(fig, path, ax=None, legend_size: int = 8) -> Path:
    """Save a matplotlib figure atomically (the format from the file's suffix) and close it; with
    ``ax``, first give it a light grid and a legend and tighten the layout."""
    import matplotlib.pyplot as plt  # optional (the plot extra), present since fig exists

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


def save_curves_plot(curves: Dict[str, List[float]], path: Path, ylabel: str = "test top-1 (%)",
                     title: str = "") -> Optional[Path]:
    """One line per named curve (a value per epoch, epochs from 1) in one PNG."""
    plt = pyplot()
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
