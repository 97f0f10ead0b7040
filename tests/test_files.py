"""lowbit.files: atomic writes (no partial file under the real name, ever), the user's umask,
removal of temporary files left by dead processes, and output locations checked up front."""

from __future__ import annotations

import os

import pytest

from lowbit.errors import ConfigError
from lowbit.files import atomic_path, check_output_file, check_output_folder, write_bytes


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "a.bin"
    write_bytes(path, b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half of the new")
            raise RuntimeError("crash")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["a.bin"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_are_created_with_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_bytes(tmp_path / "f", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == mode


def test_temps_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    dead, alive = 2**22 + 12345, os.getppid()  # beyond pid_max: never a live process
    for pid in (dead, alive):
        (tmp_path / f".m.onnx.{pid}.abcd0123.tmp").write_bytes(b"partial")
    (tmp_path / ".other.onnx.1.abcd0123.tmp").write_bytes(b"not ours")
    write_bytes(tmp_path / "m.onnx", b"new")
    assert sorted(os.listdir(tmp_path)) == [".m.onnx.%d.abcd0123.tmp" % alive,
                                            ".other.onnx.1.abcd0123.tmp", "m.onnx"]


def test_output_locations_are_checked(tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    with pytest.raises(ConfigError, match="is a folder; give a file name"):
        check_output_file(str(tmp_path / "adir"))
    with pytest.raises(ConfigError, match="is a folder"):
        check_output_file(str(tmp_path / "new") + "/")
    with pytest.raises(ConfigError, match="afile is a file, not a folder"):
        check_output_file(tmp_path / "afile" / "m.lowbit")
    with pytest.raises(ConfigError, match="is a file; give a folder"):
        check_output_folder(tmp_path / "afile")
    assert check_output_file(tmp_path / "deep" / "er" / "m.lowbit").name == "m.lowbit"
    assert not (tmp_path / "deep").exists()  # checking creates nothing
    assert sorted(os.listdir(tmp_path)) == ["adir", "afile"]
