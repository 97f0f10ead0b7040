"""``--resume`` from a checkpoint whose entries have the wrong type: one line naming the entry,
exit code 2, the checkpoint left as it was; and a checkpoint written before a recipe field was
retired still resumes."""

import shutil

import pytest
import torch

from lowbit.cli import main
from lowbit.train.checkpoint import load_checkpoint, save_checkpoint


def _unfinished_copy(quick_run, tmp_path, **entries):
    """A copy of the finished run whose checkpoint says "not done" and holds ``entries``."""
    run = tmp_path / "run"
    shutil.copytree(quick_run, run)
    ckpt = load_checkpoint(run / "checkpoint.pt")
    ckpt.pop("format")
    start = dict(ckpt["state"], phase=0, epoch_in_phase=0, global_epoch=0, step=0, history=[])
    ckpt.update(done=False, state=start)
    ckpt.update(entries)
    save_checkpoint(run / "checkpoint.pt", ckpt)
    return run


def _resume(capsys, recipe, run):
    code = main(["train", str(recipe), "--out", str(run), "--resume", "--quiet", "--device", "cpu"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return code, err


@pytest.mark.parametrize("entry,value", [
    ("state", "not a dict"),
    ("state", {"step": "seven"}),
    ("state", {"phase": 0, "history": "none"}),
    ("state", {"no_such_field": 1}),
    ("rng", {"torch": 3}),
    ("rng", []),
    ("methods", [1, 2]),
    ("optimizer", {"state": {}, "param_groups": "x"}),
    ("optimizer", 5),
])
def test_a_wrong_typed_entry_is_one_line_and_leaves_the_checkpoint(quick_recipe, quick_run, tmp_path,
                                                                   capsys, entry, value):
    run = _unfinished_copy(quick_run, tmp_path, **{entry: value})
    before = (run / "checkpoint.pt").read_bytes()
    code, err = _resume(capsys, quick_recipe, run)
    assert code == 2 and len(err) == 1, err
    assert f"its {entry!r} entry cannot be restored" in err[0] and "Traceback" not in err[0]
    assert (run / "checkpoint.pt").read_bytes() == before


def test_a_model_entry_of_the_wrong_type_is_one_line(quick_recipe, quick_run, tmp_path, capsys):
    run = _unfinished_copy(quick_run, tmp_path, model=[1, 2, 3])
    code, err = _resume(capsys, quick_recipe, run)
    assert code == 2 and len(err) == 1 and "does not match the model" in err[0]


def test_a_checkpoint_with_a_retired_recipe_field_resumes(quick_recipe, quick_run, tmp_path, capsys):
    """An older lowbit wrote ``fill_anchor`` into every quantizer config; the field is retired
    (read and dropped), so the run resumes instead of being called "a different recipe"."""
    ckpt = load_checkpoint(quick_run / "checkpoint.pt")
    recipe = ckpt["recipe"]
    recipe["quant"]["weight"]["fill_anchor"] = "step"
    run = _unfinished_copy(quick_run, tmp_path, recipe=recipe)
    code, err = _resume(capsys, quick_recipe, run)
    assert code == 0, err
    assert load_checkpoint(run / "checkpoint.pt")["done"] is True


def test_a_checkpoint_of_another_recipe_is_still_refused(quick_recipe, quick_run, tmp_path, capsys):
    recipe = load_checkpoint(quick_run / "checkpoint.pt")["recipe"]
    recipe["optim"]["lr"] = recipe["optim"]["lr"] * 2
    run = _unfinished_copy(quick_run, tmp_path, recipe=recipe)
    code, err = _resume(capsys, quick_recipe, run)
    assert code == 2 and len(err) == 1 and "written by a different recipe" in err[0]
    assert torch.is_tensor(load_checkpoint(run / "checkpoint.pt")["rng"]["torch"])
