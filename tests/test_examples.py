"""The README's Python example runs and prints the accuracies it documents (PTQ of the shipped
MNIST baseline: 8 bits keeps float accuracy, 2 bits drops)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_ptq_example_runs_and_8_bits_keeps_accuracy():
    if not (REPO.parent / "shared" / "data" / "mnist").is_dir():
        pytest.skip("MNIST not available")
    out = subprocess.run([sys.executable, "examples/ptq_mnist.py"], cwd=REPO, capture_output=True,
                         text=True, timeout=600, check=True).stdout
    acc = {m[0]: float(m[1]) for m in re.findall(r"^(float|W\dA\d): ([\d.]+)%", out, re.M)}
    assert set(acc) == {"float", "W8A8", "W4A4", "W2A2"}, out
    assert acc["float"] > 98.0
    assert abs(acc["W8A8"] - acc["float"]) < 0.5
    assert acc["W2A2"] < acc["W8A8"] - 5
