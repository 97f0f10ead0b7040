"""Float weights from a .safetensors file, loaded into a model whose tensors must all match.

>>> from torch import nn
>>> load_float_weights(nn.Linear(2, 2), "no/such/file.safetensors")
Traceback (most recent call last):
...
lowbit.errors.ConfigError: model.init: no file 'no/such/file.safetensors' (looked in the current folder and the repository root); train a float baseline first, e.g. `lowbit train recipes/resnet20-cifar10.yaml --out runs/fp32`, and point model.init at runs/fp32/model.safetensors
"""

from __future__ import annotations

from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from ..errors import CheckpointError, ConfigError
from ..files import REPO_ROOT

SCALAR_KEY = "scalar_layer.scale"  # the scalar layer's parameter (lowbit.nn.layers.add_scalar_layer)


def resolve_path(path: str) -> Path:
    """A file path as given, else relative to the repository root (bundled baselines)."""
    p = Path(path)
    if p.is_file():
        return p
    alt = REPO_ROOT / path
    if alt.is_file():
        return alt
    raise ConfigError(f"model.init: no file {path!r} (looked in the current folder and the "
                      f"repository root); train a float baseline first, e.g. "
                      f"`lowbit train recipes/resnet20-cifar10.yaml --out runs/fp32`, and point "
                      f"model.init at runs/fp32/model.safetensors")


def load_float_weights(model: nn.Module, path: str) -> None:
    """Load a float .safetensors state dict into ``model`` (every tensor must match, except a
    scalar layer the file does not have: it keeps its initial value)."""
    file = resolve_path(path)
    try:
        state = load_file(str(file))
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"{file}: not a readable safetensors file: {exc}") from None
    if SCALAR_KEY in dict(model.named_parameters()) and SCALAR_KEY not in state:
        state[SCALAR_KEY] = model.get_parameter(SCALAR_KEY).detach().clone()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        name = getattr(model, "lowbit_spec", {}).get("name") or type(model).__name__
        raise CheckpointError(f"{file} does not match model {name}: "
                              f"{str(exc).splitlines()[0]}") from None
