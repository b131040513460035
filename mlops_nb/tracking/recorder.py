"""The recorder: a process beside a Jupyter kernel that writes the kernel's tracked runs.

A thread cannot take this work off the kernel: importing SQLAlchemy and skops,
serialising a forest and writing the registry are Python code that holds the
GIL, so a writer thread slows the user's cells by as much as it works.  The
recorder does it on another core.  The kernel sends it run records
(:mod:`mlops_nb.tracking.records`: plain values, models as pickles taken when their
cell ended) over a pipe; it answers each one when it is in the store.

Nothing the kernel reads can see the store before then: every connection the
kernel opens to a registry first waits for the answers
(:func:`mlops_nb.tracking.writer.wait`), and so does the kernel's exit.  The recorder
runs in its own session, so a kernel killed with its process group does not
take unwritten records with it: it writes what reached the pipe, then lets go of
the kernel when the pipe closes (and may wait for the next kernel: :mod:`.spare`).
If the recorder itself dies, the kernel writes the records it did not confirm
(:meth:`Recorder.unconfirmed`).

Run as ``python -m mlops_nb.tracking.recorder`` (by :class:`Recorder` only).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import socket
import subprocess
import sys
import threading
from typing import Any, BinaryIO


class Recorder:
    """The kernel's end: starts the process, sends records, collects the answers."""

    def __init__(self) -> None:
        from . import spare

        env = dict(os.environ)
        # The recorder imports what the kernel imports: same interpreter, same path.
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        # Its warnings go to a log, not to the kernel's stderr: ipykernel would show them in
        # whichever cell runs then.  What it cannot record comes back in its answers.
        lock = _hold(os.environ.get(LOCK_ENV))
        try:
            taken = spare.take(env, os.getcwd(), lock)  # a recorder another kernel left: no imports to pay
            if taken is not None:
                self._proc = None
                self._sock, self.pid = taken
                self._writer, self._reader = self._sock.makefile("wb"), self._sock.makefile("rb")
            else:
                if lock is not None:
                    env[spare.LOCK_FD_ENV] = str(lock)
                with open(log_path(), "ab") as log:
                    self._proc = subprocess.Popen(
                        [sys.executable, "-m", "mlops_nb.tracking.recorder"],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env, cwd=os.getcwd(),
                        start_new_session=True,  # a kernel killed with its group leaves the recorder to finish
                        pass_fds=() if lock is None else (lock,),  # the recorder holds the lock until it is done
                    )  # fmt: skip
                self._sock, self.pid = None, self._proc.pid
                self._writer, self._reader = self._proc.stdin, self._proc.stdout
        finally:
            if lock is not None:
                os.close(lock)
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._pending: dict[int, tuple[str, dict[str, Any]]] = {}
        self._reports: list[str] = []
        self._seq = 0
        self._alive = True
        self._done = threading.Condition()
        threading.Thread(target=self._send, name="mlops-recorder-send", daemon=True).start()
        threading.Thread(target=self._receive, name="mlops-recorder-receive", daemon=True).start()

    # ---- the kernel's side -------------------------------------------------------------
    def send(self, message: dict[str, Any], what: str) -> bool:
        """Queue ``message`` (``what`` names it in messages); False if the recorder has stopped."""
        with self._done:
            if not self._alive:
                return False
            self._seq += 1
            self._pending[self._seq] = (what, message)
            self._outbox.put((self._seq, message))
        return True

    def wait(self) -> None:
        """Until every record sent is in the store, or the recorder has stopped."""
        with self._done:
            while self._pending and self._alive:
                self._done.wait()

    @property
    def alive(self) -> bool:
        return self._alive

    @property
    def exit_text(self) -> str:
        if self._proc is None:
            return f"the recorder (pid {self.pid}) closed its connection"
        code = self._proc.poll()
        if code is None:
            return "still running"
        return f"killed by signal {-code}" if code < 0 else f"exit code {code}"

    def reports(self) -> list[str]:
        """What the recorder could not record since the last call (one line each)."""
        with self._done:
            reports, self._reports = self._reports, []
        return reports

    def unconfirmed(self) -> list[tuple[str, dict[str, Any]]]:
        """After the recorder stopped: the records it never confirmed, oldest first."""
        with self._done:
            if self._alive:
                return []
            pending = [self._pending[seq] for seq in sorted(self._pending)]
            self._pending.clear()
            return pending

    def close(self) -> None:
        """Let the recorder write what it has and let go of this kernel (at kernel exit).

        It closes its end when it is done (the last retries of the spool included); it may then
        wait for another kernel (:mod:`.spare`) or exit.
        """
        self._outbox.put(None)
        self.wait()
        with self._done:  # still writing after that: it finishes on its own
            self._done.wait_for(lambda: not self._alive, timeout=30)
        if self._proc is not None:
            self._proc.poll()  # reaped if it has exited

    # ---- threads ----------------------------------------------------------------------
    def _send(self) -> None:
        pipe = self._writer
        while True:
            item = self._outbox.get()
            try:
                if item is None:
                    pipe.close()
                    if self._sock is not None:
                        self._sock.shutdown(socket.SHUT_WR)  # the recorder reads the end of this kernel
                    return
                pickle.dump(item, pipe, protocol=pickle.HIGHEST_PROTOCOL)
                pipe.flush()
            except (OSError, ValueError):  # the recorder is gone; _receive sees it too
                return

    def _receive(self) -> None:
        pipe = self._reader
        while True:
            try:
                seq, notes, error, queued = pickle.load(pipe)
            except Exception:  # EOF: the recorder exited (or died)
                break
            with self._done:
                what, _ = self._pending.pop(seq, ("a record", None))
                if error is not None:
                    self._reports.append(f"mlops: {what} could not be recorded: {error}")
                if queued is not None:
                    self._reports.append(queued_text(what, queued))
                self._reports.extend(f"mlops {what}: not recorded: {note}" for note in notes)
                self._done.notify_all()
        with self._done:
            self._alive = False
            self._done.notify_all()


