"""benchmarks/pareto.py: a recorded point is reused only for the same recipe and --set list,
and a newly finished run is recorded (so the ResNet-20 front can span sessions)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def pareto(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("pareto_bench", REPO / "benchmarks" / "pareto.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    calls = []

    def fake_train(recipe, run, extra):  # what run_recipes.train does, without training
        calls.append((recipe, extra))
        run.mkdir(parents=True, exist_ok=True)
        (run / "metrics.json").write_text(json.dumps({"top1": 50.0 + len(calls)}))
        return 0

    monkeypatch.setattr(mod, "train", fake_train)
    monkeypatch.setattr(mod, "REPO", tmp_path)
    mod.calls = calls
    return mod


def test_finished_run_is_recorded_and_reused(pareto, tmp_path):
    record = tmp_path / "records" / "uniform-W2A2.json"
    run = tmp_path / "runs" / "W2A2"
    first = pareto.lowbit_train("r", run, ["a=1"], record)
    assert json.loads(record.read_text())["metrics"] == first == {"top1": 51.0}
    for f in (tmp_path / "runs").glob("W2A2-*/metrics.json"):
        f.unlink()  # a fresh checkout: the run folder is gone, the record is not
    assert pareto.lowbit_train("r", run, ["a=1"], record) == first
    assert len(pareto.calls) == 1


def test_record_of_other_settings_is_not_reused(pareto, tmp_path):
    record = tmp_path / "records" / "p.json"
    pareto.lowbit_train("r", tmp_path / "runs" / "a", ["a=1"], record)
    second = pareto.lowbit_train("r", tmp_path / "runs" / "b", ["a=2"], record)
    assert second == {"top1": 52.0} and len(pareto.calls) == 2
    assert json.loads(record.read_text())["sets"] == ["a=2"]


def test_resnet20_points_alternate_smallest_first(pareto):
    cfg = pareto.SCALES["resnet20"]
    names = [pareto.label(p).replace(" ", "") for p, _ in pareto.uniform_points(cfg)]
    assert names == ["W2A2", "W3A3", "W4A4", "W8A8"]
    sets = pareto.uniform_points(cfg)[0][1]
    assert sets == ["quant.weight.bits=2", "quant.act.bits=2"]


def test_changed_settings_train_in_a_new_folder(pareto, tmp_path):
    record = tmp_path / "records" / "p.json"
    pareto.lowbit_train("r", tmp_path / "runs" / "a", ["a=1"], record)
    pareto.lowbit_train("r", tmp_path / "runs" / "a", ["a=2"], record)
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(folders) == 2 and all(f.startswith("a-") for f in folders)
