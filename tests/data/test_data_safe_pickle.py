"""The restricted unpickler: numpy arrays load, anything executable is refused."""

import os
import pickle

import numpy as np
import pytest

from lowbit.data.safe_pickle import safe_load
from lowbit.errors import DataError


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvalEvil:
    def __reduce__(self):
        return (eval, ("1 + 1",))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_batch_loads(tmp_path, make, protocol):
    raw, data, labels = make.cifar_batch(4, seed=1, protocol=protocol)
    path = tmp_path / "batch"
    path.write_bytes(raw)
    batch = safe_load(path)
    assert np.array_equal(batch["data"], data) and batch["labels"] == labels


def test_python2_style_bytes_pickle(tmp_path):
    path = tmp_path / "meta"
    path.write_bytes(pickle.dumps({"label_names": [b"cat", b"dog"], "num": 3}, protocol=2))
    assert safe_load(path)["label_names"] == [b"cat", b"dog"]


def test_os_system_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil"
    path.write_bytes(pickle.dumps({"data": _Evil(marker)}, protocol=2))
    with pytest.raises(DataError, match=r"refusing to unpickle global (posix|os|nt)\.system"):
        safe_load(path)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_builtin_eval_is_refused(tmp_path, protocol):
    path = tmp_path / "evil"
    path.write_bytes(pickle.dumps([_EvalEvil()], protocol=protocol))
    with pytest.raises(DataError, match="eval"):
        safe_load(path)


def test_truncated_and_garbage_pickles(tmp_path, make):
    raw, _, _ = make.cifar_batch(4, seed=0)
    cut = tmp_path / "cut"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="cut.*corrupt or truncated"):
        safe_load(cut)
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00not a pickle at all")
    with pytest.raises(DataError, match="junk"):
        safe_load(junk)


def test_numpy1_module_names_load(tmp_path, make):
    raw, data, _ = make.cifar_batch(3, seed=2, protocol=2)
    old_style = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert old_style != raw
    path = tmp_path / "old"
    path.write_bytes(old_style)
    assert (safe_load(path)["data"] == data).all()


def test_official_batches_meta(shared_data):
    meta = shared_data / "cifar10-official-partial" / "batches.meta"
    if not meta.is_file():
        pytest.skip("official batches.meta not present")
    names = safe_load(meta)["label_names"]
    assert names[:3] == ["airplane", "automobile", "bird"] and len(names) == 10
