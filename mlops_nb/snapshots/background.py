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
import contextlib
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..store.hooks import add_read_barrier
from .policy import Item

#: ``later(message, what, exc)``: keeps a copy the stores did not take (see :func:`submit`).
Later = Callable[[dict[str, Any], str, BaseException], "str | None"]

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_pending: list[Future] = []
_notes: list[str] = []
THREAD = "mlops-snapshots"


#: Data versions this process uploaded for its recorder: not encoded again by later runs.
_uploaded: set[str] = set()



#: A file input bigger than this is not copied into the spool when its snapshot cannot be stored now
#: (a note says so): the spool has a size cap, and the file itself is still on disk.
MAX_KEPT_FILE = 256 * 1024**2


@contextlib.contextmanager
def thawed(data: Any) -> Iterator[Any]:
    """What a kept ``snapshot_data`` record's ``data`` is snapshotted from: the object itself, or for a file
    kept as its bytes, a temporary file of the same name holding them (its fingerprint is the recorded one)."""
    if not (isinstance(data, dict) and "file" in data):
        yield data
        return
    with tempfile.TemporaryDirectory(prefix="mlops-spooled-file-") as folder:
        path = Path(folder) / data["file"]
        path.write_bytes(data["bytes"])
        yield path

def submit(items: list[Item], store_url: str, artifacts_url: str, *, pinned: bool = False,
           send: Callable[[dict[str, Any], str], None] | None = None, later: Later | None = None) -> Future | None:  # fmt: skip
    """Write the snapshots of ``items`` in the background, after those submitted before.

    ``send(message, what)``: hand each record to another writer (the kernel's recorder)
    instead of opening the registry here. ``later(message, what, exc)``: offered the
    record of a copy (op ``snapshot_data``) a store did not take because of ``exc``; it
    returns a note when it keeps it for later (the local spool), None when it does not.
    """
    global _executor
    if not items:
        return None
    work = _write if send is None else _upload
    args = (items, store_url, artifacts_url, pinned, True, later) if send is None else (items, store_url, artifacts_url, send, later)
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD)
        future = _executor.submit(work, *args)
        _pending.append(future)
    return future


def _upload(items: list[Item], store_url: str, artifacts_url: str, send: Callable[[dict[str, Any], str], None],
            later: Later | None = None) -> None:  # fmt: skip
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

    keep = _keeper(later, store_url, artifacts_url, False)
    _keep(_each([i for i in items if i.record["digest"] not in _uploaded], upload, keep))


def write_now(items: list[Item], store_url: str, artifacts_url: str, *, pinned: bool = False) -> list[str]:
    """Write the snapshots of ``items`` in this thread; return notes on those not written."""
    return _write(items, store_url, artifacts_url, pinned, report=False)


def _write(items: list[Item], store_url: str, artifacts_url: str, pinned: bool, report: bool = True,
           later: Later | None = None) -> list[str]:  # fmt: skip
    """Chunks and records both from here (a script, or a kernel writing in its own process)."""
    from ..errors import MlopsError
    from ..store import get_store
    from .storage import write_snapshot

    keep = _keeper(later, store_url, artifacts_url, pinned)
    try:
        store = get_store(store_url, artifacts_url)
    except MlopsError as exc:
        failed = exc
        if keep is None:
            notes = [f"mlops: data snapshots of {len(items)} version(s) not stored: {exc}"]
        else:  # the registry does not answer: each copy is offered to wait for it
            notes = _each(items, lambda item, version: _raise(failed), keep)
    else:
        notes = _each(items, lambda item, version: write_snapshot(item.obj, item.record["digest"], store,
                                                                  version=version, pinned=pinned), keep)  # fmt: skip
    if report:
        _keep(notes)
    return notes


def _raise(exc: BaseException) -> None:
    raise exc


def _keeper(later: Later | None, store_url: str, artifacts_url: str, pinned: bool):
    """``keep(item, version, exc)`` for :func:`_each`: the copy's record offered to ``later``."""
    if later is None:
        return None

    def keep(item: Item, version: dict[str, Any], exc: BaseException) -> str | None:
        data = item.obj
        if version["kind"] == "file":  # its bytes now: the file may change on disk before the registry answers
            path = Path(item.obj)
            if path.stat().st_size > MAX_KEPT_FILE:
                return None
            data = {"file": path.name, "bytes": path.read_bytes()}
        message = {"op": "snapshot_data", "store": store_url, "artifacts": artifacts_url, "digest": item.record["digest"],
                   "data": data, "version": version, "pinned": pinned}  # fmt: skip
        return later(message, f"snapshot of {item.record['name']}", exc)

    return keep


def _each(
    items: list[Item],
    store_one: Callable[[Item, dict[str, Any]], None],
    keep: Callable[[Item, dict[str, Any], BaseException], str | None] | None = None,
) -> list[str]:
    """``store_one(item, version record)`` for each item still holding its recorded version;
    returns a note for each one not snapshotted (never an exception: the run is recorded already).

    ``keep(item, version, exc)``: offered a copy ``store_one`` failed on; a note (maybe empty)
    when it keeps it for later, None when not. A file is kept as its bytes (up to :data:`MAX_KEPT_FILE`).
    """
    from ..errors import MlopsError
    from ..fingerprint import fingerprint

    notes = []
    for item in items:
        name = item.record["name"]
        version = {k: item.record.get(k) for k in ("kind", "shape", "schema", "profile")}
        try:
            # the copy is of the object as the cell left it: an input the cell changed in place,
            # or a file changed on disk since, is no longer the version the run recorded
            if fingerprint(item.obj) != item.record["digest"]:
                notes.append(f"mlops: data {name} not snapshotted: it changed after the run recorded it.")
                continue
            store_one(item, version)
        except Exception as exc:
            kept = None
            if keep is not None:
                try:
                    kept = keep(item, version, exc)
                except MlopsError as error:  # the spool could not keep it either (full, disk full)
                    exc = error
            if kept is None:
                notes.append(_failed(name, exc))
            elif kept:  # "": kept, and said by whoever keeps it
                notes.append(kept)
    return notes


def _failed(name: str, exc: BaseException) -> str:
    from ..errors import MlopsError

    if isinstance(exc, MlopsError):
        return f"mlops: data {name} not snapshotted: {exc}"
    return f"mlops: data {name} not snapshotted ({type(exc).__name__}: {exc})."


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
# Also before the interpreter's shutdown starts refusing new thread pools (pyarrow's from_pandas
# uses one): from atexit alone, a script's last run lost its snapshot ("cannot schedule new
# futures after interpreter shutdown"). Registered after concurrent.futures, so called before it.
try:
    getattr(threading, "_register_atexit", atexit.register)(wait)
except RuntimeError:  # first imported while the interpreter is shutting down: atexit has it
    pass
add_read_barrier(wait)
