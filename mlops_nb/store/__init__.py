"""Persistence: the registry database and the content-addressed artifact folder.

``get_store()`` returns the store configured for this process (see
:mod:`mlops_nb.config`); stores are cached per location and safe to use after
``fork`` (the connection pool is reset in the child).
"""

from __future__ import annotations

import os
import threading

from .. import config
from .artifacts import ArtifactStore
from .sql import SqlStore

__all__ = ["ArtifactStore", "SqlStore", "Store", "get_store", "clear_cache"]

Store = SqlStore
_cache: dict[tuple[str, str], SqlStore] = {}
_lock = threading.Lock()


def get_store(url: str | None = None, artifacts: str | None = None) -> SqlStore:
    """The store at ``url``/``artifacts``, or the configured one when omitted."""
    store_url = config.store_url(url)
    artifacts_url = config.artifacts_url(artifacts, store=store_url)
    key = (store_url, artifacts_url)
    with _lock:
        store = _cache.get(key)
        if store is None:
            store = _cache[key] = SqlStore(store_url, artifacts_url)
        return store


def clear_cache() -> None:
    """Close every cached store (the next ``get_store`` opens afresh)."""
    with _lock:
        for store in _cache.values():
            store.close()
        _cache.clear()


def _after_fork_in_child() -> None:
    # Pooled connections must not be shared with the parent process.
    for store in _cache.values():
        store.engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
