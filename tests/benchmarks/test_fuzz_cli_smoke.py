"""benchmarks/fuzz_cli.py on a few cases: the grammar makes valid and invalid commands, and every
one exits 0 or 2 without a traceback, leaving earlier runs as they were (the 1,000-case run and
its numbers are in benchmarks/results.md)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _module():
    sys.path.insert(0, str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location("fuzz_cli_bench", REPO / "benchmarks" / "fuzz_cli.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_few_fuzzed_commands_exit_cleanly(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    fuzz = _module()
    fuzzer = fuzz.Fuzzer(tmp_path, seed=3)
    fuzzer.setup()
    result = fuzzer.run(16, progress=0)
    assert result["tracebacks"] == 0 and result["other_exit_codes"] == 0, result["failures"]
    assert result["changed_folders"] == 0, result["failures"]
    assert set(result["exit_codes"]) <= {"0", "2"} and result["exit_codes"].get("2")


def test_set_arg_writes_what_a_user_types():
    fuzz = _module()
    assert fuzz.set_arg("optim.lr", 0.05) == "optim.lr=0.05"
    assert fuzz.set_arg("model.kwargs", {"hidden": 8}) == "model.kwargs={hidden: 8}"
    assert fuzz.set_arg("quant", None) == "quant=null"
