"""WAL checkpoints of a SQLite registry run in a thread of their own, not inside a run's commit."""

from __future__ import annotations

import os
import threading
import sqlite3
import uuid

import mlops_nb
from mlops_nb.store import checkpoints, get_store
from waiting import wait_for


def _track(n: int) -> None:
    for i in range(n):
        with mlops_nb.track(name=f"r{i}") as run:
            run.log_params({f"p{j}": j * i for j in range(20)})
            for j in range(20):
                run.log_metric(f"m{j}", j / (i + 1))


def test_runs_reach_the_database_file_through_the_checkpoint_thread(mlops_home):
    """Far below the writers' own autocheckpoint, the thread copies the log into the database file."""
    store = get_store()
    database = store.engine.url.database
    with store.engine.connect() as conn:  # the writers' bound, far above what these runs write
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == checkpoints.BACKSTOP_PAGES
    _track(1)
    size_before = os.path.getsize(database)
    _track(checkpoints.EVERY * 2)
    assert os.path.getsize(f"{database}-wal") < checkpoints.BACKSTOP_PAGES * 4096
    assert wait_for(lambda: checkpoints.checkpoints_run(store.engine) >= 1), "the checkpoint thread never ran"
    # The database file itself now holds the runs: only a checkpoint moves pages out of the log.
    assert wait_for(lambda: os.path.getsize(database) > size_before)
    copied = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        assert copied.execute("SELECT count(*) FROM runs").fetchone()[0] == 1 + checkpoints.EVERY * 2
    finally:
        copied.close()
    names = {t.name for t in threading.enumerate()}
    assert "mlops_nb-wal-checkpoint" in names


def test_a_forked_child_checkpoints_with_a_thread_of_its_own(mlops_home):
    """The parent's thread does not survive fork: the child's writes start the child's own."""
    store = get_store()
    _track(checkpoints.EVERY)  # the parent's thread exists now
    assert wait_for(lambda: checkpoints.checkpoints_run(store.engine) >= 1)
    pid = os.fork()
    if pid == 0:  # the child: a store of its own on the same file, as a warm server's child opens one
        code = 1
        try:
            from mlops_nb.store import clear_cache

            clear_cache()
            child_store = get_store()
            for _ in range(checkpoints.EVERY):
                child_store.start_run(uuid.uuid4().hex, "p", name="child")
            code = 0 if wait_for(lambda: checkpoints.checkpoints_run(child_store.engine) >= 1, 10) else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child's writes never woke a checkpoint thread of its own"
