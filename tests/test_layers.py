"""The layer order of the package (pyproject.toml, [tool.importlinter]): each layer imports only
the layers below it, and no package has an import cycle. Function-level imports count too."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parents[1]
LINT = ("import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))")


def lint(src: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LINT, str(ROOT / "pyproject.toml")], cwd=src.parent,
                          env={"PYTHONPATH": str(src), "PATH": ""}, capture_output=True, text=True)


def test_the_import_contracts_hold():
    result = lint(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_layers_contract(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "lowbit", src / "lowbit", ignore=shutil.ignore_patterns("__pycache__"))
    with open(src / "lowbit" / "ops" / "axes.py", "a") as f:
        f.write("\n\ndef _upward():\n    from ..train import Trainer  # ops must not know training\n")
    result = lint(src)
    assert result.returncode == 1
    assert "lowbit.ops is not allowed to import lowbit.train" in result.stdout
    assert "lowbit.ops.axes -> lowbit.train" in result.stdout
