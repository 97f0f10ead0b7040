"""benchmarks/pareto.py: a recorded point is reused only for the same recipe and --set list,
and a newly finished run is recorded (so the ResNet-20 front can span sessions)."""

from __future__ import annotations

import importlib.util
import json
import math
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


def test_init_pins_the_baseline_and_is_part_of_the_record(pareto, tmp_path):
    """``init`` goes first on the command line (the recipe's own model.init is overridden) and
    into the record; a record of another init (or of none) is not reused."""
    record = tmp_path / "records" / "p.json"
    pareto.lowbit_train("r", tmp_path / "runs" / "a", ["a=1"], record, init="old.safetensors")
    assert pareto.calls[-1][1] == ["--quiet", "--set", "model.init=old.safetensors", "--set", "a=1"]
    assert json.loads(record.read_text())["init"] == "old.safetensors"
    pareto.lowbit_train("r", tmp_path / "runs" / "a", ["a=1"], record, init="old.safetensors")
    pareto.lowbit_train("r", tmp_path / "runs" / "a", ["a=1"], record, init="new.safetensors")
    pareto.lowbit_train("r", tmp_path / "runs" / "a", ["a=1"], record)
    assert len(pareto.calls) == 3 and "init" not in json.loads(record.read_text())


@pytest.mark.parametrize("scale", ["resnet20", "resnet20-res8", "resnet20-res8-mse", "resnet20-res8-mse-kd",
                                   "resnet20-res8-mse-total"])
def test_recorded_fronts_started_from_their_pinned_baseline(pareto, scale):
    """Every committed record of a ResNet-20 front names the scale's init and measured that
    baseline's own top-1 as its float model (so moving the recipes to a newer baseline cannot
    silently mix starting points within a front)."""
    init = pareto.SCALES[scale]["init"]
    top1 = json.loads((REPO / init).with_suffix(".json").read_text())["top1"]
    records = sorted((REPO / "benchmarks" / "results" / f"pareto-{scale}").glob("*.json"))
    assert records
    for f in records:
        rec = json.loads(f.read_text())
        assert rec["init"] == init and rec["metrics"]["top1_fp32"] == top1, f.name


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


def test_res8_front_quantizes_residual_adds_on_both_sides(pareto):
    """Like for like: uniform and mixed runs both quantize the residual adds from 8 bits, and
    the mixed run otherwise keeps the resnet20 front's settings (one override list, not two)."""
    base, res8 = pareto.SCALES["resnet20"], pareto.SCALES["resnet20-res8"]
    for sets in (res8["uniform_sets"] + res8["quant_sets"], res8["mp_sets"]):
        overrides = [s for s in sets if s.startswith("quant.overrides=")]
        assert "quant.residual=true" in sets and len(overrides) == 1
        assert '{pattern: "*.add", act: {bits: 8}}' in overrides[0]
        assert '"@first"' in overrides[0] and '"@last"' in overrides[0]
    kept = [s for s in base["mp_sets"] if not s.startswith("quant.overrides=")]
    assert res8["mp_sets"][:len(kept)] == kept
    assert pareto.uniform_points(res8) == pareto.uniform_points(base)


def test_res8_settings_parse_into_the_recipes(pareto):
    """The --set lists are valid for their recipes (a typo would only show hours into a run)."""
    from lowbit.train.recipe import load_recipe

    res8 = pareto.SCALES["resnet20-res8"]
    for recipe, sets in ((res8["uniform"], res8["uniform_sets"] + res8["quant_sets"]), (res8["mp"], res8["mp_sets"])):
        cfg = load_recipe(recipe, sets)
        assert cfg.quant.residual is True
        assert [o.pattern for o in cfg.quant.overrides] == ["@first", "@last", "*.add"]


