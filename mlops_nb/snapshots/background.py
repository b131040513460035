"""Snapshots written off the cell's critical path, by one thread of the process that tracked them.

A tracked run hands over copies of its data (see :mod:`.policy`) and the cell ends; the
thread writes their chunks. In a script it records them in the registry too; in a kernel
it hands the record (a plain message) to ``send``, the kernel's recorder, so that the kernel
never opens the database (and the record waits in the spool like a run's when the registry
is down). Reads of the registry in this process wait for the thread first (a read barrier),
and so does interpreter exit. What could not be snapshotted is said on stderr, under the
next cell.
"""

from __future__ import annotations

import atexit
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..store.hooks import add_read_barrier
from .policy import Item

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_pending: list[Future] = []
_notes: list[str] = []
THREAD = "mlops-snapshots"


#: Data versions this process uploaded for its recorder: not encoded again by later runs.
_uploaded: set[str] = set()


def submit(items: list[Item], store_url: str, artifacts_url: str, *, pinned: bool = False,
           send: Callable[[dict[str, Any], str], None] | None = None) -> Future | None:  # fmt: skip
    """Write the snapshots of ``items`` in the background, after those submitted before.

    ``send(message, what)``: hand each record to another writer (the kernel's recorder)
    instead of opening the registry here.
    """
    global _executor
    if not items:
        return None
    work = _write if send is None else _upload
    args = (items, store_url, artifacts_url, pinned) if send is None else (items, store_url, artifacts_url, send)
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD)
        future = _executor.submit(work, *args)
        _pending.append(future)
    return future


def _upload(items: list[Item], store_url: str, artifacts_url: str, send: Callable[[dict[str, Any], str], None]) -> None:
    """Chunks to the artifact store from here, records to ``send`` (no database in this process)."""
    from ..store.artifacts import ArtifactStore
    from .storage import upload_snapshot

    artifacts = ArtifactStore(artifacts_url)

    def upload(item: Item, version: dict[str, Any]) -> None:
        digest = item.record["digest"]
        row, chunks = upload_snapshot(item.obj, digest, artifacts)
        send({"op": "snapshot", "store": store_url, "artifacts": artifacts_url, "row": row, "chunks": chunks,
              "version": version}, f"snapshot of {item.record['name']}")  # fmt: skip
        _uploaded.add(digest)

    _keep(_each([i for i in items if i.record["digest"] not in _uploaded], upload))


def write_now(items: list[Item], store_url: str, artifacts_url: str, *, pinned: bool = False) -> list[str]:
    """Write the snapshots of ``items`` in this thread; return notes on those not written."""
    return _write(items, store_url, artifacts_url, pinned, report=False)


def _write(items: list[Item], store_url: str, artifacts_url: str, pinned: bool, report: bool = True) -> list[str]:
    """Chunks and records both from here (a script, or a kernel writing in its own process)."""
    from ..errors import MlopsError
    from ..store import get_store
    from .storage import write_snapshot

    try:
        store = get_store(store_url, artifacts_url)
    except MlopsError as exc:
        notes = [f"mlops: data snapshots of {len(items)} version(s) not stored: {exc}"]
    else:
        notes = _each(items, lambda item, version: write_snapshot(item.obj, item.record["digest"], store,
                                                                  version=version, pinned=pinned))  # fmt: skip
    if report:
        _keep(notes)
    return notes


def _each(items: list[Item], store_one: Callable[[Item, dict[str, Any]], None]) -> list[str]:
    """``store_one(item, version record)`` for each item still holding its recorded version;
    returns a note for each one not snapshotted (never an exception: the run is recorded already)."""
    from ..errors import MlopsError
    from ..fingerprint import fingerprint

    notes = []
    for item in items:
        name = item.record["name"]
        try:
            # the copy is of the object as the cell left it: an input the cell changed in place,
            # or a file changed on disk since, is no longer the version the run recorded
            if fingerprint(item.obj) != item.record["digest"]:
                notes.append(f"mlops: data {name} not snapshotted: it changed after the run recorded it.")
                continue
            store_one(item, {k: item.record.get(k) for k in ("kind", "shape", "schema", "profile")})
        except MlopsError as exc:
            notes.append(f"mlops: data {name} not snapshotted: {exc}")
        except Exception as exc:
            notes.append(f"mlops: data {name} not snapshotted ({type(exc).__name__}: {exc}).")
    return notes


def _keep(notes: list[str]) -> None:
    with _lock:
        _notes.extend(notes)


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


def take_notes() -> list[str]:
    """What the snapshot thread could not do so far (each said once)."""
    with _lock:
        lines, _notes[:] = list(_notes), []
    return lines


def report() -> None:
    for line in take_notes():
        print(line, file=sys.stderr)


atexit.register(wait)
add_read_barrier(wait)
