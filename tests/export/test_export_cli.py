"""`lowbit export RUN --format packed|onnx|qonnx` and `lowbit eval FILE` on a tiny trained run."""

from __future__ import annotations

import pytest

from lowbit.cli import main

RECIPE = """
name: tiny-mlp-w4a4
seed: 0
model: {name: mlp, kwargs: {hidden: 16}}
data: {dataset: mnist, batch_size: 64, train_limit: 256, test_limit: 128, calib_batches: 1}
quant:
  weight: {kind: lsq, bits: 4, granularity: channel}
  act: {kind: lsq, bits: 4}
optim: {name: sgd, lr: 0.05}
phases:
  - {name: w4a4, epochs: 1}
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from lowbit.data.locate import resolve_data_dir
    from lowbit.errors import DataError

    try:
        resolve_data_dir()
    except DataError as exc:
        pytest.skip(f"datasets not available: {exc}")
    root = tmp_path_factory.mktemp("cli")
    (root / "tiny.yaml").write_text(RECIPE)
    assert main(["train", str(root / "tiny.yaml"), "--out", str(root / "run"), "--quiet",
                 "--device", "cpu"]) == 0
    return root / "run"


def test_export_and_eval_every_format(run_dir, tmp_path, capsys):
    packed, onnx_file, qonnx_file = tmp_path / "m.lowbit", tmp_path / "m.onnx", tmp_path / "m.qonnx"
    assert main(["export", str(run_dir), "--out", str(packed)]) == 0
    assert main(["export", str(packed), "--format", "onnx", "--out", str(onnx_file)]) == 0
    assert main(["export", str(run_dir), "--format", "qonnx", "--out", str(qonnx_file)]) == 0
    out = capsys.readouterr().out
    assert out.count("wrote") == 3 and packed.stat().st_size < 16 * 1024

    assert main(["eval", str(packed), "--executor", "both", "--limit", "200"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "[integer]: top-1" in lines[0] and "on 200 mnist test images" in lines[0]
    assert "agreement with integer 100.00%" in lines[1]
    top1 = lines[0].split("top-1 ")[1].split("%")[0]
    assert main(["eval", str(onnx_file), "--limit", "200"]) == 0
    assert f"[onnxruntime]: top-1 {top1}%" in capsys.readouterr().out
    assert main(["eval", str(qonnx_file), "--limit", "5"]) == 0
    assert "[qonnx]" in capsys.readouterr().out


def test_bad_files_are_one_line_errors(run_dir, tmp_path, capsys):
    bad = tmp_path / "bad.lowbit"
    main(["export", str(run_dir), "--out", str(bad)])
    bad.write_bytes(bad.read_bytes()[:-10])
    capsys.readouterr()
    assert main(["eval", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lowbit eval: error:") and len(err.strip().splitlines()) == 1
    assert main(["export", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
