"""The local spool: records the registry could not take wait here, on disk, and are replayed in order.

A run record (:mod:`.records`) that cannot be written because the registry
database or the artifact store does not answer (a restart, a failover, a
dropped VPN, expired credentials) is appended to a spool file beside the
user's home instead of being lost: one SQLite file per store URL, written
with ``synchronous=FULL`` (each append is on disk before the cell's summary
says "queued").  Model bytes travel inside the record, so an artifact that
could not be uploaded waits with it and is uploaded before the run that
references it is marked finished.

Records are replayed oldest first, exactly once in effect: a record's run id
is its key and :func:`.records.apply` with ``replay=True`` leaves alone what
is already in the store, so a replay after a write whose acknowledgement was
lost adds nothing.  While a store has records waiting, new records for it
queue behind them, so the store always sees a kernel's records in order.

Replays happen by themselves: in the recorder (before each record, and
every few seconds while records wait), at ``%load_ext``, at the start of any
``mlops-nb`` command and by ``mlops-nb sync`` / ``mlops_nb.sync()``.

``MLOPS_NB_SPOOL_DIR`` moves the folder (default ``~/.mlops_nb/spool``);
``MLOPS_NB_SPOOL_MAX`` caps each spool (bytes, suffixes K/M/G; default 2G).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pickle
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SpoolError

if TYPE_CHECKING:
    import sqlite3

DEFAULT_MAX = 2 * 1024**3


@dataclass
class Waiting:
    """What one spool holds: ``count`` records (``runs`` distinct runs) of ``bytes`` size, since ``oldest``."""

    store: str
    count: int
    runs: int
    bytes: int
    oldest: float | None
    reason: str | None

    def line(self) -> str:
        """What waits and why, in one line (``status`` and ``%mlops status``)."""
        age = time.time() - self.oldest if self.oldest else 0.0
        return (
            f"{self.store}: {self.count} record(s) of {self.runs} run(s), {self.bytes / 1e6:.2f} MB, "
            f"oldest {age:.0f} s ago, waiting because: {self.reason}"
        )


def folder() -> Path:
    """Where spool files live (``MLOPS_NB_SPOOL_DIR``, else ``~/.mlops_nb/spool``)."""
    return Path(os.environ.get("MLOPS_NB_SPOOL_DIR") or Path.home() / ".mlops_nb" / "spool").expanduser()


def spool_path(store_url: str) -> Path:
    """The spool file of ``store_url`` (whether or not it exists)."""
    return _spool_path(os.environ.get("MLOPS_NB_SPOOL_DIR"), os.environ.get("HOME"), store_url)


@functools.lru_cache(maxsize=64)
def _spool_path(_spool_dir: str | None, _home: str | None, store_url: str) -> Path:
    # Asked before every record is written: the answer depends only on the arguments.
    return folder() / f"{hashlib.sha256(store_url.encode()).hexdigest()[:24]}.db"


def max_bytes() -> int:
    """The size cap of one spool, from ``MLOPS_NB_SPOOL_MAX``."""
    text = os.environ.get("MLOPS_NB_SPOOL_MAX", "").strip().upper()
    if not text:
        return DEFAULT_MAX
    scale = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1], 1)
    try:
        return int(float(text.rstrip("KMGB") or "x") * scale)
    except ValueError:
        raise SpoolError(
            f"MLOPS_NB_SPOOL_MAX={os.environ['MLOPS_NB_SPOOL_MAX']!r} is not a size: use bytes or a number with K, M or G (e.g. 500M).",
            setting="MLOPS_NB_SPOOL_MAX",
        ) from None


def has_waiting(store_url: str) -> bool:
    """Whether ``store_url`` has records waiting: a ``stat``, and a read-only query when a spool exists.

    Exact (never cached): whether a new record may go straight to the store depends on it.
    """
    return _last_reason(spool_path(store_url)) is not None


# path -> (the spool files' stat signature, the reason read then): a tracked cell's summary asks
# every time, and the answer only changes when a write to the spool changes the files.
_reasons: dict[Path, tuple[tuple, str | None]] = {}


def waiting_reason(store_url: str) -> str | None:
    """Why records wait for ``store_url`` (the last failure), or None when nothing waits; for display.

    Two ``stat`` calls when the spool files have not changed since the last
    call in this process, a read-only query otherwise.  A write within the
    file system's timestamp granularity may be seen one call late: use
    :func:`has_waiting` where order depends on the answer.
    """
    path = spool_path(store_url)
    signature = _signature(path)
    if signature is None:
        return None
    known = _reasons.get(path)
    if known is None or known[0] != signature:
        known = _reasons[path] = (signature, _last_reason(path))
    return known[1]


def _last_reason(path: Path) -> str | None:
    rows = _read(path, "SELECT reason FROM records ORDER BY seq DESC LIMIT 1")
    return None if not rows else (rows[0][0] or "unknown")


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the registry or its artifact store could not be reached or written.

    Such a record is worth keeping for later; a record the store refuses for
    what it is (an unknown schema, a bad value) would be refused again.
    """
    from ..errors import (
        ArtifactError, ConfigError, IntegrityError, PermissionDenied, SchemaVersionError, StoreDamaged, StoreError,
    )  # fmt: skip

    # A damaged registry or artifact, a newer schema, a bad URL, a role the database refuses: waiting
    # does not mend them, and the user must hear of them now, not find runs quietly queued.
    if isinstance(exc, (SchemaVersionError, StoreDamaged, ConfigError, IntegrityError, PermissionDenied)):
        return False
    if isinstance(exc, (StoreError, ArtifactError, OSError, ConnectionError, TimeoutError)):
        return True
    return type(exc).__module__.split(".")[0] in {"sqlalchemy", "psycopg", "psycopg2", "botocore", "aiohttp", "s3fs"}


