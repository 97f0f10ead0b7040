"""benchmarks/pareto.py: the recorded fronts re-render to the numbers in results.md, every
scale's --set lists parse into the recipes, and the driver runs and records real sweeps."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest
import yaml

from benchmarks import pareto
from benchmarks.results_md import update_section
from lowbit.train.recipe import load_recipe

REPO = Path(__file__).resolve().parents[2]


def test_recorded_fronts_rerender_to_the_table_rows_of_results_md(results_copy):
    results = REPO / "benchmarks" / "results.md"
    copy = results_copy(pareto)
    pareto.render(["mlp", *pareto.SCALES])
    sections = lambda text: re.findall(r"<!-- BEGIN (pareto-[^ ]*) -->(.*?)<!-- END", text, re.S)  # noqa: E731
    rows = lambda body: [line for line in body.splitlines() if line.startswith("|")]  # noqa: E731
    old, new = sections(results.read_text()), sections(copy.read_text())
    assert len(old) == 7 and [n for n, _ in old] == [n for n, _ in new]
    assert all(rows(a) == rows(b) and rows(a) for (_, a), (_, b) in zip(old, new))


@pytest.mark.parametrize("scale", sorted(pareto.SCALES))
def test_every_scale_parses_and_both_sides_start_from_the_pinned_baseline(scale):
    """The --set lists are valid for their recipes (a typo would only show hours into a run),
    and every recorded run measured the pinned baseline's own top-1 as its float model."""
    s = pareto.SCALES[scale]
    for recipe, sets in (("resnet20-cifar10-w4a4", s.uniform + s.quant),
                         ("resnet20-cifar10-mp", s.mixed + s.quant + pareto.budget(scale, 4))):
        cfg = load_recipe(recipe, sets)
        assert cfg.model.init == pareto.INIT.split("=")[1]
        assert cfg.quant.residual is (scale != "resnet20")
    init = REPO / pareto.INIT.split("=")[1]
    top1 = json.loads(init.with_suffix(".json").read_text())["top1"]
    rec = pareto.load(scale)
    assert rec["mixed"] and all(r["metrics"]["top1_fp32"] == top1 for side in ("uniform", "sizes", "mixed")
                                for r in rec.get(side, []))


def test_mixed_run_budget_is_the_recorded_size_of_its_uniform_point():
    sizes = {r["label"]: r["metrics"] for r in pareto.load("resnet20-res8-mse")["sizes"]}
    kb = lambda m: (m["weight_bits_total"] / 8192, m["act_bits_total"] / 8192)  # noqa: E731
    w, a = kb(sizes["W4 A4"])
    assert pareto.budget("resnet20-res8-mse", 4)[2:] == [f"methods.0.args.weight_kb={w!r}", f"methods.0.args.act_kb={a!r}"]
    assert pareto.budget("resnet20-res8-mse-total", 4)[2:] == [f"methods.0.args.total_kb={w + a!r}"]
    argv = pareto.commands("resnet20-res8-mse-total", [0, 1], [4])[0][2]  # its uniform side is res8-mse's
    assert argv[argv.index("--seeds") + 1] == "0,1" and argv[-1] == "runs/pareto-resnet20-res8-mse-total/mixed-W4A4"


def test_run_records_real_sweeps_and_renders_their_comparison(tmp_path, monkeypatch):
    """The MLP scale end to end on two tiny grids: `lowbit sweep` runs, its rows recorded."""
    recipe = {"name": "tiny", "model": {"name": "mlp", "kwargs": {"hidden": 16}},
              "data": {"dataset": "mnist", "batch_size": 100, "train_limit": 300, "test_limit": 200,
                       "calib_batches": 1},
              "quant": {"weight": {"kind": "lsq", "bits": 4}, "act": {"kind": "lsq", "bits": 8}},
              "phases": [{"epochs": 1}], "log_every": 1000}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(recipe))
    monkeypatch.setattr(pareto, "MLP", {"uniform": [str(tmp_path / "tiny.yaml"), "--param", "quant.weight.bits=2,8"],
                                        "mixed": [str(tmp_path / "tiny.yaml"), "--param", "quant.weight.bits=4"]})
    monkeypatch.setattr(pareto, "RECORDS", tmp_path)
    monkeypatch.setattr(pareto, "REPO", tmp_path)
    monkeypatch.setattr(pareto, "update_section", functools.partial(update_section, path=tmp_path / "r.md"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOWBIT_DATA", str(REPO.parent / "shared" / "data"))
    pareto.run("mlp", [0], pareto.BITS)
    rec = json.loads((tmp_path / "pareto-mlp.json").read_text())
    assert [r["label"] for r in rec["uniform"]] == ["W2", "W8"] and [r["label"] for r in rec["mixed"]] == ["W4"]
    assert (tmp_path / "runs/pareto-mlp/mixed/comparison.json").is_file()
    pareto.render(["mlp"])
    table = [line for line in (tmp_path / "r.md").read_text().splitlines() if line.startswith("| W")]
    assert table[0].startswith("| W2 ") and "(none this small)" in table[0] and "| W4 |" in table[1]
