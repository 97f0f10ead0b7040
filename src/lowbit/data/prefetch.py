"""Run an iterator in a background thread with a bounded queue.

Items come out in the producer's order, so prefetching never changes what is produced; an
exception raised by the producer is re-raised in the consumer at the same position.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Iterable, Iterator, Tuple

_ITEM, _END, _ERROR = 0, 1, 2


class Prefetcher:
    """Iterate ``source`` in a daemon thread, at most ``depth`` items ahead.

    Use as an iterator; call :meth:`close` (or exhaust it) to stop the thread early.

    >>> list(Prefetcher(iter(range(5)), depth=2))
    [0, 1, 2, 3, 4]
    """

    def __init__(self, source: Iterable[Any], depth: int = 2):
        if depth < 1:
            raise ValueError(f"prefetch depth must be >= 1, got {depth}")
        self._source = iter(source)
        self._queue: "queue.Queue[Tuple[int, Any]]" = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name="lowbit-prefetch", daemon=True)
        self._thread.start()

    def _put(self, message: Tuple[int, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._source:
                if not self._put((_ITEM, item)):
                    return
            self._put((_END, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put((_ERROR, exc))

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        kind, payload = self._queue.get()
        if kind == _ITEM:
            return payload
        self._done = True
        self._thread.join()
        if kind == _ERROR:
            raise payload
        raise StopIteration

    def close(self) -> None:
        """Stop the producer thread and drop what it had queued."""
        self._done = True
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()
