"""A dependency-free progress line for long work: loss, accuracy, images/s, ETA.

On a terminal the line is redrawn in place; otherwise (logs, CI) a line is printed every
``every`` updates and at the end.
"""

from __future__ import annotations

import sys
import time
from typing import Dict, Optional, TextIO


def _fmt_time(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """``Progress(total, desc)``; ``update(n_images, **scalars)``; ``close()``."""

    def __init__(self, total: int, desc: str = "", stream: Optional[TextIO] = None,
                 every: int = 20, enabled: bool = True):
        self.total, self.desc, self.every, self.enabled = total, desc, max(every, 1), enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.count, self.images, self.start = 0, 0, time.time()
        self.scalars: Dict[str, float] = {}

    def update(self, images: int = 0, **scalars: float) -> None:
        self.count += 1
        self.images += images
        self.scalars.update(scalars)
        if self.enabled and (self.tty or self.count % self.every == 0 or self.count == self.total):
            self._draw()

    def line(self) -> str:
        elapsed = time.time() - self.start
        rate = self.images / elapsed if elapsed > 0 else 0.0
        eta = elapsed / self.count * (self.total - self.count) if self.count else 0.0
        parts = [f"{k} {v:.4g}" for k, v in self.scalars.items()]
        return (f"{self.desc} {self.count}/{self.total} " + " ".join(parts)
                + f" {rate:.0f} img/s {_fmt_time(elapsed)}<{_fmt_time(eta)}")

    def _draw(self) -> None:
        end = "" if self.tty and self.count < self.total else "\n"
        prefix = "\r\033[K" if self.tty else ""
        print(prefix + self.line(), end=end, file=self.stream, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty and self.count < self.total:
            print(file=self.stream, flush=True)
