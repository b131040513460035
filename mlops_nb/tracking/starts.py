"""Runs tracked in this process become visible to other processes after ``DELAY_S``, not at once.

Most runs of a script last milliseconds: writing their start row and then
their record costs two transactions where one does.  So the start of a run
waits here; a run that ends first is written whole, in one transaction, and
a run still going after ``DELAY_S`` gets its start row then (from a
background thread), so that others can see it running.  Reads in this
process never miss a run: every connection the store opens first writes the
starts that wait (a read barrier, see :mod:`mlops_nb.store.hooks`), and
:func:`mlops_nb.sync` does too.
"""

from __future__ import annotations

import heapq
import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .run import Run

#: How long a run may go unseen by other processes.
DELAY_S = 1.0

_lock = threading.Condition()
_waiting: dict[str, Run] = {}  # run id -> run whose start waits
_due: list[tuple[float, str]] = []  # (deadline, run id), a heap
_thread: threading.Thread | None = None
_flushing = threading.local()


def schedule(run: Run) -> None:
    """Write ``run``'s start after :data:`DELAY_S`, unless it ends (or someone reads) first."""
    global _thread
    with _lock:
        if _thread is None:
            from ..store.hooks import add_read_barrier

            add_read_barrier(flush)
            _thread = threading.Thread(target=_work, name="mlops-run-starts", daemon=True)
            _thread.start()
        _waiting[run.id] = run
        if not _due:  # deadlines only grow: the thread needs waking only when it has none
            _lock.notify()
        heapq.heappush(_due, (time.monotonic() + DELAY_S, run.id))


def cancel(run: Run) -> bool:
    """Take ``run``'s start back (it is ending); True when it was still waiting here."""
    with _lock:
        return _waiting.pop(run.id, None) is not None


def flush() -> None:
    """Write every start that waits, now (before this process reads the store)."""
    if getattr(_flushing, "active", False):
        return  # writing a start opens a connection, which calls this barrier again
    with _lock:
        runs = list(_waiting.values())
        _waiting.clear()
    _write(runs)


def _work() -> None:
    while True:
        with _lock:
            while not _due or _due[0][0] > time.monotonic():
                _lock.wait(None if not _due else max(0.0, _due[0][0] - time.monotonic()))
            _, run_id = heapq.heappop(_due)
            run = _waiting.pop(run_id, None)
        if run is not None:
            _write([run])


def _write(runs: list[Run]) -> None:
    _flushing.active = True
    try:
        for run in runs:
            try:
                run.write_start()
            except Exception as exc:  # never kill the thread: the run's finish carries its start anyway
                print(f"mlops: the start of run {run.id[:8]} waits for its end: {exc}", file=sys.stderr)
    finally:
        _flushing.active = False
