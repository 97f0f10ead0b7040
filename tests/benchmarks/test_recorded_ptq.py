"""The zero-epoch rows of the recipes table in benchmarks/results.md rerun to the recorded top-1.

A zero-epoch row (PTQ: calibrate and evaluate, no training) is deterministic and takes about a
minute, so rerunning it catches a silent change of the code, a recipe or a shipped baseline that
would otherwise only show when someone retrains. Slow: ``pytest -m slow tests/benchmarks``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results.md"


def zero_epoch_rows() -> list:
    """``(recipe, recorded top-1)`` of the rows of the ``recipes`` section with 0 epochs and no
    ``--set`` note (a bundled recipe run as it is)."""
    section = re.search(r"<!-- BEGIN recipes -->(.*?)<!-- END recipes -->", RESULTS.read_text(), re.S)
    rows = []
    for line in section.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 9 or not re.fullmatch(r"[\w.-]+", cells[0]):
            continue
        if cells[8] == "0":
            rows.append((cells[0], float(cells[1])))
    return rows


def test_the_table_has_zero_epoch_rows():
    names = [name for name, _ in zero_epoch_rows()]
    assert "resnet20-cifar10-ptq-w2" in names and "mobilenet_v2-cifar10-ptq-w4" in names


@pytest.mark.slow
@pytest.mark.parametrize("recipe,top1", zero_epoch_rows())
def test_zero_epoch_row_reproduces(recipe, top1, tmp_path):
    out = tmp_path / recipe
    subprocess.run([sys.executable, "-m", "lowbit", "train", recipe, "--out", str(out)],
                   cwd=REPO, check=True, capture_output=True, text=True)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["top1"] == pytest.approx(top1, abs=0.005), f"{recipe}: recorded {top1}, now {metrics['top1']}"
