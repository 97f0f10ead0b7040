"""Parallel decoding of many images with a progress line on stderr."""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from typing import List, Optional, Tuple

import numpy as np

from .jpeg import JpegSource, close_archives, decode_members

CHUNK = 256  # images per pool task
MIN_PARALLEL = 2048  # below this a pool costs more than it saves


class Progress:
    """``desc: done/total (pct%)`` on stderr; in-place on a terminal, ~10 lines otherwise.

    >>> p = Progress("demo", 0); p.update(0); p.close()  # doctest: +SKIP
    """

    def __init__(self, desc: str, total: int, stream=None):
        self.desc, self.total, self.done = desc, total, 0
        self.stream = stream if stream is not None else sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.last_decile, self.start = -1, time.perf_counter()

    def update(self, count: int) -> None:
        """Record ``count`` more finished items and refresh the line."""
        self.done += count
        pct = 100 * self.done // max(self.total, 1)
        line = f"{self.desc}: {self.done}/{self.total} ({pct}%)"
        if self.tty:
            self.stream.write("\r" + line)
        elif pct // 10 != self.last_decile:
            self.last_decile = pct // 10
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Finish the line with the elapsed time."""
        secs = time.perf_counter() - self.start
        end = f" done in {secs:.1f} s\n"
        self.stream.write(("\r" + f"{self.desc}: {self.done}/{self.total} (100%)" if self.tty
                           else f"{self.desc}:") + end)
        self.stream.flush()


def _decode_task(args: Tuple[JpegSource, List[str], int]) -> np.ndarray:
    source, members, size = args
    return decode_members(source, members, size)


WORKERS_ENV = "LOWBIT_DECODE_WORKERS"


def default_workers() -> int:
    """``$LOWBIT_DECODE_WORKERS`` if set, else min(2, CPU count) pool workers.

    >>> default_workers() >= 1
    True
    """
    env = os.environ.get(WORKERS_ENV, "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(2, os.cpu_count() or 1))


def decode_parallel(source: JpegSource, members: List[str], size: int, desc: str,
                    workers: Optional[int] = None) -> np.ndarray:
    """Decode ``members`` to (N, size, size, 3) uint8 in order, using a process pool if large.

    >>> decode_parallel(src, ["train/cat/0000.jpg"], 32, "cifar10/train").shape  # doctest: +SKIP
    (1, 32, 32, 3)
    """
    workers = default_workers() if workers is None else workers
    out = np.empty((len(members), size, size, 3), dtype=np.uint8)  # (N, S, S, 3)
    tasks = [(source, members[i:i + CHUNK], size) for i in range(0, len(members), CHUNK)]
    progress = Progress(desc, len(members))
    try:
        if workers <= 1 or len(members) < MIN_PARALLEL:
            _collect(map(_decode_task, tasks), out, progress)
        else:
            with multiprocessing.get_context().Pool(workers) as pool:
                _collect(pool.imap(_decode_task, tasks), out, progress)
    finally:
        close_archives()
    progress.close()
    return out


def _collect(results, out: np.ndarray, progress: Progress) -> None:
    start = 0
    for chunk in results:
        out[start:start + len(chunk)] = chunk
        start += len(chunk)
        progress.update(len(chunk))
