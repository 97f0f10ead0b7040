"""The background prefetch thread: order, errors, early stop."""

import threading
import time

import pytest

from lowbit.data.prefetch import Prefetcher


def test_order_preserved():
    assert list(Prefetcher(iter(range(100)), depth=3)) == list(range(100))


def test_exception_reaches_consumer_at_its_position():
    def source():
        yield 1
        yield 2
        raise KeyError("boom")

    got = []
    with pytest.raises(KeyError, match="boom"):
        for item in Prefetcher(source()):
            got.append(item)
    assert got == [1, 2]


def test_queue_is_bounded():
    produced = []

    def source():
        for i in range(50):
            produced.append(i)
            yield i

    pf = Prefetcher(source(), depth=2)
    time.sleep(0.2)
    assert len(produced) <= 4  # depth items queued + one blocked in put (+ slack)
    pf.close()


def test_close_stops_thread():
    before = threading.active_count()
    pf = Prefetcher(iter(range(10**6)), depth=1)
    next(pf)
    pf.close()
    assert threading.active_count() == before
    with pytest.raises(StopIteration):
        next(pf)


def test_depth_must_be_positive():
    with pytest.raises(ValueError):
        Prefetcher(iter([]), depth=0)
