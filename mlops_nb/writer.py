"""Writing tracked runs off the cell's critical path.

Inside a Jupyter kernel, a tracked cell's store writes (the run's start row
with git state, the model artifacts, the final transaction) go to one
background thread, in order.  Nothing in the kernel can observe the store
before they are done: the next cell's ``pre_run_cell`` waits for them
(:func:`flush`), and so does interpreter exit (``concurrent.futures`` joins its
worker threads then; :func:`flush` is also registered with ``atexit``).  A run
is marked finished only by its final transaction, so a kernel killed
mid-write leaves it ``running``, never half-finished.

Elsewhere (a plain IPython shell driven by a script or test, which may read
the store right after ``run_cell`` returns) writes stay synchronous.
``MLOPS_NB_BACKGROUND_WRITES=0|1`` overrides the choice.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

_executor: ThreadPoolExecutor | None = None
_futures: list[tuple[Future, str]] = []
_notes: list[str] = []
_lock = threading.Lock()


def background_writes(shell) -> bool:
    """Whether runs of ``shell`` are written in the background (a Jupyter kernel, unless overridden)."""
    choice = os.environ.get("MLOPS_NB_BACKGROUND_WRITES", "").strip().lower()
    if choice in {"0", "false", "no", "off"}:
        return False
    if choice in {"1", "true", "yes", "on"}:
        return True
    return getattr(shell, "kernel", None) is not None  # ipykernel's ZMQInteractiveShell


def submit(work: Callable[[], object], what: str) -> None:
    """Queue ``work`` (run in order, one at a time); ``what`` names it in an error message."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlops-writer")
        _futures.append((_executor.submit(work), what))


def note(message: str) -> None:
    """A message from the writer thread, printed by the next :func:`flush` (in the user's cell)."""
    with _lock:
        _notes.append(message)


def flush() -> None:
    """Wait for every queued write; report (on stderr) those that failed."""
    if not _futures and not _notes:
        return
    with _lock:
        pending = list(_futures)
        _futures.clear()
    for future, what in pending:
        try:
            future.result()
        except Exception as exc:  # the cell already ran; say what was not recorded
            print(f"mlops: {what} could not be recorded: {exc}", file=sys.stderr)
    with _lock:
        notes = list(_notes)
        _notes.clear()
    for message in notes:
        print(message, file=sys.stderr)


atexit.register(flush)
