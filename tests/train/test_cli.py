"""Command line: help with examples, and one-line errors (exit 2) that leave files intact."""

import pytest

from train_helpers import run_cli, tiny_recipe, write_recipe


@pytest.mark.parametrize("command", ["train", "eval", "models", "recipes", "report"])
def test_help_has_an_example(command):
    r = run_cli(command, "--help")
    assert r.returncode == 0 and "example" in r.stdout


def test_models_and_recipes_list():
    r = run_cli("models")
    assert r.returncode == 0 and "resnet20" in r.stdout and "272,474" in r.stdout
    r = run_cli("recipes")
    assert r.returncode == 0 and "mlp-mnist" in r.stdout


def _one_line_error(r):
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def test_bad_recipe_inputs(tmp_path, recipe_file):
    assert "not found" in _one_line_error(run_cli("train", "nope.yaml", "--out", tmp_path / "o"))
    assert "optim.lr" in _one_line_error(run_cli("train", recipe_file, "--set", "optim.lr=x", "--out", tmp_path / "o"))
    bad = write_recipe(tmp_path / "bad.yaml", {**tiny_recipe(), "model": {"name": "resnet21"}})
    assert "unknown model 'resnet21'" in _one_line_error(run_cli("train", bad, "--out", tmp_path / "o"))
    bad = write_recipe(tmp_path / "bad2.yaml", {**tiny_recipe(), "data": {"dataset": "mnits"}})
    assert "unknown dataset 'mnits'" in _one_line_error(run_cli("train", bad, "--out", tmp_path / "o"))
    (tmp_path / "notyaml.yaml").write_text("model: [unclosed")
    assert "not valid YAML" in _one_line_error(run_cli("train", tmp_path / "notyaml.yaml", "--out", tmp_path / "o"))


def test_missing_data_names_what_is_expected(tmp_path, recipe_file):
    msg = _one_line_error(run_cli("train", recipe_file, "--data-dir", tmp_path / "empty", "--out", tmp_path / "o"))
    assert "mnist" in msg.lower()


def test_existing_run_is_not_overwritten_and_bad_checkpoints_are_refused(tmp_path, recipe_file):
    out = tmp_path / "run"
    assert run_cli("train", recipe_file, "--out", out, "--quiet").returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert "already holds a run" in _one_line_error(run_cli("train", recipe_file, "--out", out))
    # resume with another recipe: refused, nothing changes
    assert "different recipe" in _one_line_error(
        run_cli("train", recipe_file, "--out", out, "--resume", "--set", "seed=4"))
    # resume of a finished run: refused
    assert "already finished" in _one_line_error(run_cli("train", recipe_file, "--out", out, "--resume"))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # a corrupt checkpoint: refused and left as it is
    (out / "checkpoint.pt").write_bytes(b"garbage")
    assert "checkpoint" in _one_line_error(run_cli("train", recipe_file, "--out", out, "--resume"))
    assert (out / "checkpoint.pt").read_bytes() == b"garbage"


def test_resume_without_checkpoint(tmp_path, recipe_file):
    assert "nothing to resume" in _one_line_error(run_cli("train", recipe_file, "--out", tmp_path / "x", "--resume"))


def test_eval_and_report_of_a_run(tmp_path, recipe_file):
    out = tmp_path / "run"
    assert run_cli("train", recipe_file, "--out", out, "--quiet").returncode == 0
    r = run_cli("eval", out)
    assert r.returncode == 0 and "top-1" in r.stdout
    (out / "report.md").unlink()
    assert run_cli("report", out).returncode == 0 and (out / "report.md").is_file()
    assert "not a run folder" in _one_line_error(run_cli("eval", tmp_path / "nothing"))
