"""Persistence: the registry database and the content-addressed artifact folder.

``get_store()`` returns the store configured for this process (see
:mod:`mlops_nb.config`); stores are cached per location and safe to use after
``fork`` (the connection pool is reset in the child).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import config
from ..errors import NoRegistry

if TYPE_CHECKING:
    from .artifacts import ArtifactStore
    from .sql import SqlStore

__all__ = ["ArtifactStore", "SqlStore", "Store", "get_store", "clear_cache", "registry_exists"]

# SQLAlchemy and fsspec load with the first store, not with the package: a kernel
# imports mlops_nb.store.hooks without paying for them.
_LAZY = {"ArtifactStore": ("artifacts", "ArtifactStore"), "SqlStore": ("sql", "SqlStore"), "Store": ("sql", "SqlStore")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_cache: dict[tuple[str, str], SqlStore] = {}
_reaped: dict[tuple[str, str], float] = {}
_lock = threading.Lock()
# How often a long-lived process (scheduler, Jupyter server) looks again for runs of dead processes.
_REAP_EVERY_S = 30.0


def get_store(url: str | None = None, artifacts: str | None = None, *, create: bool | None = None) -> SqlStore:
    """The store at ``url``/``artifacts``, or the configured one when omitted.

    Opening a store marks runs of this host whose process has ended as
    ``interrupted``.  With ``create=False`` (default: ``config.settings.create_store``)
    a registry that does not exist yet raises :class:`~mlops_nb.errors.NoRegistry`
    instead of being created.
    """
    from .reaping import reap_dead_runs
    from .sql import SqlStore

    store_url = config.store_url(url)
    artifacts_url = config.artifacts_url(artifacts, store=store_url)
    key = (store_url, artifacts_url)
    with _lock:
        store = _cache.get(key)
        if store is None:
            if not (config.settings.create_store if create is None else create) and not registry_exists(store_url):
                raise NoRegistry(
                    f"No mlops_nb registry here: looked for {_describe(store_url)} ({config.store_source(url)}). "
                    "Point at one with --store sqlite:///PATH/registry.db or postgresql+psycopg://..., "
                    "MLOPS_NB_STORE_URL, or MLOPS_NB_HOME=FOLDER (the folder holding registry.db), "
                    "or run the command in the folder whose .mlops/ holds it.",
                    looked_in=store_url,
                )
            store = _cache[key] = SqlStore(store_url, artifacts_url)
        if key not in _reaped or time.monotonic() - _reaped[key] >= _REAP_EVERY_S:
            _reaped[key] = time.monotonic()
            reap_dead_runs(store)
        return store


def registry_exists(url: str) -> bool:
    """Whether ``url`` already holds an mlops_nb registry (nothing is created to find out)."""
    path = _sqlite_path(url)
    if path is not None:
        return path == ":memory:" or Path(path).is_file()
    from .engine import make_engine, read_transaction

    engine = make_engine(url)
    try:
        with read_transaction(engine) as conn:
            return conn.dialect.has_table(conn, "schema_info")
    finally:
        engine.dispose()


def _sqlite_path(url: str) -> str | None:
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1] if "///" in url else ":memory:"
    return path or ":memory:"


def _describe(url: str) -> str:
    path = _sqlite_path(url)
    if path is not None:
        return path
    from .engine import make_engine

    return f"the schema_info table in {make_engine(url).url.render_as_string(hide_password=True)}"


def clear_cache() -> None:
    """Close every cached store (the next ``get_store`` opens afresh)."""
    with _lock:
        for store in _cache.values():
            store.close()
        _cache.clear()
        _reaped.clear()


def _after_fork_in_child() -> None:
    # Pooled connections must not be shared with the parent process.
    for store in _cache.values():
        store.engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
