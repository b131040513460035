"""Snapshots written off the cell's critical path, by one thread of the process that tracked them.

A tracked run hands over copies of its data (see :mod:`.policy`) and the cell ends; the
thread writes their chunks and records them. Reads of the registry in this process wait
for it first (a read barrier), and so does interpreter exit, so a snapshot is never
half-known. What could not be snapshotted is said on stderr, under the next cell.
"""

from __future__ import annotations

import atexit
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from ..store.hooks import add_read_barrier
from .policy import Item

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_pending: list[Future] = []
_notes: list[str] = []
THREAD = "mlops-snapshots"


def submit(items: list[Item], store_url: str, artifacts_url: str, *, pinned: bool = False) -> Future | None:
    """Write the snapshots of ``items`` in the background, after those submitted before."""
    global _executor
    if not items:
        return None
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD)
        future = _executor.submit(_write, items, store_url, artifacts_url, pinned)
        _pending.append(future)
    return future


def write_now(items: list[Item], store_url: str, artifacts_url: str, *, pinned: bool = False) -> list[str]:
    """Write the snapshots of ``items`` in this thread; return notes on those not written."""
    return _write(items, store_url, artifacts_url, pinned, report=False)


def _write(items: list[Item], store_url: str, artifacts_url: str, pinned: bool, report: bool = True) -> list[str]:
    from ..errors import MlopsError
    from ..fingerprint import fingerprint
    from ..store import get_store
    from .storage import write_snapshot

    notes = []
    try:
        store = get_store(store_url, artifacts_url)
    except MlopsError as exc:
        notes.append(f"mlops: data snapshots of {len(items)} version(s) not stored: {exc}")
        items = []
    for item in items:
        name, digest = item.record["name"], item.record["digest"]
        try:
            if fingerprint(item.obj) != digest:  # a file changed since, or an object changed in place
                notes.append(f"mlops: data {name} not snapshotted: it changed after the run recorded it.")
                continue
            version = {k: item.record.get(k) for k in ("kind", "shape", "schema", "profile")}
            write_snapshot(item.obj, digest, store, version=version, pinned=pinned)
        except MlopsError as exc:
            notes.append(f"mlops: data {name} not snapshotted: {exc}")
        except Exception as exc:  # never lose the run (recorded already) for its snapshot
            notes.append(f"mlops: data {name} not snapshotted ({type(exc).__name__}: {exc}).")
    if report:
        with _lock:
            _notes.extend(notes)
    return notes


def wait() -> None:
    """Until every snapshot submitted by this process is written; print what was not."""
    if threading.current_thread().name.startswith(THREAD):
        return
    with _lock:
        pending = list(_pending)
        _pending.clear()
    for future in pending:
        try:
            future.result()
        except Exception as exc:  # _write catches its own; this is a bug, still worth a line
            print(f"mlops: a data snapshot failed: {exc}", file=sys.stderr)
    report()


def report() -> None:
    with _lock:
        lines, _notes[:] = list(_notes), []
    for line in lines:
        print(line, file=sys.stderr)


atexit.register(wait)
add_read_barrier(wait)
