"""WAL checkpoints of a SQLite registry, run beside the writers instead of inside their commits.

In WAL mode SQLite copies its log back into the database file (a checkpoint) inside whichever
commit crosses ``wal_autocheckpoint`` pages, and that commit pays the checkpoint's writes and
fsyncs: on this project's 2-core machine one ``track()`` in 15-35 took 6 ms instead of 0.8 ms, a
third of a run's average cost.  SQLite's documentation suggests the remedy used here: run the
checkpoints in a separate thread.

Every :data:`EVERY` write transactions on a database, :func:`after_write` wakes this process's
checkpoint thread for it, which runs a ``PASSIVE`` checkpoint on a connection of its own: that
copies what no reader still needs and never blocks a reader or a writer.  The writers' own
autocheckpoint stays on at :data:`BACKSTOP_PAGES`, so the log stays bounded should the thread
fall behind.  A forked child (a warm server's, a spare recorder's) gets a thread of its own on
its first wake.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time

from sqlalchemy import Engine

#: Write transactions between two wakes of the thread.  A run's transaction writes 10-20 pages,
#: so this checkpoints about as often as SQLite's default of 1,000 pages would.
EVERY = 32
#: The writers' own ``wal_autocheckpoint``: the bound should the thread fall behind.
BACKSTOP_PAGES = 10_000
#: The least time between two checkpoints (a long reader can keep one from finishing).
_PAUSE_S = 0.05

_lock = threading.Lock()
_databases: dict[tuple[int, str], _Checkpointer] = {}


class _Checkpointer:
    """The commits counted on one database file in this process, and its checkpoint thread."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.commits = 0
        self.done = 0  # checkpoints run
        self.wanted = threading.Event()
        self.thread: threading.Thread | None = None

    def wake(self) -> None:
        if self.thread is None:
            with _lock:
                if self.thread is None:
                    self.thread = threading.Thread(target=self._loop, name="mlops_nb-wal-checkpoint", daemon=True)
                    self.thread.start()
        self.wanted.set()

    def _loop(self) -> None:
        while True:
            self.wanted.wait()
            self.wanted.clear()
            try:
                # A connection of its own, closed at once: nothing (no engine, no pooled connection, no
                # file handle) outlives the checkpoint, whatever becomes of the store that wrote.
                conn = sqlite3.connect(self.database, isolation_level=None)
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                finally:
                    conn.close()
                self.done += 1
            except Exception:  # only a speed-up: the writers' backstop checkpoints regardless
                pass
            time.sleep(_PAUSE_S)


def _database(engine: Engine) -> str | None:
    """The SQLite file of ``engine``, or None for other databases and in-memory ones."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def after_write(engine: Engine) -> None:
    """Count a committed write transaction on ``engine``; every :data:`EVERY`, wake the checkpoint thread."""
    database = _database(engine)
    if database is None:
        return
    key = (os.getpid(), database)
    checkpointer = _databases.get(key)
    if checkpointer is None:
        with _lock:
            checkpointer = _databases.setdefault(key, _Checkpointer(database))
    checkpointer.commits += 1
    if checkpointer.commits % EVERY == 0:
        checkpointer.wake()


def checkpoints_run(engine: Engine) -> int:
    """How many checkpoints this process's thread has run on ``engine``'s database."""
    database = _database(engine)
    checkpointer = _databases.get((os.getpid(), database or ""))
    return 0 if checkpointer is None else checkpointer.done
