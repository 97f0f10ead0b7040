"""A run owns its output folder: one writer at a time, and an old run replaced only by a valid one.

:class:`RunFolder` is what ``lowbit train --out DIR`` (and :class:`~lowbit.train.Trainer`) holds
while it runs:

* **one writer**: ``DIR/.lowbit.lock`` holds the owner's PID under an exclusive ``flock``; a
  second run on the same folder is refused at once with that PID. The operating system drops
  the lock when its process dies, even by ``kill -9``, so a stale lock file never blocks a
  later run.
* **checked first**: a location that is a file, lies under a file or cannot be written is
  refused before any data is loaded; so is a folder that already holds a run (unless
  ``resume``, or ``force``) or lowbit outputs without a checkpoint.
* **replaced late** (``force``): the old run's files (only lowbit's own: ``OUTPUTS``) stay
  untouched while the new run loads its data and trains its first epoch. At its first write
  they are moved aside to ``DIR/.lowbit-replaced/``, deleted once the write succeeds, and put
  back if it fails. Other files in the folder are never touched.
* **clean**: temporary files of interrupted writes (``.checkpoint.pt.*.tmp``,
  ``.model.safetensors.*``, ...) are removed when the folder is taken.

>>> import tempfile
>>> with RunFolder(tempfile.mkdtemp()) as folder:
...     with folder.writing():
...         _ = (folder.path / "metrics.json").write_text("{}")
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import socket
from pathlib import Path
from typing import List, Optional

from ..errors import ConfigError, LowbitError
from ..files import check_output_folder

LOCK_NAME = ".lowbit.lock"
ASIDE_NAME = ".lowbit-replaced"
CHECKPOINT = "checkpoint.pt"
OUTPUTS = (CHECKPOINT, "metrics.json", "report.json", "report.md", "recipe.yaml",
           "model.safetensors", "bits.png", "qgt_histograms.png")


class FolderBusy(LowbitError):
    """Another process holds the run folder."""


class FolderLock:
    """An exclusive lock on ``folder`` (``folder/.lowbit.lock`` holds ``pid host``).

    ``acquire`` raises :class:`FolderBusy` naming the holder's PID when another process holds it.
    """

    def __init__(self, folder, what: str = "--out"):
        self.folder, self.what = Path(folder), what
        self.path = self.folder / LOCK_NAME
        self._fd: Optional[int] = None

    def _holder(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            return self.path.read_text().split()[0]
        return "unknown"

    def acquire(self) -> "FolderLock":
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                raise ConfigError(f"{self.what} {self.folder}: cannot write there "
                                  f"({exc.strerror or exc})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                raise FolderBusy(f"{self.folder} is in use by another lowbit process (PID "
                                 f"{self._holder()}); wait for it to finish, or use another "
                                 f"{self.what}") from None
            # the holder before us may have removed the file after we opened it: retry on the new one
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _remove_interrupted_writes(folder: Path) -> None:
    """Temporary files of lowbit outputs (``.<output>.*``); only called under the lock."""
    for name in os.listdir(folder):
        if any(name.startswith(f".{out}.") for out in OUTPUTS) and (folder / name).is_file():
            with contextlib.suppress(OSError):
                os.unlink(folder / name)


class RunFolder:
    """The output folder of one run (see the module docstring).

    ``enabled=False`` (processes other than rank 0 of a multi-process run) makes every
    method a no-op: only rank 0 writes.
    """

    def __init__(self, path, *, resume: bool = False, force: bool = False, enabled: bool = True):
        self.path, self.resume, self.force, self.enabled = Path(path), resume, force, enabled
        self._lock: Optional[FolderLock] = None
        self._created = False
        self._pending: List[str] = []  # old outputs to replace at the first write

    # ----- taking the folder ------------------------------------------------------------------
    def open(self) -> "RunFolder":
        if not self.enabled or self._lock is not None:
            return self
        check_output_folder(self.path)
        self._created = not self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--out {self.path}: cannot create it ({exc.strerror or exc})") from None
        self._lock = FolderLock(self.path)
        try:
            self._lock.acquire()
            self._restore_aside()
            _remove_interrupted_writes(self.path)
            self._check_contents()
        except BaseException:
            self.close()
            raise
        return self

    def _check_contents(self) -> None:
        existing = [n for n in OUTPUTS if (self.path / n).exists()]
        has_run = CHECKPOINT in existing
        if self.resume:
            if not has_run:
                raise ConfigError(f"nothing to resume: {self.path / CHECKPOINT} does not exist")
            return
        if existing and not self.force:
            if has_run:
                raise ConfigError(f"{self.path} already holds a run (checkpoint.pt); use --resume "
                                  "to continue it, --force to replace it, or another --out")
            raise ConfigError(f"{self.path} already holds outputs of another run or program "
                              f"({', '.join(existing)}) but no checkpoint; use --force to replace "
                              "them, or another --out")
        self._pending = existing

    def _restore_aside(self) -> None:
        """A replacement cut off (``kill -9``) before the new run's first checkpoint left the old
        run aside: it comes back whole. After that checkpoint, the aside copy is dropped."""
        aside = self.path / ASIDE_NAME
        if not aside.is_dir():
            return
        if not (self.path / CHECKPOINT).exists():
            for name in OUTPUTS:
                with contextlib.suppress(OSError):
                    if (aside / name).exists():
                        os.replace(aside / name, self.path / name)
                    else:
                        os.unlink(self.path / name)
        shutil.rmtree(aside, ignore_errors=True)

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self._created:
            with contextlib.suppress(OSError):
                self.path.rmdir()  # only if the run wrote nothing

    def __enter__(self) -> "RunFolder":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # ----- writing ------------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self):
        """Wrap a run's writes: the first one replaces the old run (``force``) as described in
        the module docstring; later ones just run."""
        if not self._pending:
            yield
            return
        pending, self._pending = self._pending, []
        aside = self.path / ASIDE_NAME
        aside.mkdir(exist_ok=True)
        for name in pending:
            os.replace(self.path / name, aside / name)
        try:
            yield
        except BaseException:
            for name in pending:  # the new run failed: the old one comes back whole
                with contextlib.suppress(OSError):
                    os.replace(aside / name, self.path / name)
            for name in set(OUTPUTS) - set(pending):
                with contextlib.suppress(OSError):
                    os.unlink(self.path / name)
            shutil.rmtree(aside, ignore_errors=True)
            raise
        shutil.rmtree(aside, ignore_errors=True)
