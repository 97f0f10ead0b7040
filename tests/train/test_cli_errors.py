"""User errors on the command line: one line on stderr and exit 2 (never a traceback, never a
silently ignored option), with files left as they were. Runs ``lowbit.cli.main`` in-process."""

import json
import shutil

import pytest
import torch

from lowbit.cli import main


def _error(capsys, argv):
    assert main([str(a) for a in argv]) == 2
    lines = [l for l in capsys.readouterr().err.strip().splitlines() if l.strip()]
    assert lines and "error:" in lines[-1] and "Traceback" not in "".join(lines), lines
    return lines[-1]


@pytest.mark.parametrize("device, words", [("tpu", "--device must be cpu, cuda or cuda:N"),
                                            ("cuda:99", "--device cuda:99")])
def test_a_bad_device_is_one_line(quick_recipe, tmp_path, capsys, device, words):
    assert words in _error(capsys, ["train", quick_recipe, "--out", tmp_path / "o", "--device", device])


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_one_line(quick_recipe, tmp_path, capsys):
    msg = _error(capsys, ["train", quick_recipe, "--out", tmp_path / "o", "--device", "cuda"])
    assert "no CUDA GPU is available" in msg and not (tmp_path / "o").exists()


@pytest.mark.parametrize("override, words", [
    ("model.num_classes=5", "mnist has 10 classes"),
    ("model.in_channels=3", "mnist images have 1 channel(s)"),
    ("model.input_size=32", "model.input_size is 32 but the mnist images are 28x28"),
])
def test_model_sizes_that_do_not_fit_the_dataset(quick_recipe, tmp_path, capsys, override, words):
    assert words in _error(capsys, ["train", quick_recipe, "--out", tmp_path / "o", "--quiet",
                                    "--set", override])


def test_eval_limit_applies_to_a_run_and_must_be_positive(quick_run, capsys):
    assert main(["eval", str(quick_run), "--limit", "10"]) == 0
    assert "on 10 mnist test images" in capsys.readouterr().out
    for bad in ("-5", "0"):
        with pytest.raises(SystemExit) as exc:
            main(["eval", str(quick_run), "--limit", bad])
        assert exc.value.code == 2
        assert "--limit: must be >= 1" in capsys.readouterr().err


@pytest.mark.parametrize("content, words", [
    (b"{}", "not a lowbit report"), (b"[1, 2]", "got a JSON list"),
    (b"\xff\xfe\x00binary", "not text"), (b'{"schema": "lowbit.report/1"}', "section 'recipe'"),
])
def test_report_refuses_an_empty_or_damaged_report(quick_run, tmp_path, capsys, content, words):
    folder = tmp_path / "r"
    shutil.copytree(quick_run, folder)
    (folder / "report.json").write_bytes(content)
    before = (folder / "report.md").read_bytes()
    assert words in _error(capsys, ["report", folder])
    assert (folder / "report.md").read_bytes() == before


@pytest.mark.parametrize("name", ["dir/", "existing"])
def test_export_out_must_be_a_file(quick_run, tmp_path, capsys, name):
    (tmp_path / "existing").mkdir()
    (tmp_path / "dir").mkdir()
    out = str(tmp_path / name.rstrip("/")) + ("/" if name.endswith("/") else "")
    assert "is a folder; give a file name" in _error(capsys, ["export", quick_run, "--out", out])


@pytest.mark.parametrize("damage", ["empty", "no_model", "no_recipe"])
def test_damaged_checkpoints_are_one_line_for_every_command(quick_run, quick_recipe, tmp_path, capsys,
                                                          damage):
    folder = tmp_path / "r"
    shutil.copytree(quick_run, folder)
    ckpt = folder / "checkpoint.pt"
    if damage == "empty":
        ckpt.write_bytes(b"")
    else:
        state = torch.load(ckpt, weights_only=True)
        del state[damage.split("_")[1]]
        state["done"] = False
        torch.save(state, ckpt)
    before = ckpt.read_bytes()
    for argv in (["eval", folder], ["export", folder, "--out", tmp_path / "m.lowbit"],
                 ["train", quick_recipe, "--out", folder, "--resume", "--quiet"]):
        msg = _error(capsys, argv)
        assert "checkpoint.pt" in msg and "weights_only" not in msg, msg
    assert ckpt.read_bytes() == before


def test_an_empty_packed_file_is_one_line(tmp_path, capsys):
    (tmp_path / "m.lowbit").write_bytes(b"")
    assert "is empty" in _error(capsys, ["eval", tmp_path / "m.lowbit"])


def test_metrics_of_a_run_are_not_touched_by_refused_commands(quick_run, capsys):
    before = json.loads((quick_run / "metrics.json").read_text())
    _error(capsys, ["train", quick_run / "recipe.yaml", "--out", quick_run, "--quiet"])
    assert json.loads((quick_run / "metrics.json").read_text()) == before


def test_an_exported_model_evaluated_on_another_dataset_is_one_line(quick_run, tmp_path, capsys):
    """An MNIST model on CIFAR-10 images crashed inside the executor's matmul."""
    packed = tmp_path / "m.lowbit"
    assert main(["export", str(quick_run), "--out", str(packed)]) == 0
    msg = _error(capsys, ["eval", packed, "--dataset", "cifar10", "--limit", "4"])
    assert "takes inputs of shape [1, 28, 28]" in msg and "[3, 32, 32]" in msg
