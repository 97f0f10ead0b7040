"""A run owns its output folder: one writer (lock), --force replaces an old run only once the new
one is valid, interrupted-write temp files are cleaned, outputs follow the umask, and a bad
--out is refused before any training."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from train_helpers import REPO, tiny_recipe, write_recipe
from lowbit.cli import main

LOCK_NAME, ASIDE_NAME = ".lowbit.lock", ".lowbit-replaced"


def _train(*args):
    return main(["train", *map(str, args), "--quiet", "--device", "cpu"])


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _err(capsys):
    lines = [l for l in capsys.readouterr().err.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and "error:" in lines[0], lines
    return lines[0]


@pytest.fixture
def old_run(quick_run, tmp_path):
    out = tmp_path / "fin"
    shutil.copytree(quick_run, out)
    (out / "notes.txt").write_text("the user's own file")
    return out


def test_two_trainers_on_one_folder_one_is_refused(quick_recipe, tmp_path):
    """Started together on the same --out: one trains, the other exits 2 at once; the folder
    then holds one consistent run (its checkpoint and metrics from the same recipe)."""
    slow = tiny_recipe(quant=True, epochs=(1, 0), limit=1000)
    out = tmp_path / "shared"
    files = [write_recipe(tmp_path / f"r{seed}.yaml", {**slow, "seed": seed}) for seed in (1, 2)]
    env = {**os.environ, "LOWBIT_COMPILE": "0"}
    procs = [subprocess.Popen([sys.executable, "-m", "lowbit", "train", str(f), "--out", str(out),
                               "--quiet"], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
             for f in files]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 2], results
    loser = next(err for rc, err in results if rc == 2)
    assert "in use by another lowbit process (PID" in loser or "already holds a run" in loser, loser
    import torch

    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    report = json.loads((out / "report.json").read_text())
    assert report["recipe"] == ckpt["recipe"]  # one run's outputs, not a mix of two
    assert report["metrics"]["steps"] == ckpt["state"]["step"] and not (out / LOCK_NAME).exists()


def test_a_held_folder_is_refused_with_the_holders_pid(quick_recipe, tmp_path, capsys):
    out = tmp_path / "held"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from lowbit.train.folder import FolderLock; "
         "FolderLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert _train(quick_recipe, "--out", out) == 2
        msg = _err(capsys)
        assert f"PID {holder.pid}" in msg and not (out / "checkpoint.pt").exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder died (as with kill -9): its lock file is stale and the next run takes over
    assert (out / LOCK_NAME).exists()
    assert _train(quick_recipe, "--out", out) == 0 and not (out / LOCK_NAME).exists()


def test_force_keeps_the_old_run_until_the_new_one_is_valid(quick_recipe, old_run, capsys):
    before = _snapshot(old_run)
    assert _train(quick_recipe, "--out", old_run, "--force", "--data-dir", "/nonexistent") == 2
    assert "/nonexistent" in _err(capsys)
    assert _snapshot(old_run) == before  # nothing deleted, nothing written
    assert _train(quick_recipe, "--out", old_run, "--force", "--set", "seed=4") == 0
    import torch

    assert torch.load(old_run / "checkpoint.pt", weights_only=True)["recipe"]["seed"] == 4
    assert json.loads((old_run / "report.json").read_text())["recipe"]["seed"] == 4
    assert (old_run / "notes.txt").read_text() == "the user's own file"
    assert not (old_run / ASIDE_NAME).exists()


def test_force_puts_the_old_run_back_when_the_first_write_fails(quick_recipe, old_run, monkeypatch):
    from lowbit.train import loop

    before = _snapshot(old_run)

    def disk_full(path, state):
        (path.parent / ".checkpoint.pt.1.aa.tmp").write_bytes(b"half")  # as a crash would leave
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(loop, "save_checkpoint", disk_full)
    from lowbit.train import Trainer, load_recipe

    with pytest.raises(OSError):
        Trainer(load_recipe(str(quick_recipe), ["seed=5"]), old_run, force=True, verbose=False).run()
    after = _snapshot(old_run)
    after.pop(".checkpoint.pt.1.aa.tmp", None)
    assert after == before and not (old_run / ASIDE_NAME).exists()


def test_a_folder_of_foreign_outputs_is_not_overwritten(quick_recipe, tmp_path, capsys):
    out = tmp_path / "foreign"
    out.mkdir()
    (out / "metrics.json").write_text('{"mine": 1}')
    assert _train(quick_recipe, "--out", out) == 2
    assert "no checkpoint" in _err(capsys) and (out / "metrics.json").read_text() == '{"mine": 1}'


def test_interrupted_write_temp_files_are_removed(quick_recipe, tmp_path):
    """A run killed during its first checkpoint write left only temporary files: the next run
    in the folder removes them."""
    out = tmp_path / "killed"
    out.mkdir()
    leftovers = [".checkpoint.pt.k3j2l1.tmp", ".model.safetensors.abc123", ".metrics.json.x9y8z7"]
    for name in leftovers:
        (out / name).write_bytes(b"partial")
    (out / "notes.txt").write_text("kept")
    assert _train(quick_recipe, "--out", out) == 0
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    assert (out / "notes.txt").read_text() == "kept"


def test_outputs_follow_the_umask(quick_recipe, tmp_path):
    old = os.umask(0o022)
    try:
        assert _train(quick_recipe, "--out", tmp_path / "u") == 0
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "u").iterdir()}
    assert set(modes.values()) == {0o644}, modes


def test_a_bad_out_is_refused_before_training(quick_recipe, tmp_path, capsys):
    """Checked first: the data dir is wrong too, but the message is about --out."""
    (tmp_path / "afile").write_text("x")
    for out, words in ((tmp_path / "afile", "is a file"), (tmp_path / "afile" / "run", "is a file")):
        start = time.time()
        assert _train(quick_recipe, "--out", out, "--data-dir", "/nonexistent") == 2
        msg = _err(capsys)
        assert words in msg and "--out" in msg, msg
        assert time.time() - start < 5
    assert (tmp_path / "afile").read_text() == "x"


def test_an_unwritable_out_is_refused_before_training(quick_recipe, unwritable, capsys):
    assert _train(quick_recipe, "--out", unwritable / "run", "--data-dir", "/nonexistent") == 2
    assert "cannot write" in _err(capsys)


def test_lock_is_exclusive_within_a_process_too(tmp_path):
    from lowbit.train.folder import FolderBusy, FolderLock

    with FolderLock(tmp_path):
        with pytest.raises(FolderBusy, match=f"PID {os.getpid()}"):
            FolderLock(tmp_path).acquire()
    with FolderLock(tmp_path):  # released: free again
        pass


def test_docstring_example():
    import doctest

    import lowbit.train.folder

    assert doctest.testmod(lowbit.train.folder, optionflags=doctest.ELLIPSIS).failed == 0
