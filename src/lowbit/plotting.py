"""matplotlib for the PNG plots of reports; it is optional: without it, no plots.

>>> plt = pyplot()   # None when matplotlib is not installed: callers then skip their plot
"""

from __future__ import annotations

from pathlib import Path

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


def save_figure(fig, path) -> Path:
    """Save a matplotlib figure atomically (the format from the file's suffix) and close it."""
    import matplotlib.pyplot as plt  # optional (the plot extra), present since fig exists

    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".") or "png")
    finally:
        plt.close(fig)
    return path
