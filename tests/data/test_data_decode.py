"""Parallel decoding equals serial decoding; progress goes to stderr."""

import io

import numpy as np
from PIL import Image

from lowbit.data import decode
from lowbit.data.jpeg import JpegSource


def _tree(root, n):
    rng = np.random.default_rng(0)
    (root / "train" / "c").mkdir(parents=True)
    for i in range(n):
        arr = rng.integers(0, 256, (12, 9, 3), dtype=np.uint8)
        Image.fromarray(arr).save(root / "train" / "c" / f"{i:03d}.png")
    return JpegSource("dir", root), [f"train/c/{i:03d}.png" for i in range(n)]


def test_pool_matches_serial(tmp_path, monkeypatch, capsys):
    source, members = _tree(tmp_path, 40)
    monkeypatch.setattr(decode, "MIN_PARALLEL", 1)
    monkeypatch.setattr(decode, "CHUNK", 7)
    serial = decode.decode_parallel(source, members, 8, "demo", workers=1)
    pooled = decode.decode_parallel(source, members, 8, "demo", workers=2)
    assert serial.shape == (40, 8, 8, 3) and np.array_equal(serial, pooled)
    err = capsys.readouterr().err
    assert "demo: 40/40 (100%)" in err and "done in" in err


def test_progress_non_tty_prints_at_most_a_line_per_decile():
    stream = io.StringIO()
    progress = decode.Progress("x", 1000, stream)
    for _ in range(100):
        progress.update(10)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) <= 12 and lines[-2] == "x: 1000/1000 (100%)"


def test_workers_env(monkeypatch):
    monkeypatch.setenv("LOWBIT_DECODE_WORKERS", "3")
    assert decode.default_workers() == 3
    monkeypatch.setenv("LOWBIT_DECODE_WORKERS", "zero")
    assert 1 <= decode.default_workers() <= 2
