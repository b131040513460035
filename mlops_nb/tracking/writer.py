"""Where a tracked run's writes happen: here and now, or off the cell's critical path.

Inside a Jupyter kernel a tracked cell's store writes (:mod:`mlops_nb.tracking.records`)
go to the recorder process (:mod:`mlops_nb.tracking.recorder`), in order.  Nothing in
the kernel can observe the store before they are done: every connection the
kernel opens to a registry first calls :func:`wait` (a read barrier registered
on the store), and so does interpreter
exit.  A run is marked finished only by its final transaction, so a write
that never happens leaves it ``running`` (then ``interrupted``), never
half-finished.  Where the recorder cannot run (an in-memory store, a failed
start) the writes go to one background thread instead.

Elsewhere (a plain IPython shell driven by a script or test) writes stay
synchronous.  ``MLOPS_NB_BACKGROUND_WRITES=0|1`` overrides the choice;
``MLOPS_NB_RECORDER=thread`` keeps background writes in the kernel's process.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..store.hooks import add_read_barrier

_lock = threading.Lock()
_recorder: Any = None  # mlops_nb.tracking.recorder.Recorder, started on first use
_executor: ThreadPoolExecutor | None = None
_futures: list[tuple[Future, str]] = []
_notes: list[str] = []


def background_writes(shell) -> bool:
    """Whether runs of ``shell`` are written in the background (a Jupyter kernel, unless overridden)."""
    choice = os.environ.get("MLOPS_NB_BACKGROUND_WRITES", "").strip().lower()
    if choice in {"0", "false", "no", "off"}:
        return False
    if choice in {"1", "true", "yes", "on"}:
        return True
    return getattr(shell, "kernel", None) is not None  # ipykernel's ZMQInteractiveShell


def prepare(shell) -> None:
    """Start the recorder for ``shell`` now (at ``%load_ext``), so it is ready by the first run.

    Records an earlier session left in the local spool are replayed by it now.
    """
    if background_writes(shell):
        from .. import config
        from .spool import has_waiting

        url = config.store_url()
        recorder = _recorder_for(url)
        if recorder is not None and has_waiting(url):
            recorder.send({"op": "replay", "store": url}, "records waiting in the local spool")


def submit(message: dict[str, Any], what: str) -> None:
    """Write the record ``message`` in the background, after those submitted before it."""
    recorder = _recorder_for(message["store"])
    if recorder is not None and recorder.send(message, what):
        return
    _in_thread(message, what)


def wait() -> None:
    """Until every record submitted by this process is in the store; report those that failed.

    Called before the kernel reads a store, and at exit.  A no-op on the
    writer's own thread and when nothing is pending.
    """
    if threading.current_thread().name.startswith("mlops-"):
        return
    recorder = _recorder
    if recorder is not None:
        recorder.wait()
        _replay(recorder)
    with _lock:
        pending = list(_futures)
        _futures.clear()
    for future, what in pending:
        try:
            future.result()
        except Exception as exc:  # the cell already ran; say what was not recorded
            print(f"mlops: {what} could not be recorded: {exc}", file=sys.stderr)
    report()


def report() -> None:
    """Print (on stderr, in the user's cell) what background writes could not record so far."""
    recorder = _recorder
    lines = recorder.reports() if recorder is not None else []
    with _lock:
        lines += _notes
        _notes.clear()
    snapshots = sys.modules.get("mlops_nb.snapshots.background")
    if snapshots is not None:  # data snapshots written by this process's snapshot thread
        lines += snapshots.take_notes()
    for line in lines:
        print(line, file=sys.stderr)


def close() -> None:
    """At exit: let every background write finish."""
    global _recorder
    recorder, _recorder = _recorder, None
    if recorder is not None:
        with _terminate_after_writes():
            recorder.close()
        _replay(recorder)
    wait()


@contextlib.contextmanager
def _terminate_after_writes():
    """Defer SIGTERM while the last runs are written (on exit only).

    A kernel being shut down gets SIGTERM a moment after its shutdown request
    and SIGKILL later: the records are worth that moment.  The recorder holds
    them in any case; waiting here means the kernel's exit marks the point
    where its runs are all in the store.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


# Flush (and join the writer thread's work) before interpreter teardown.
atexit.register(close)
# A read in this process waits for its background writes.
add_read_barrier(wait)


def _recorder_for(store_url: str):
    """The running recorder for records to ``store_url``; None where they are written in this process."""
    global _recorder
    if os.environ.get("MLOPS_NB_RECORDER", "").strip().lower() == "thread" or ":memory:" in store_url:
        return None  # another process cannot see an in-memory database
    with _lock:
        if _recorder is None:
            from .recorder import Recorder

            try:
                _recorder = Recorder()
            except OSError as exc:
                print(f"mlops: the recorder process could not start ({exc}); runs are written in the kernel", file=sys.stderr)
                os.environ["MLOPS_NB_RECORDER"] = "thread"
                return None
        if _recorder.alive:
            return _recorder
        dead, _recorder = _recorder, None
        os.environ["MLOPS_NB_RECORDER"] = "thread"  # records stay in order from here on
        note = f"mlops: the recorder process stopped ({dead.exit_text}); runs are now written in the kernel"
        if threading.current_thread() is threading.main_thread():
            print(note, file=sys.stderr)
        else:  # a background writer (snapshots) noticed it between cells: said under the next cell
            _notes.append(note)
    _replay(dead)
    return None


def _replay(recorder) -> None:
    """Write here, in order, what a recorder that stopped never confirmed (nothing while it runs)."""
    for what, message in recorder.unconfirmed():
        _in_thread(message, what, replay=True)


def _in_thread(message: dict[str, Any], what: str, *, replay: bool = False) -> None:
    global _executor
    from .recorder import queued_text
    from .spool import deliver

    def work() -> None:
        notes, queued = deliver(message, what=what, replay_safe=replay)
        with _lock:
            _notes.extend(f"mlops {what}: not recorded: {note}" for note in notes)
            if queued is not None:
                _notes.append(queued_text(what, queued))

    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlops-writer")
        _futures.append((_executor.submit(work), what))
