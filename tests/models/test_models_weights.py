"""Float weights from .safetensors files: a bad file is one clear CheckpointError line."""

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from lowbit.errors import CheckpointError, ConfigError
from lowbit.models.weights import load_float_weights


def test_round_trip_and_mismatch(tmp_path):
    src, path = nn.Linear(3, 2), tmp_path / "w.safetensors"
    save_file(src.state_dict(), str(path))
    dst = nn.Linear(3, 2)
    load_float_weights(dst, str(path))
    assert torch.equal(dst.weight, src.weight) and torch.equal(dst.bias, src.bias)
    with pytest.raises(CheckpointError, match="does not match model Linear"):
        load_float_weights(nn.Linear(4, 2), str(path))


@pytest.mark.parametrize("blob", [b"garbage", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json"])
def test_corrupt_file_is_a_one_line_checkpoint_error(tmp_path, blob):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(blob)
    with pytest.raises(CheckpointError, match="not a readable safetensors file") as exc:
        load_float_weights(nn.Linear(2, 2), str(bad))
    assert "\n" not in str(exc.value)


def test_missing_file_says_how_to_make_one():
    with pytest.raises(ConfigError, match="train a float baseline first"):
        load_float_weights(nn.Linear(2, 2), "no/such/file.safetensors")