def reason_text(exc: BaseException) -> str:
    """One short line for what made a store unreachable."""
    fields = getattr(exc, "fields", None) or {}
    text = str(fields.get("cause") or exc).split(". Check that", 1)[0].strip() or type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:197] + "..."


def append(message: Mapping[str, Any], reason: str, what: str = "a record") -> None:
    """Keep ``message`` for its store, after everything already waiting there.

    Raises :class:`SpoolError` (one clear line) when the spool is full or the
    disk refuses the write; the caller says so, and the cell still runs.
    """
    import sqlite3

    body = pickle.dumps(_portable(message), protocol=pickle.HIGHEST_PROTOCOL)
    path = spool_path(message["store"])
    cap = max_bytes()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _open(path) as db:
            used = db.execute("SELECT COALESCE(SUM(size), 0) FROM records").fetchone()[0]
            if used + len(body) > cap:
                raise SpoolError(
                    f"{what} could not be kept: the local spool for {message['store']} is full "
                    f"({used / 1e6:.1f} MB waiting, cap {cap / 1e6:.0f} MB, MLOPS_NB_SPOOL_MAX). Nothing was dropped "
                    "from it: bring the registry back and run `mlops-nb sync`, or raise MLOPS_NB_SPOOL_MAX.",
                    store=message["store"], used=used, cap=cap,
                )  # fmt: skip
            db.execute(
                "INSERT INTO records (run_id, op, what, store, reason, created, size, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (message.get("run_id"), message.get("op"), what, message["store"], reason, time.time(), len(body), body),
            )
    except (sqlite3.Error, OSError) as exc:
        raise SpoolError(_disk_text(what, path, exc, len(body)), path=str(path)) from None


def _portable(message: Mapping[str, Any]) -> dict[str, Any]:
    """``message`` with live model objects turned into bytes: any process may replay a spooled record."""
    out = dict(message)
    if any("object" in entry for entry in out.get("models") or ()):
        from .records import model_entry

        out["models"] = [
            model_entry({k: v for k, v in entry.items() if k != "object"}, entry["object"], snapshot=True)
            if "object" in entry else entry
            for entry in out["models"]
        ]  # fmt: skip
    return out


