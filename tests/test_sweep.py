"""Sweeps: parameter parsing, the Pareto front, and a real resumable grid sweep on MNIST."""

import json

import pytest
from hypothesis import given, strategies as st

from lowbit.errors import ConfigError
from lowbit.report.pareto import pareto_front
from lowbit.sweep import Sweep, parse_objective, parse_param, parse_seeds


def test_parse_params():
    assert parse_param("quant.weight.bits=2,4,8").values == [2, 4, 8]
    p = parse_param("optim.lr=log:1e-3:1e-1")
    assert p.log and p.low == 1e-3 and p.high == 0.1
    assert parse_param("quant.weight.bits=int:2:8").kind == "int"
    for bad in ["optim.lr", "optim.lr=log:0:1", "optim.lr=float:2:1", "x=log:a:b", "x=log:1"]:
        with pytest.raises(ConfigError):
            parse_param(bad)
    assert parse_objective("size") == ("size", "minimize")
    with pytest.raises(ConfigError, match="objective must be"):
        parse_objective("top5:up")


points = st.lists(st.fixed_dictionaries({"size": st.integers(1, 50), "top1": st.integers(0, 100)}),
                  min_size=1, max_size=30)


@given(points)
def test_pareto_front_is_exactly_the_non_dominated_points(pts):
    front = pareto_front(pts)
    dominated = lambda p: any((q["size"] <= p["size"] and q["top1"] > p["top1"]) or  # noqa: E731
                              (q["size"] < p["size"] and q["top1"] >= p["top1"]) for q in pts)
    assert all(not dominated(p) for p in front)
    assert {(p["size"], p["top1"]) for p in pts if not dominated(p)} == {(p["size"], p["top1"]) for p in front}


def _recipe(tmp_path):
    recipe = {"name": "sw", "model": {"name": "mlp", "kwargs": {"hidden": 32}},
              "data": {"dataset": "mnist", "batch_size": 100, "train_limit": 1000, "test_limit": 500,
                       "calib_batches": 1},
              "quant": {"weight": {"kind": "lsq", "bits": 4, "granularity": "channel"},
                        "act": {"kind": "lsq", "bits": 8}},
              "phases": [{"epochs": 1}], "log_every": 1000}
    import yaml

    path = tmp_path / "sw.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_grid_sweep_runs_every_point_once_and_resumes(tmp_path):
    path = _recipe(tmp_path)
    sweep = Sweep(str(path), [parse_param("quant.weight.bits=2,8")], tmp_path / "out", verbose=False)
    summary = sweep.run()
    assert sorted(t["params"]["quant.weight.bits"] for t in summary["trials"]) == [2, 8]
    sizes = {t["params"]["quant.weight.bits"]: t["size"] for t in summary["trials"]}
    assert sizes[2] < sizes[8]
    assert json.loads((tmp_path / "out" / "sweep.json").read_text())["pareto"]
    again = Sweep(str(path), [parse_param("quant.weight.bits=2,8")], tmp_path / "out", verbose=False).run()
    assert len(again["trials"]) == 2, "a finished sweep runs nothing more"


def test_bad_sweep_field_is_reported_before_training(tmp_path):
    with pytest.raises(ConfigError, match="quant.weight.bitz"):
        Sweep(str(_recipe(tmp_path)), [parse_param("quant.weight.bitz=2,4")], tmp_path / "o")


def test_tied_fields_sweep_a_diagonal_not_a_grid(tmp_path):
    """``a+b=2,8`` trains W2A2 and W8A8 only (2 trials, not the 4 of a grid)."""
    import yaml

    tied = parse_param("quant.weight.bits+quant.act.bits=2,8")
    assert tied.keys == ["quant.weight.bits", "quant.act.bits"]
    summary = Sweep(str(_recipe(tmp_path)), [tied], tmp_path / "out", verbose=False).run()
    assert len(summary["trials"]) == 2
    for t in summary["trials"]:
        quant = yaml.safe_load((tmp_path / "out" / t["run"].split("/")[-1] / "recipe.yaml").read_text())["quant"]
        assert quant["weight"]["bits"] == quant["act"]["bits"] == t["params"][tied.key]
    with pytest.raises(ConfigError, match="quant.act.bitz"):
        Sweep(str(_recipe(tmp_path)), [parse_param("quant.weight.bits+quant.act.bitz=2")], tmp_path / "o")
    with pytest.raises(ConfigError, match="empty field"):
        parse_param("quant.weight.bits+=2")


