"""Checkpoints are atomic, and loading refuses anything but tensors and plain values."""

import pickle

import pytest
import torch

from lowbit.errors import CheckpointError
from lowbit.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state


class Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_roundtrip_and_no_temp_files(tmp_path):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(2)}, "step": 3})
    save_checkpoint(path, {"model": {"w": torch.zeros(2)}, "step": 4})
    state = load_checkpoint(path)
    assert state["step"] == 4 and torch.equal(state["model"]["w"], torch.zeros(2))
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


def test_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"step": 1, "model": {"w": torch.ones(1000)}})
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_pickled_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"format": "lowbit.checkpoint/1", "x": Evil()}, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert "code ran" not in capsys.readouterr().out


def test_foreign_file_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.ones(1)}, path)
    with pytest.raises(CheckpointError, match="not a lowbit checkpoint"):
        load_checkpoint(path)
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "text.pt")


def test_rng_state_restores_every_generator():
    import random

    import numpy as np

    state = rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_damaged_checkpoints_say_so_without_torchs_unsafe_advice(tmp_path):
    """An empty file crashed resume/eval/export with an IndexError; torch's message advised
    ``weights_only=False``, which would run code from the file."""
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="is empty"):
        load_checkpoint(empty)
    evil = tmp_path / "evil.pt"
    torch.save({"format": "lowbit.checkpoint/1", "x": Evil()}, evil)
    for path in (evil, tmp_path / "garbage.pt"):
        if not path.exists():
            path.write_bytes(b"\x80\x02garbage")
        with pytest.raises(CheckpointError) as exc:
            load_checkpoint(path)
        assert "weights_only" not in str(exc.value) and "damaged" in str(exc.value)


def test_a_checkpoint_missing_its_model_or_recipe_is_damaged(tmp_path):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"recipe": {}, "state": {}})
    with pytest.raises(CheckpointError, match="no model entry"):
        load_checkpoint(path, required=("recipe", "model"))