@pytest.mark.parametrize("scale", ["resnet20", "resnet20-res8"])
def test_matched_budget_is_the_uniform_points_own_size(pareto, monkeypatch, scale):
    """The 0-epoch sizes run carries the uniform side's quantizer settings (residual adds
    included for res8), so the mixed run's budget is the size of the point it is compared with;
    for resnet20 its --set list is unchanged, so the recorded front stays valid."""
    calls = []

    def fake_train(recipe, run, extra):
        calls.append(extra[2::2])  # ["--quiet", "--set", v1, "--set", v2, ...] -> the values
        run.mkdir(parents=True, exist_ok=True)
        (run / "metrics.json").write_text(json.dumps(
            {"top1": 50.0, "weight_bits_total": 8192 * 3, "act_bits_total": 8192 * 5,
             "size_bytes_packed": 3100, "seconds": 1.0}))
        return 0

    monkeypatch.setattr(pareto, "train", fake_train)
    cfg = pareto.SCALES[scale]
    params, sets = pareto.uniform_points(cfg)[0]
    pareto.matched_run(cfg, params, sets, pareto.REPO / "runs")
    sizes, mixed = calls
    assert sizes[-1] == "phases.0.epochs=0" and "phases.0.epochs=5" not in sizes
    assert ("quant.residual=true" in sizes) == (scale == "resnet20-res8")
    if scale == "resnet20":
        assert sizes == ["model.init=baselines/resnet20-cifar10.safetensors",
                         "quant.weight.bits=2", "quant.act.bits=2", "phases.0.epochs=0"]
    assert "methods.0.args.weight_kb=3.0" in mixed and "methods.0.args.act_kb=5.0" in mixed


def _record_train_calls(pareto, monkeypatch) -> list:
    """Replace pareto's train with one that writes small metrics; returns the list each call's
    --set values are appended to."""
    calls = []

    def fake_train(recipe, run, extra):
        calls.append(extra[2::2])  # ["--quiet", "--set", v1, "--set", v2, ...] -> the values
        run.mkdir(parents=True, exist_ok=True)
        (run / "metrics.json").write_text(json.dumps(
            {"top1": 50.0, "weight_bits_total": 8192, "act_bits_total": 8192,
             "size_bytes_packed": 1024, "seconds": 1.0}))
        return 0

    monkeypatch.setattr(pareto, "train", fake_train)
    return calls


def test_ablation_is_recorded_apart_from_the_front(pareto, monkeypatch, tmp_path):
    """--ablation appends its settings to the mixed run and records it under its own name, so
    the front's matched-NAME.json is neither reused for it nor overwritten by it."""
    calls = _record_train_calls(pareto, monkeypatch)
    cfg, records = pareto.SCALES["resnet20-res8"], tmp_path / "records"
    params, sets = pareto.uniform_points(cfg)[2]
    pareto.matched_run(cfg, params, sets, tmp_path / "runs", records, ablation=("lr", ["phases.1.quant_lr=0.02"]))
    assert sorted(p.name for p in records.iterdir()) == ["ablation-matched-W4A4-lr.json", "sizes-W4A4.json"]
    assert calls[-1][-1] == "phases.1.quant_lr=0.02"
    rec = json.loads((records / "ablation-matched-W4A4-lr.json").read_text())
    assert ["model.init=" + rec["init"]] + rec["sets"] == calls[-1]


def test_mse_front_runs_are_the_res8_ablations_of_that_name(pareto, monkeypatch, tmp_path):
    """resnet20-res8-mse's mixed run has exactly the --set list of resnet20-res8's
    ``--ablation mse-quantlr002-001 SETS`` run, so that ablation's records are its front, and it
    shares the uniform side (the same uniform and sizes runs)."""
    calls = _record_train_calls(pareto, monkeypatch)
    res8, mse = pareto.SCALES["resnet20-res8"], pareto.SCALES["resnet20-res8-mse"]
    params, sets = pareto.uniform_points(res8)[2]
    pareto.matched_run(res8, params, sets, tmp_path / "a", ablation=("mse-quantlr002-001", mse["mp_after_sets"]))
    pareto.matched_run(mse, params, sets, tmp_path / "b")
    assert calls[0] == calls[2] and calls[1] == calls[3]
    assert calls[3][-4:] == mse["mp_after_sets"] and "quant.weight.observer=mse" in calls[3]
    for key in ("uniform", "uniform_sets", "quant_sets", "mp_sets"):
        assert mse[key] == res8[key]


def test_a_seed_adds_its_setting_last_and_its_own_records(pareto, monkeypatch, tmp_path):
    """Seed 0 is the single-seed front (same --set lists, same record names); seed s appends
    ``seed=s`` to both sides and records as NAME-seed{s}, while the sizes run is shared."""
    calls = _record_train_calls(pareto, monkeypatch)
    cfg, records = pareto.SCALES["resnet20-res8-mse"], tmp_path / "records"
    params, sets = pareto.uniform_points(cfg)[2]
    u0 = pareto.uniform_run(cfg, params, sets, tmp_path / "u", records)
    m0 = pareto.matched_run(cfg, params, sets, tmp_path / "m", records)
    u1 = pareto.uniform_run(cfg, params, sets, tmp_path / "u", records, seed=1)
    m1 = pareto.matched_run(cfg, params, sets, tmp_path / "m", records, seed=1)
    assert len(calls) == 5  # the second sizes run is the recorded first one
    assert calls[3] == calls[0] + ["seed=1"] and calls[4] == calls[2] + ["seed=1"]
    assert "seed=1" not in calls[1] and (u0["seed"], m0["seed"], u1["seed"], m1["seed"]) == (0, 0, 1, 1)
    assert sorted(p.name for p in records.iterdir()) == [
        "matched-W4A4-seed1.json", "matched-W4A4.json", "sizes-W4A4.json",
        "uniform-W4A4-seed1.json", "uniform-W4A4.json"]