def test_sweep_over_recipes_and_seeds_gives_mean_and_standard_error(tmp_path):
    """Two recipes x two seeds: four runs named recipe+seed, points with the mean and standard
    error of each metric over the seeds; a second sweep with one more seed reuses the finished
    runs and trains only the new ones."""
    import yaml

    a = _recipe(tmp_path)
    spec = yaml.safe_load(a.read_text())
    spec["quant"]["weight"]["bits"] = 2
    b = tmp_path / "sw2.yaml"
    b.write_text(yaml.safe_dump(spec))
    summary = Sweep([str(a), str(b)], [], tmp_path / "out", verbose=False, seeds=[0, 1]).run()
    names = [t["run"].split("/")[-1] for t in summary["trials"]]
    assert names == ["sw+seed=0", "sw2+seed=0", "sw+seed=1", "sw2+seed=1"]  # seed-major order
    assert [(p["recipe"], p["n"], p["seeds"]) for p in summary["points"]] == [("sw", 2, [0, 1]), ("sw2", 2, [0, 1])]
    for p in summary["points"]:
        tops = [t["top1"] for t in summary["trials"] if t["recipe"] == p["recipe"]]
        mean = sum(tops) / 2
        assert p["mean"]["top1"] == pytest.approx(mean)
        assert p["se"]["top1"] == pytest.approx(abs(tops[0] - tops[1]) / 2)
        assert len(p["curves"]["top1"]) == 1
    assert (tmp_path / "out" / "curves.png").is_file()
    mtime = (tmp_path / "out" / "sw+seed=0" / "metrics.json").stat().st_mtime
    more = Sweep([str(a)], [], tmp_path / "out", verbose=False, seeds=[0, 1, 2]).run()
    assert [p["n"] for p in more["points"]] == [3]
    assert (tmp_path / "out" / "sw+seed=0" / "metrics.json").stat().st_mtime == mtime, "reused"
    # a partial table while a sweep still runs: finished runs only, nothing trained or written
    before = sorted(p.name for p in (tmp_path / "out").iterdir())
    rows, missing = Sweep([str(a)], [], tmp_path / "out", verbose=False, seeds=[0, 1, 2, 3]).finished()
    assert [r["seed"] for r in rows] == [0, 1, 2] and missing == ["sw+seed=3"]
    assert [r["top1"] for r in rows] == [t["top1"] for t in more["trials"]]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before
    # --compare: every point of another sweep (here the same runs) against the best point no
    # larger; reuses the finished runs, writes comparison.json
    from lowbit.cli import main

    assert main(["sweep", str(a), str(b), "--seeds", "0,1", "--out", str(tmp_path / "out"), "--quiet",
                 "--compare", str(tmp_path / "out" / "sweep.json")]) == 0
    comparison = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert [sorted(c["reference"]["by_seed"]) for c in comparison] == [["0", "1", "2"]]
    for c in comparison:  # the best point is no larger at any seed; the gap is of the means
        assert c["best"]["size"] <= c["reference"]["size"]
        assert c["gap"] == pytest.approx(c["best"]["top1"] - c["reference"]["top1"])
        assert set(c["paired"]) == {"0", "1"} and c["se"] is not None
    assert main(["sweep", str(a), "--seeds", "0", "--out", str(tmp_path / "new"), "--compare",
                 str(tmp_path / "missing.json")]) == 2 and not (tmp_path / "new").exists()


def test_sweep_refuses_a_finished_run_of_another_recipe(tmp_path):
    path = _recipe(tmp_path)
    Sweep(str(path), [], tmp_path / "out", verbose=False, seeds=[0]).run()
    with pytest.raises(ConfigError, match="different recipe"):
        Sweep(str(path), [], tmp_path / "out", verbose=False, seeds=[0],
              overrides=["optim.lr=0.5"]).run()


def test_sweep_argument_errors(tmp_path):
    path = str(_recipe(tmp_path))
    with pytest.raises(ConfigError, match="at least one --param"):
        Sweep(path, [], tmp_path / "o")
    with pytest.raises(ConfigError, match="needs --trials"):
        Sweep(path, [parse_param("optim.lr=log:1e-3:1e-1")], tmp_path / "o")
    with pytest.raises(ConfigError, match="distinct names"):
        Sweep([path, path], [], tmp_path / "o")
    with pytest.raises(ConfigError, match="--seeds"):
        parse_seeds("0,a")
    with pytest.raises(ConfigError, match="distinct"):
        parse_seeds("1,1")


@pytest.mark.parametrize("content", [b"\xff\xfe", b"[1]", b"{}", b"{not json"])
def test_a_damaged_trial_metrics_file_is_one_line(tmp_path, content):
    from lowbit.sweep import _read_metrics

    (tmp_path / "metrics.json").write_bytes(content)
    with pytest.raises(ConfigError, match="metrics.json"):
        _read_metrics(tmp_path / "metrics.json")
