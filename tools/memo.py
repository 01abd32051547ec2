"""An opt-in memo of fitted recommenders and taste spaces, for runs that repeat them.

``recarena eval validity --taste`` runs the same arms on the same data once per taste family
and null simulator: the recommenders, and the taste spaces an ensemble shares with its
members, are identical across those runs. Inside ``memo()`` a fit is looked up by what
determines it (the arm's config, seed, cold-start policy and the training data's bytes) and
a deep copy of the stored fit is returned, so no run sees another's state. Outside it
nothing is stored: normal runs are unchanged.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

__all__ = ["digest", "memo", "memoised"]

T = TypeVar("T")
_STORE: dict[str, Any] | None = None


@contextmanager
def memo() -> Iterator[None]:
    """Memoise fits inside the block (nested blocks share the outer store)."""
    global _STORE
    outer = _STORE
    if outer is None:
        _STORE = {}
    try:
        yield
    finally:
        _STORE = outer


def digest(*parts: Any) -> str:
    """A key from strings, numbers and numpy arrays (their bytes)."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(np.ascontiguousarray(p).tobytes())
            h.update(str((p.dtype, p.shape)).encode())
        else:
            h.update(repr(p).encode())
        h.update(b"\0")
    return h.hexdigest()


def memoised(key: Callable[[], str], build: Callable[[], T]) -> T:
    """``build()``, or a copy of its stored result inside ``memo()``."""
    if _STORE is None:
        return build()
    k = key()
    if k not in _STORE:
        _STORE[k] = build()
    return copy.deepcopy(_STORE[k])
