"""Digests of numpy arrays that provably cannot change, cached by id with a weakref guard.

Everything else is hashed again on every call.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

# id -> (weakref, layout, digest).
CACHE: dict[int, tuple[weakref.ref, tuple, bytes]] = {}


def provably_immutable(a: np.ndarray) -> bool:
    """True when no public API can change ``a``'s bytes.

    Every array on the base chain must be read-only and the chain must end in
    ``bytes``: an array owning its memory can be made writeable again with
    ``flags.writeable = True``, so it is never cached.
    """
    b: Any = a
    while isinstance(b, np.ndarray):
        if b.flags.writeable:
            return False
        b = b.base
    if isinstance(b, memoryview):
        return b.readonly and isinstance(b.obj, bytes)
    return isinstance(b, bytes)


def cached(a: np.ndarray, layout: tuple) -> bytes | None:
    """The digest remembered for this very array with this layout, if any."""
    hit = CACHE.get(id(a))
    if hit is not None and hit[0]() is a and hit[1] == layout:
        return hit[2]
    return None


def remember(a: np.ndarray, layout: tuple, digest: bytes) -> None:
    def drop(ref: weakref.ref, k: int = id(a)) -> None:
        entry = CACHE.get(k)
        if entry is not None and entry[0] is ref:
            del CACHE[k]

    CACHE[id(a)] = (weakref.ref(a, drop), layout, digest)
