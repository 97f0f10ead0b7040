"""Name -> constructor registries (models, quantizers, estimators, observers, methods).

Registries let the CLI list what exists and let recipes name things in plain YAML.

>>> REG = Registry("widget")
>>> @REG.register("round")
... def make_round():
...     return "round widget"
>>> REG.get("round")()
'round widget'
>>> REG.names()
['round']
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, TypeVar

from .errors import ConfigError, unknown_name

T = TypeVar("T")


class Registry:
    """A mapping from names to objects with a decorator for registration."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: Dict[str, Any] = {}
        self._meta: Dict[str, Dict[str, Any]] = {}

    def register(self, name: Optional[str] = None, **meta: Any) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name`` (default: its ``__name__``)."""

        def deco(obj: T) -> T:
            key = name or getattr(obj, "__name__")
            if key in self._items:
                raise ConfigError(f"{self.kind} {key!r} is already registered")
            self._items[key] = obj
            self._meta[key] = dict(meta)
            return obj

        return deco

    def unregister(self, name: str) -> Any:
        """Remove ``name`` (e.g. a plugin's entry in a test) and return what it held."""
        self.get(name)
        self._meta.pop(name)
        return self._items.pop(name)

    def get(self, name: str) -> Any:
        """Return the object registered as ``name``; unknown names list the valid ones."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise unknown_name(self.kind, name, self._items) from None

    def meta(self, name: str) -> Dict[str, Any]:
        self.get(name)
        return dict(self._meta[name])

    def names(self) -> List[str]:
        return sorted(self._items)

    def items(self) -> Iterator[Tuple[str, Any]]:
        return iter(sorted(self._items.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
