"""Writing output files safely: atomically, with the user's umask, and checked before long work.

Every file lowbit writes (checkpoints, weights, reports, packed/ONNX/QONNX exports, sweep.json,
plots) goes through :func:`atomic_path`: the data is written to a temporary file in the same
folder, named ``.<name>.<pid>.<random>.tmp``, and renamed over the target only when complete, so
a crash (even ``kill -9``) leaves the old file or the new one, never half of one. Temporary
files are created with mode ``0o666`` minus the umask, as ``open()`` would, so outputs are
readable by whom the user's umask allows. A temporary file left by a killed process (its PID is
gone) is removed the next time the same target is written.

>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> write_text(os.path.join(folder, "a.json"), "{}")
>>> sorted(os.listdir(folder))
['a.json']
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path
from typing import Iterator, Union

from .errors import ConfigError

PathLike = Union[str, "os.PathLike[str]"]
# the repository root of a source checkout (src/lowbit/files.py -> .): bundled recipes,
# baselines and the ../shared/data default live relative to it
REPO_ROOT = Path(__file__).resolve().parents[2]
TEMP_SUFFIX = ".tmp"


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists but belongs to another user
        return True
    return True


def temp_pid(name: str, target: str) -> int:
    """The PID in a temporary file name of ``target`` (``.<target>.<pid>.<hex>.tmp``), or -1."""
    prefix = f".{target}."
    if not (name.startswith(prefix) and name.endswith(TEMP_SUFFIX)):
        return -1
    parts = name[len(prefix):-len(TEMP_SUFFIX)].split(".")
    return int(parts[0]) if len(parts) == 2 and parts[0].isdigit() else -1


def remove_stale_temps(path: PathLike) -> int:
    """Remove temporary files of ``path`` left by processes that no longer run; returns how many."""
    path = Path(path)
    removed = 0
    try:
        names = os.listdir(path.parent)
    except OSError:
        return 0
    for name in names:
        pid = temp_pid(name, path.name)
        if pid > 0 and pid != os.getpid() and not pid_alive(pid):
            with contextlib.suppress(OSError):
                os.unlink(path.parent / name)
                removed += 1
    return removed


def _create_temp(path: Path) -> Path:
    """A new, empty temporary file beside ``path`` (mode 0o666 minus the umask)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(path))


@contextlib.contextmanager
def atomic_path(path: PathLike, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``path`` when the block ends without error.

    ``fsync``: flush the data to disk before the rename (checkpoints), so that a power loss
    cannot leave a renamed but empty file.

    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "x.bin")
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_bytes(b"data")
    >>> open(target, "rb").read()
    b'data'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    tmp = _create_temp(path)
    try:
        yield tmp
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes(path: PathLike, data: bytes, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path, fsync=fsync) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def write_text(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p.parent != p:
        p = p.parent
    return p


def _probe_writable(folder: Path, what: str, target: Path) -> None:
    """Create and remove a temporary file in ``folder`` (root ignores permission bits, so
    ``os.access`` alone would not find a read-only file system)."""
    try:
        tmp = _create_temp(folder / ".lowbit-write-test")
        os.unlink(tmp)
    except OSError as exc:
        raise ConfigError(f"{what} {target}: cannot write in {folder} ({exc.strerror or exc}); "
                          "choose a location you can write to") from None


def check_output_file(path: PathLike, what: str = "--out") -> Path:
    """Refuse an output file location that cannot work, before any long work starts.

    A folder (or a name ending in ``/``), a location under an existing file, or an
    unwritable folder is a ConfigError that says what to do.

    >>> import tempfile
    >>> check_output_file(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    lowbit.errors.ConfigError: --out ... is a folder; give a file name, e.g. .../model.lowbit
    """
    text = os.fspath(path)
    p = Path(text)
    if text.endswith(os.sep) or p.is_dir():
        raise ConfigError(f"{what} {text} is a folder; give a file name, e.g. "
                          f"{os.path.join(text, 'model.lowbit')}")
    base = _nearest_existing(p.parent if str(p.parent) else Path("."))
    if not base.is_dir():
        raise ConfigError(f"{what} {text}: {base} is a file, not a folder")
    _probe_writable(base, what, p)
    return p


def check_output_folder(path: PathLike, what: str = "--out") -> Path:
    """Refuse an output folder that is a file, lies under a file, or cannot be written."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{what} {p} is a file; give a folder for the run's outputs")
    base = _nearest_existing(p)
    if not base.is_dir():
        raise ConfigError(f"{what} {p}: {base} is a file, not a folder")
    _probe_writable(base, what, p)
    return p
