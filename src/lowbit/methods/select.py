"""Choosing the tensors a method acts on by name.

A method's ``targets`` / ``exclude`` / per-name settings follow the rules of a recipe's
overrides (:func:`lowbit.nn.resolve.match_names`): a glob, ``re:<regex>``, or ``@first`` /
``@last``; a pattern that matches nothing is a one-line error listing the names there are.

>>> pick(["fc1.weight", "fc1.bias", "fc2.weight"], ["*.weight"], "qgt targets", "parameter")
['fc1.weight', 'fc2.weight']
>>> pick(["fc1.weight", "fc2.weight"], ["@last"], "qgt exclude", "parameter")
['fc2.weight']
"""

from __future__ import annotations

from typing import Dict, Iterable, List, TypeVar

from ..errors import ConfigError
from ..nn.resolve import match_names, name_list

V = TypeVar("V")


def pick(names: List[str], patterns: Iterable[str], what: str, noun: str) -> List[str]:
    """The ``names`` (in their order) that any of ``patterns`` matches; a pattern matching none
    of them raises ``<what> pattern 'p' matches no <noun>; <noun>s: ...``."""
    hit = set()
    for p in patterns:
        found = match_names(p, names)
        if not found:
            raise ConfigError(f"{what} pattern {p!r} matches no {noun}; {noun}s: {name_list(names, 30)}")
        hit.update(found)
    return [n for n in names if n in hit]


def per_name(names: List[str], settings: Dict[str, V], what: str, noun: str) -> Dict[str, V]:
    """``{name: value}`` from ``{pattern: value}`` settings (a later pattern wins)."""
    out: Dict[str, V] = {}
    for pattern, value in settings.items():
        out.update({n: value for n in pick(names, [pattern], what, noun)})
    return out
