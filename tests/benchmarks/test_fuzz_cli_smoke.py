"""benchmarks/fuzz_cli.py on a few cases: the grammar makes valid and invalid commands, and every
one exits 0 or 2 without a traceback, leaving earlier runs as they were (the 1,000-case run and
its numbers are in benchmarks/results.md)."""

from __future__ import annotations

from pathlib import Path

from benchmarks import fuzz_cli as fuzz

REPO = Path(__file__).resolve().parents[2]


def test_a_few_fuzzed_commands_exit_cleanly(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    fuzzer = fuzz.Fuzzer(tmp_path, seed=3)
    fuzzer.setup()
    result = fuzzer.run(16, progress=0)
    assert result["tracebacks"] == 0 and result["other_exit_codes"] == 0, result["failures"]
    assert result["changed_folders"] == 0, result["failures"]
    assert set(result["exit_codes"]) <= {"0", "2"} and result["exit_codes"].get("2")


def test_set_arg_writes_what_a_user_types():
    assert fuzz.set_arg("optim.lr", 0.05) == "optim.lr=0.05"
    assert fuzz.set_arg("model.kwargs", {"hidden": 8}) == "model.kwargs={hidden: 8}"
    assert fuzz.set_arg("quant", None) == "quant=null"
