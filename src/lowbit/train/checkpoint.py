"""Checkpoints: atomic writes, loaded without unpickling arbitrary objects.

A checkpoint is a dict of tensors and plain Python values saved with ``torch.save`` to a
temporary file in the same folder, flushed and renamed over the old one, so a crash (even
``kill -9``) leaves either the previous or the new checkpoint, never a torn one. Loading uses
``torch.load(weights_only=True)``, which refuses any object other than tensors and primitives.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, Sequence

import numpy as np
import torch

from ..errors import CheckpointError, LowbitError
from ..files import atomic_path

FORMAT = "lowbit.checkpoint/1"


def save_checkpoint(path: Path, state: Dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (temp file + fsync + rename)."""
    with atomic_path(path, fsync=True) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


RUN_KEYS = ("recipe", "model", "optimizer", "state", "methods", "rng")  # what a resume reads


def load_checkpoint(path: Path, required: Sequence[str] = ()) -> Dict[str, Any]:
    """Read a checkpoint; a missing, empty, damaged or foreign file is a CheckpointError.

    Nothing in the file is executed: ``weights_only=True`` refuses every object other than
    tensors and plain values. ``required``: keys a usable checkpoint must hold.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): the file is damaged; train again "
                              "with --force, or restore it from a backup")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the weights-only unpickler raises many types on bad bytes
        raise CheckpointError(f"{path} is damaged (corrupt or truncated) or not a lowbit checkpoint "
                              f"({_reason(exc)}); train again with --force, or restore it "
                              "from a backup") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a lowbit checkpoint (format {FORMAT} expected)")
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"{path} is damaged: it has no {', '.join(missing)} entry; train "
                              "again with --force, or restore it from a backup")
    return state


# what torch and the restoring code raise on an entry of the wrong type, keys or shape
ENTRY_DAMAGE = (TypeError, KeyError, ValueError, AttributeError, IndexError, RuntimeError)


@contextmanager
def restoring(path: Path, entry: str) -> Iterator[None]:
    """Restore one entry of a checkpoint; an entry of the wrong type, keys or shape becomes one
    line naming it (a :class:`CheckpointError`) instead of a traceback from inside torch.

    >>> try:
    ...     with restoring(Path("run/checkpoint.pt"), "rng"):
    ...         set_rng_state({"torch": "not a tensor"})
    ... except CheckpointError as exc:
    ...     print(str(exc).split(";")[0])
    run/checkpoint.pt is damaged: its 'rng' entry cannot be restored (TypeError: expected a torch.ByteTensor, but got str)
    """
    try:
        yield
    except LowbitError:
        raise  # already one line (LowbitError is a ValueError: let it through unchanged)
    except ENTRY_DAMAGE as exc:
        raise CheckpointError(f"{path} is damaged: its {entry!r} entry cannot be restored "
                              f"({type(exc).__name__}: {_reason(exc)}); train again with --force, "
                              "or restore it from a backup") from None


def _reason(exc: Exception) -> str:
    """A short cause from torch's error, without its advice to load with ``weights_only=False``
    (which would run code from the file)."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
        if "Unsupported global" in text:  # a pickled object other than tensors and plain values
            text = text.split(" was not an allowed global")[0].strip()
            return f"it holds a Python object lowbit does not load: {text[:120]}"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first.split(". ")[0].rstrip(".")[:120]


def rng_state() -> Dict[str, Any]:
    """Every random generator the training step uses, as plain values and tensors."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {"torch": torch.get_rng_state(),
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
            "python": [py_state[0], list(py_state[1]), py_state[2]]}


def set_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