def replay(store_url: str, *, store=None) -> tuple[int, str | None]:
    """Write what waits for ``store_url``, oldest first; return (records written, why it stopped or None).

    Returns at once when nothing waits.  One replayer at a time per spool (a
    file lock); the others return at once.  A record is deleted only after the
    store has it.
    """
    from .records import apply

    if not has_waiting(store_url):
        return 0, None
    path = spool_path(store_url)
    written = 0
    with _exclusive(path) as mine:
        if not mine:
            return 0, "another process is replaying"
        while True:
            with _open(path) as db:
                row = db.execute("SELECT seq, body FROM records ORDER BY seq LIMIT 1").fetchone()
            if row is None:
                if written:
                    _reclaim(path)
                return written, None
            seq, body = row
            try:
                apply(pickle.loads(body), store=store, replay=True)
            except Exception as exc:
                if unreachable(exc):
                    with _open(path) as db:
                        db.execute("UPDATE records SET reason = ?, attempts = attempts + 1 WHERE seq = ?", (reason_text(exc), seq))
                    return written, reason_text(exc)
                # The store answers but refuses this record: set it aside, never block the rest.
                with _open(path) as db:
                    db.execute(
                        "INSERT INTO refused (seq, run_id, what, store, reason, created, body) "
                        "SELECT seq, run_id, what, store, ?, created, body FROM records WHERE seq = ?",
                        (f"{type(exc).__name__}: {exc}", seq),
                    )
                    db.execute("DELETE FROM records WHERE seq = ?", (seq,))
                continue
            with _open(path) as db:
                db.execute("DELETE FROM records WHERE seq = ?", (seq,))
            written += 1


def waiting(store_url: str | None = None) -> list[Waiting]:
    """What every spool (or the one of ``store_url``) holds, for ``status``."""
    paths = [spool_path(store_url)] if store_url else sorted(folder().glob("*.db"))
    found = []
    for path in paths:
        rows = _read(
            path,
            "SELECT COUNT(*), COUNT(DISTINCT run_id), COALESCE(SUM(size), 0), MIN(created), "
            "(SELECT store FROM records ORDER BY seq DESC LIMIT 1), "
            "(SELECT reason FROM records ORDER BY seq DESC LIMIT 1) FROM records",
        )
        if rows and rows[0][0]:
            count, runs, size, oldest, store, reason = rows[0]
            found.append(Waiting(store, count, runs, size, oldest, reason))
    return found


def waiting_text(store_url: str) -> str | None:
    """One line saying how many records of this machine are not in ``store_url`` yet, and why; None when none wait.

    A ``stat`` when nothing waits: reads and panels ask every time.
    """
    found = waiting(store_url) if has_waiting(store_url) else []
    if not found:
        return None
    return (
        f"{found[0].count} local record(s) of {found[0].runs} run(s) are not in the registry yet "
        f"(registry unreachable: {found[0].reason}); they are written when it answers (mlops-nb status)"
    )


def note_waiting(store_url: str) -> str | None:
    """Say on stderr, once per read, that records of this machine are not in ``store_url`` yet."""
    text = waiting_text(store_url)
    if text is None:
        return None
    text = f"mlops: {text}"
    print(text, file=sys.stderr)
    return text


def refused(store_url: str) -> list[dict[str, Any]]:
    """Records the store refused on replay (kept, never dropped), oldest first."""
    rows = _read(spool_path(store_url), "SELECT seq, run_id, what, reason, created FROM refused ORDER BY seq")
    return [dict(zip(("seq", "run_id", "what", "reason", "created"), r)) for r in rows]


def later_for(send=None):
    """``later(message, what, exc)`` for :func:`mlops_nb.snapshots.background.submit`: a data copy a
    store did not take waits in the spool (through ``send``, the kernel's recorder, when given) if
    ``exc`` says a store could not be reached; returns the note saying so ("" when the recorder
    says it), None otherwise."""

    def later(message: Mapping[str, Any], what: str, exc: BaseException) -> str | None:
        if not unreachable(exc):
            return None
        why = reason_text(exc)
        if send is not None:  # the recorder tries the stores once more, then keeps it and says so
            send(message, what)
            return ""
        append(message, why, what)
        return f"mlops: {what} could not be stored now ({why}); it waits in the local spool and is stored when the store answers."

    return later