# A file the recorder holds a shared lock on while it lives; set by whoever must know when
# every run of a kernel is written (the job runner), see wait_for_recorders.
LOCK_ENV = "MLOPS_NB_RECORDER_LOCK"


def _hold(path: str | None) -> int | None:
    if not path:
        return None
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)  # taken before the child starts: no moment without it
    return fd


def wait_for_recorders(path: str | os.PathLike[str], timeout: float = 600.0) -> bool:
    """Wait until no recorder started with ``MLOPS_NB_RECORDER_LOCK=path`` is running.

    Returns False if one was still writing after ``timeout`` seconds.
    """
    import fcntl
    import time

    if not os.path.exists(path):
        return True  # no tracked run ever started a recorder
    fd = os.open(path, os.O_RDWR)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)
    finally:
        os.close(fd)


def log_path() -> str:
    """Where recorder processes of this user write their warnings."""
    import tempfile

    return os.path.join(tempfile.gettempdir(), f"mlops_nb-recorder-{os.getuid()}.log")


# ---- the recorder process ----------------------------------------------------------------
def serve(inbox: BinaryIO, outbox: BinaryIO | None) -> None:
    """Apply records read from ``inbox`` until it closes; answer each on ``outbox``.

    Records are read as soon as they arrive, whatever is being written, so
    that a kernel killed right after sending them has lost nothing.
    """
    received: queue.SimpleQueue = queue.SimpleQueue()

    def read() -> None:
        while True:
            try:
                received.put(pickle.load(inbox))
            except Exception:  # EOF (the kernel closed the pipe or died) or a torn last record
                received.put(None)
                return

    threading.Thread(target=read, name="mlops-recorder-read", daemon=True).start()
    _warm_up()
    from ..errors import MlopsError
    from . import spool

    waiting: set[str] = set()  # stores with records in the spool
    while True:
        try:
            item = received.get(timeout=RETRY_EVERY_S if waiting else None)
        except queue.Empty:
            for url in list(waiting):
                with _quiet():
                    if spool.replay(url)[1] is None:
                        waiting.discard(url)
            continue
        if item is None:
            break
        seq, message = item
        notes: list[str] = []
        error = queued = None
        try:
            notes, queued = spool.deliver(message, what=_what(message))
        except Exception as exc:  # say what failed; the next record may well succeed
            error = str(exc) if isinstance(exc, MlopsError) else f"{type(exc).__name__}: {exc}"
        if queued is not None:  # records wait for that store: retried while nothing arrives
            waiting.add(message["store"])
        if message["op"] == "replay":
            queued = None  # nothing new was queued
        if outbox is not None:
            try:
                pickle.dump((seq, notes, error, queued), outbox, protocol=pickle.HIGHEST_PROTOCOL)
                outbox.flush()
            except OSError:  # the kernel is gone: write what it sent all the same
                outbox = None
    for url in waiting:  # a last try before exiting; what still waits stays in the spool
        with _quiet():
            spool.replay(url)


#: How often the recorder tries again while records wait in the spool.
RETRY_EVERY_S = 5.0


def queued_text(what: str, reason: str) -> str:
    """The line a user sees for a record kept in the spool."""
    return (
        f"mlops: {what} queued (registry unreachable: {reason}); it is written when the registry answers "
        "(mlops-nb status shows what waits)"
    )


def _what(message: dict[str, Any]) -> str:
    if message.get("op") == "snapshot":
        return f"snapshot of data {str(message['row']['digest'])[:8]}"
    if message.get("op") == "snapshot_data":
        return f"snapshot of data {str(message['digest'])[:8]}"
    return f"run {str(message.get('run_id', ''))[:8]}"


@contextlib.contextmanager
def _quiet():
    try:
        yield
    except Exception as exc:  # a retry that fails is tried again later; the log says why
        print(f"mlops recorder: replay failed: {type(exc).__name__}: {exc}", file=sys.stderr)


def _warm_up() -> None:
    """Import the store while the kernel's first tracked cell still runs.

    skops (which imports every scikit-learn estimator) is left to the first
    model: a kernel that exits waits for its records, and a run without a
    model should not wait for that import.
    """
    try:
        from .. import store  # noqa: F401
        from . import records  # noqa: F401
    except Exception:  # the record that needs them says what is wrong
        pass


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the kernel's interrupts are for the user's code
    try:
        os.nice(10)  # background work: where cores are few, the user's cells go first
    except OSError:
        pass
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library printing to stdout must not corrupt the answers
    from . import spare

    lock = os.environ.pop(spare.LOCK_FD_ENV, None)
    serve(sys.stdin.buffer, answers)
    if lock is not None:  # the job waiting on it may go on
        with contextlib.suppress(OSError):
            os.close(int(lock))
    with contextlib.suppress(OSError):  # a kernel that died cannot read it
        answers.close()  # the kernel's close() returns
    spare.linger(serve)


if __name__ == "__main__":
    main()
