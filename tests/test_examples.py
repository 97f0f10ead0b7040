"""The README's Python examples run and print what they document: the quickstart quantizes,
trains and exports a model of the user's own; PTQ of the shipped MNIST baseline keeps float
accuracy at 8 bits and drops at 2; the transformers walkthrough goes from PTQ to QAT to export
on a tiny configuration."""

import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_quickstart_quantizes_trains_and_exports_your_own_model(tmp_path, monkeypatch, capsys):
    pytest.importorskip("onnx")
    monkeypatch.chdir(tmp_path)  # it writes net.lowbit and net.onnx where it runs
    runpy.run_path(str(REPO / "examples" / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert (tmp_path / "net.lowbit").is_file() and (tmp_path / "net.onnx").is_file()
    packed = int(re.search(r"^(\d+) bytes packed$", out, re.M).group(1))
    assert packed > 0
    diff = float(re.search(r"max \|diff\| ([\d.e+-]+)", out).group(1))
    assert diff < 1e-4, out  # the integer executor computes what the fake-quant model computes


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


def test_pretrained_model_walkthrough_from_ptq_to_qat_to_export(tmp_path):
    pytest.importorskip("transformers")
    data = REPO.parent / "shared" / "data"
    if not ((data / "cifar10-jpeg").is_dir() or (data / "cifar10-official-partial").is_dir()):
        pytest.skip("CIFAR-10 not available")
    out = subprocess.run([sys.executable, "examples/pretrained_mobilenet.py", "--tiny", "--out",
                          str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "LOWBIT_COMPILE": "0", "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    for line in ("float: top-1", "PTQ W8A8: top-1", "PTQ W4A4: top-1", "QAT W4A4: top-1",
                 "--allow-import", "agreement with the fake-quant model"):
        assert line in out.stdout, out.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["integer_agreement"] >= 99.0 and summary["onnx_agreement"] >= 99.0
    assert (tmp_path / "model.packed").is_file() and (tmp_path / "qat" / "metrics.json").is_file()