def deliver(
    message: Mapping[str, Any], *, store=None, what: str = "a record", replay_safe: bool = False
) -> tuple[list[str], str | None]:
    """Write ``message`` now, or keep it in the spool when the store cannot take it.

    Returns (notes from the write, None) once it is in the store, or
    ([], reason) when it waits in the spool.  Records already waiting for the
    same store go first.  Raises :class:`SpoolError` when it could be neither
    written nor kept.  ``replay_safe``: the record may be in the store already
    (its first writer died before confirming it).
    """
    from .records import apply

    _, why = replay(message["store"], store=store)  # what waits goes first
    if message["op"] == "replay":
        return [], why
    if why is None:
        try:
            return apply(message, store=store, replay=replay_safe), None
        except Exception as exc:
            if not unreachable(exc):
                raise
            why = reason_text(exc)
    append(message, why, what)
    return [], why


# ---- the file ---------------------------------------------------------------------------
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, op TEXT, what TEXT, store TEXT NOT NULL,
    reason TEXT, created REAL NOT NULL, size INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS refused (
    seq INTEGER PRIMARY KEY, run_id TEXT, what TEXT, store TEXT, reason TEXT, created REAL, body BLOB
);
"""


_created: set[Path] = set()  # spool files whose tables this process has made sure of


@contextlib.contextmanager
def _open(path: Path) -> Iterator[sqlite3.Connection]:
    """One write transaction on the spool at ``path`` (created if missing)."""
    import sqlite3

    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous=FULL")  # an append is on disk before anyone is told "queued"
        if path not in _created:
            db.execute("PRAGMA journal_mode=WAL")  # kept by the file once set
            db.executescript(_SCHEMA)
            _created.add(path)
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    finally:
        db.close()


_RECLAIM_AT = 1024**2  # free bytes in a drained spool file worth giving back to the disk


def _reclaim(path: Path) -> None:
    """Give the disk back once the queue is drained: a spooled model's bytes leave free pages behind.

    Best effort: when another process holds the file, the next drain does it.
    """
    import sqlite3

    try:
        db = sqlite3.connect(path, timeout=1, isolation_level=None)
        try:
            pages, size = db.execute("PRAGMA freelist_count").fetchone()[0], db.execute("PRAGMA page_size").fetchone()[0]
            if pages * size >= _RECLAIM_AT:
                db.execute("VACUUM")
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # in WAL mode the shrink lands at the checkpoint
        finally:
            db.close()
    except sqlite3.Error:
        pass


def _read(path: Path, query: str) -> list[tuple]:
    """Rows of a read-only ``query`` on the spool at ``path``; none when it does not exist (yet)."""
    if not path.exists():
        return []
    import sqlite3  # here, not at import: a kernel without a spool never loads it
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute(query).fetchall()
        finally:
            db.close()
    except sqlite3.Error:  # being created by another process: nothing in it yet
        return []


def _signature(path: Path) -> tuple | None:
    """What changes whenever the spool at ``path`` is written (its file and its WAL); None without a spool."""
    try:
        main = os.stat(path)
    except FileNotFoundError:
        return None
    try:
        wal = os.stat(f"{path}-wal")
        wal_part = (wal.st_mtime_ns, wal.st_size)
    except FileNotFoundError:
        wal_part = None
    return (main.st_mtime_ns, main.st_size, wal_part)


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[bool]:
    import fcntl

    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _disk_text(what: str, path: Path, exc: BaseException, needed: int) -> str:
    import shutil

    cause = str(exc) or type(exc).__name__
    try:  # SQLite reports a full disk as "database or disk is full", or only as "disk I/O error"
        full = shutil.disk_usage(path.parent).free < needed + 1024**2
    except OSError:
        full = False
    if full or "full" in cause.lower() or getattr(exc, "errno", None) == 28:
        return (
            f"{what} could not be kept: the disk holding the local spool ({path.parent}) is full. "
            "Free space there or set MLOPS_NB_SPOOL_DIR to another disk; the cell itself ran."
        )
    return f"{what} could not be kept in the local spool {path}: {cause}. Set MLOPS_NB_SPOOL_DIR to a writable folder."