def test_seeds_aggregate_to_means_largest_size_and_paired_deltas():
    import importlib.util

    spec = importlib.util.spec_from_file_location("pareto_seeds", REPO / "benchmarks" / "pareto_seeds.py")
    seeds = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seeds)
    pts = [{"label": "W4 A4", "params": {}, "seed": 0, "top1": 87.0, "size": 100},
           {"label": "W4 A4", "params": {}, "seed": 1, "top1": 86.0, "size": 100},
           {"label": "m", "params": {}, "seed": 0, "top1": 87.5, "size": 98},
           {"label": "m", "params": {}, "seed": 1, "top1": 86.1, "size": 99}]
    u, m = seeds.aggregate(pts[:2])[0], seeds.aggregate(pts[2:])[0]
    assert u["top1"] == pytest.approx(86.5) and u["spread"] == pytest.approx(1.0)
    assert m["size"] == 99 and m["top1_by_seed"] == {"0": 87.5, "1": 86.1}
    assert seeds.paired_deltas(m, u) == pytest.approx({"0": 0.5, "1": 0.1})
    # unpaired standard error of the difference (sample variances 0.98 and 0.5, two seeds each)
    assert seeds.delta_se(m, u) == pytest.approx(math.sqrt(0.98 / 2 + 0.5 / 2))
    assert seeds.delta_se(seeds.aggregate(pts[2:3])[0], u) is None, "one seed: no error bar"
    import doctest
    assert doctest.testmod(seeds).failed == 0
    with pytest.raises(ValueError, match="given twice"):
        seeds.parse_seeds("0,0")
    with pytest.raises(ValueError, match="non-negative integers"):
        seeds.parse_seeds("0,x")


def test_total_front_has_one_target_for_the_sum_and_shares_the_uniform_records(pareto, monkeypatch, tmp_path):
    """resnet20-res8-mse-total: the mixed run's budget is the uniform point's weights +
    activations as one total_kb (no weight_kb / act_kb), otherwise res8-mse's --set list; its
    uniform and sizes records are res8-mse's (the same runs), its mixed records its own."""
    calls = _record_train_calls(pareto, monkeypatch)
    mse, total = pareto.SCALES["resnet20-res8-mse"], pareto.SCALES["resnet20-res8-mse-total"]
    params, sets = pareto.uniform_points(total)[2]
    pareto.matched_run(mse, params, sets, tmp_path / "a")
    pareto.matched_run(total, params, sets, tmp_path / "b")
    assert "methods.0.args.total_kb=2.0" in calls[3]  # 1 KB of weights + 1 KB of activations
    assert not any("weight_kb" in s or "act_kb" in s for s in calls[3])
    assert [s for s in calls[1] if "_kb=" not in s] == [s for s in calls[3] if "_kb=" not in s]
    records = pareto.RECORDS / "pareto-resnet20-res8-mse-total"
    assert pareto.uniform_records(total, records) == pareto.RECORDS / "pareto-resnet20-res8-mse"
    assert pareto.uniform_records(mse, records) == records and pareto.uniform_records(total, None) is None


def test_kd_front_distills_on_both_sides(pareto):
    """resnet20-res8-mse-kd adds the same distill method to both sides (appended after the
    mixed recipe's budget), and its --set lists parse into the recipes."""
    from lowbit.train.recipe import load_recipe

    kd = pareto.SCALES["resnet20-res8-mse-kd"]
    u = load_recipe(kd["uniform"], kd["uniform_sets"] + kd["quant_sets"])
    m = load_recipe(kd["mp"], kd["mp_sets"] + kd["mp_after_sets"])
    assert [x.name for x in u.methods] == ["distill"] and [x.name for x in m.methods] == ["budget", "distill"]
    assert u.methods[0].args == m.methods[1].args
