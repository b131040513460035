"""Live traffic to the monitors: a sample of the requests a server scores, logged as data.

``mlops-nb serve churn@production --log-sample 0.1`` keeps about one request in ten.
On the request path that costs one random number and, for a kept request, one append
of the rows the server parsed anyway (the numpy route's array, or the frame).  A background
thread hands what was kept to a writer child every few seconds; the child records it as one tracked run named ``served:churn@production`` whose input ``requests``
is a data version (snapshotted like any other: chunks stored once, fingerprint checked
on load), with the columns ``served_at`` and ``model_version`` added.

``load_traffic("served:churn@production", since="1d")`` gives those rows back as one
frame; a monitor whose data is ``served:churn@production --since 1d`` checks them as it
checks a file.

Bounded: at most ``max_rows`` rows wait in memory (more are counted as dropped, never
queued), so memory stays flat and the registry grows by at most ``max_rows`` rows per
flush however heavy the traffic; with ``keep`` (``--log-keep 7d``) batches older than that
are expired (their rows' chunks deleted, the runs kept as the record that they were served),
so disk use stays flat too.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from ..errors import MlopsError, ServeError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from ..store import SqlStore

log = logging.getLogger("mlops_nb.serve")
PREFIX = "served:"
INPUT_NAME = "requests"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SERVED = re.compile(r"^served:(?P<model>\S+?)(?:\s+--since\s+(?P<since>\S+))?\s*$")


class TrafficLog:
    """Samples requests on the request path; a thread writes them to the registry in batches.

    Parameters
    ----------
    model : str
        The reference the server serves (``churn@production``): the log is ``served:`` + it.
    sample : float
        Share of requests kept, in (0, 1].
    flush_every : float
        Seconds between writes (a write also happens when ``max_rows`` rows wait).
    max_rows : int
        Rows held in memory at most; requests beyond it are dropped from the log (counted).
    keep : float, optional
        Seconds a batch's rows are kept; older ones are expired after a write (at most once a minute).
    """

    def __init__(
        self, model: str, store: SqlStore, sample: float, *, flush_every: float = 10.0, max_rows: int = 20_000,
        keep: float | None = None,
    ) -> None:  # fmt: skip
        if not 0 < sample <= 1:
            raise ServeError(f"--log-sample must be in (0, 1], got {sample!r}.")
        if keep is not None and keep <= 0:
            raise ServeError(f"--log-keep must be a positive duration (e.g. 7d), got {keep!r} seconds.")
        self.keep = keep
        self._expired_at = 0.0
        self.expired_batches = 0
        self.name = PREFIX + model
        self.store = store
        self.sample = sample
        self.flush_every = flush_every
        self.max_rows = max_rows
        self._pending: deque[tuple[float, Any, pd.DataFrame]] = deque()
        self._rows = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._writer: WriterProcess | None = None
        self.logged_rows = 0
        self.batches = 0
        self.dropped_rows = 0
        self.last_error: str | None = None

    # ---- the request path: a random number, sometimes an append ----------------------------
    def offer(self, frame: pd.DataFrame | np.ndarray, version: Any, *, columns: list[str] | None = None) -> bool:
        """Keep ``frame`` (a request's rows, scored by ``version``) with probability ``sample``.

        An array (the rows the numpy route scored) is kept as it is, with its ``columns``: the
        writer thread makes it a frame, so a kept request costs the request path an append only.
        """
        if random.random() >= self.sample:
            return False
        n = len(frame)
        with self._lock:
            if self._rows + n > self.max_rows:
                self.dropped_rows += n
                return False
            self._pending.append((time.time(), version, frame if columns is None or not _is_array(frame) else (frame, columns)))
            self._rows += n
            full = self._rows >= self.max_rows
        if full:
            self._wake.set()
        return True

    # ---- the writer thread ---------------------------------------------------------------------
    def start(self, *, process: bool = True) -> TrafficLog:
        """Start the writer thread; with ``process``, batches are written by a child process
        (:class:`WriterProcess`), so that the server's interpreter only serialises them."""
        if process:
            try:
                self._writer = WriterProcess(self.store)
            except OSError as exc:
                log.warning("the traffic writer process did not start (%s): batches are written in this one", exc)
        self._thread = threading.Thread(target=self._loop, name="mlops-nb-traffic", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 30.0) -> None:
        """Write what waits and stop the thread."""
        self._closed.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._writer is not None:
            self._writer.close(timeout)

    def _loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.flush_every)
            self._wake.clear()
            self.flush()
        self.flush()

    def flush(self) -> int:
        """Write the rows waiting now as one data version; the number of rows written."""
        with self._lock:
            batch, self._pending = self._pending, deque()
            self._rows = 0
        if not batch:
            return 0
        try:
            # Requests the numpy route scored go to the child as Arrow columns built from their arrays: no
            # DataFrame per request and no concat of thousands of them, which held this interpreter's lock
            # for tens of milliseconds a flush (the p99 of requests scored meanwhile showed it).
            table = _table(batch) if self._writer is not None else None
            frame = table if table is not None else _frame(batch)
            self._write(frame)
        except (MlopsError, OSError, ValueError) as exc:  # neither the registry nor the local spool took them: serving goes on
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.dropped_rows += sum(_rows(f) for _, _, f in batch)
            log.error("logging %d served requests failed: %s", len(batch), self.last_error)
            return 0
        rows = frame.num_rows if table is not None else len(frame)
        self.logged_rows += rows
        self.batches += 1
        self.last_error = None
        self._expire()
        return rows

    def _expire(self) -> None:
        if self.keep is None or time.time() - self._expired_at < min(60.0, self.keep / 10):
            return
        self._expired_at = time.time()
        try:
            self.expired_batches += expire_traffic(self.name, self.keep, self.store)["versions"]
        except (MlopsError, OSError) as exc:  # the registry is down: expired next time
            log.warning("expiring served batches older than %s failed: %s", _duration(self.keep), exc)

    def _write(self, frame: pd.DataFrame | pa.Table) -> None:
        writer = self._writer
        if writer is not None:
            try:
                writer.write(self.name, frame)
                return
            except (OSError, ValueError) as exc:  # the child is gone: this batch and the next ones are written here
                log.warning("the traffic writer process failed (%s): writing in this process from now on", exc)
                self._writer = None
                writer.close(1.0)
        write_batch(self.name, frame if _is_frame(frame) else frame.to_pandas(), self.store)

    def describe(self) -> dict[str, Any]:
        return {"log": self.name, "sample": self.sample, "logged_rows": self.logged_rows, "batches": self.batches,
                "dropped_rows": self.dropped_rows, "waiting_rows": self._rows, "last_error": self.last_error,
                "writer": "process" if self._writer is not None else "thread"}  # fmt: skip


class WriterProcess:
    """A child process writing batches with :func:`write_batch`, answering one JSON line each.

    A batch costs the server an Arrow IPC serialisation and a pipe write instead of the
    profile, the Parquet chunks and the registry's transaction, which would hold its
    interpreter lock for tens of milliseconds every flush (its requests' p99 showed it).
    The child ignores SIGTERM/SIGINT (a signal to the server's process group must not cut
    the last batch short) and exits when its input closes, which happens too when the server dies.
    """

    def __init__(self, store: SqlStore) -> None:
        import os
        import subprocess
        import sys

        env = dict(os.environ, MLOPS_NB_STORE_URL=store.url, MLOPS_NB_ARTIFACTS_URL=store.artifacts.url)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from mlops_nb.scoring.traffic import writer_main; writer_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
        )  # fmt: skip
        import json

        ready = self.proc.stdout.readline()  # the child has its store: started before the first request
        answer = json.loads(ready) if ready.strip() else {"error": f"it exited with status {self.proc.wait()}"}
        if not answer.get("ready"):
            self.close(5.0)
            raise OSError(answer.get("error") or "it did not start")

    def write(self, name: str, frame: pd.DataFrame | pa.Table) -> None:
        """Hand ``frame`` over and wait (off the request path) until the child wrote it; raise what it could not."""
        import json

        import pyarrow as pa

        table = pa.Table.from_pandas(frame, preserve_index=False) if _is_frame(frame) else frame
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as stream:
            stream.write_table(table)
        data = sink.getvalue()
        self.proc.stdin.write(json.dumps({"name": name, "bytes": data.size}).encode() + b"\n")
        self.proc.stdin.write(data)
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise OSError(f"the traffic writer process exited (status {self.proc.poll()})")
        result = json.loads(answer)
        if result.get("error"):
            raise MlopsError(result["error"])

    def close(self, timeout: float = 30.0) -> None:
        import contextlib
        import subprocess

        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def writer_main() -> None:
    """The child of :class:`WriterProcess`: read ``{name, bytes}`` lines each followed by an Arrow
    IPC stream of a batch, write it, answer ``{"rows": n}`` or ``{"error": "..."}``, until EOF."""
    import contextlib
    import json
    import os
    import signal
    import sys

    import pyarrow as pa

    from ..store import get_store

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Behind the server for the CPU: on a busy machine a batch waits a little, requests do not (the rows
    # waiting in the server stay bounded by max_rows).
    with contextlib.suppress(OSError):
        os.nice(10)
    source, answers = sys.stdin.buffer, sys.stdout
    try:
        # Opened before the server takes requests: later, an unreachable registry is the spool's
        # business (write_batch delivers through it), as for the server's own store.
        store = get_store()
    except Exception as exc:
        answers.write(json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"}) + "\n")
        answers.flush()
        return
    answers.write(json.dumps({"ready": True}) + "\n")
    answers.flush()
    while line := source.readline():
        header = json.loads(line)
        frame = pa.ipc.open_stream(source.read(header["bytes"])).read_pandas()
        try:
            write_batch(header["name"], frame, store)
            answer: dict[str, Any] = {"rows": len(frame)}
        except Exception as exc:  # said to the server, which counts the rows as dropped and keeps serving
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def _is_frame(data: Any) -> bool:
    return type(data).__name__ == "DataFrame"


def _table(batch) -> pa.Table | None:
    """The batch as Arrow columns (plus ``served_at`` and ``model_version``), built from the kept arrays
    themselves; None unless every kept request is an array of the same columns."""
    import numpy as np
    import pyarrow as pa

    kept = [f for _, _, f in batch]
    if not all(isinstance(f, tuple) for f in kept) or any(f[1] != kept[0][1] for f in kept):
        return None
    matrix = np.vstack([f[0] for f in kept])  # int and float requests: floats, as concatenated frames would be
    counts = [len(f[0]) for f in kept]
    served_at = np.repeat(np.array([t for t, _, _ in batch], dtype="float64"), counts)
    versions = np.repeat(np.array([str(v) for _, v, _ in batch], dtype=object), counts)
    columns = [pa.array(matrix[:, i]) for i in range(matrix.shape[1])]
    return pa.Table.from_arrays([*columns, pa.array(served_at), pa.array(versions, pa.string())],
                                names=[*kept[0][1], "served_at", "model_version"])  # fmt: skip


def _is_array(data: Any) -> bool:
    return type(data).__name__ == "ndarray"  # numpy is loaded by then; no import on the request path


def _rows(kept: Any) -> int:
    return len(kept[0]) if isinstance(kept, tuple) else len(kept)


def _frame(batch) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    frames = [pd.DataFrame(f[0], columns=f[1]) if isinstance(f, tuple) else f for _, _, f in batch]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    counts = [len(f) for f in frames]
    frame = frame.copy()
    frame["served_at"] = np.repeat(np.array([t for t, _, _ in batch], dtype="float64"), counts)
    frame["model_version"] = np.repeat(np.array([str(v) for _, v, _ in batch], dtype=object), counts)
    return frame


def write_batch(name: str, frame: pd.DataFrame, store: SqlStore) -> str:
    """Record ``frame`` as the ``requests`` input of a run named ``name``; its ``data:`` reference."""
    from ..tracking.capture import data_record
    from ..tracking.run import track

    with track(name, tags={"kind": "served", "served": name[len(PREFIX):]}, store=store) as run:
        # Recorded, not run.log_input: the rows are snapshotted below, through the spool.
        record = run.inputs[INPUT_NAME] = data_record(INPUT_NAME, frame, known=run.known_profile)
        run.log_metric("rows", float(len(frame)))
        run.log_metric("served_from", float(frame["served_at"].min()))
        run.log_metric("served_to", float(frame["served_at"].max()))
        _keep_rows(name, frame, record, store)  # before the run finishes: a finished log has its rows
    return f"data:{record['digest']}"


def _keep_rows(name: str, frame: pd.DataFrame, record: dict[str, Any], store: SqlStore) -> None:
    """The rows' chunks to the artifact store now; the snapshot's record to the registry, or to the
    local spool while the registry does not answer (replayed in order with the run's records, once),
    as a kernel's snapshots are."""
    from ..snapshots.storage import upload_snapshot
    from ..tracking.spool import deliver

    row, chunks = upload_snapshot(frame, record["digest"], store.artifacts)
    version = {k: record.get(k) for k in ("kind", "shape", "schema", "profile")}
    message = {"op": "snapshot", "store": store.url, "artifacts": store.artifacts.url, "row": row, "chunks": chunks,
               "version": version}  # fmt: skip
    deliver(message, store=store, what=f"snapshot of {name}")


def expire_traffic(name: str, keep: float, store: SqlStore) -> dict[str, Any]:
    """Delete the rows of the batches of traffic log ``name`` older than ``keep`` seconds (see :func:`collect
    <mlops_nb.data.collect.collect>`); their runs stay, as the record of what was served when."""
    from sqlalchemy import select

    from ..data.collect import collect
    from ..store import schema as t
    from ..store.engine import read_transaction

    with read_transaction(store.engine) as conn:
        digests = [r[0] for r in conn.execute(
            select(t.run_data.c.digest).join(t.runs, t.runs.c.id == t.run_data.c.run_id)
            .where(t.runs.c.name == name, t.run_data.c.name == INPUT_NAME)).all()]  # fmt: skip
    return collect(store, keep_days=keep / 86400, among=digests)


def parse_since(text: str | float | None) -> float | None:
    """Seconds in ``30m``, ``12h``, ``1d``, ``2w`` (or a number of seconds); None for None."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", str(text))
    if not match:
        raise ServeError(f"Cannot read the duration {text!r}: use a number and s, m, h, d or w (e.g. 1d, 12h).")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def parse_served(ref: str) -> tuple[str, float | None] | None:
    """``("served:NAME@ALIAS", since_seconds)`` for ``served:NAME@ALIAS [--since 1d]``, else None."""
    match = _SERVED.match(ref.strip()) if isinstance(ref, str) else None
    if match is None:
        return None
    return PREFIX + match.group("model"), parse_since(match.group("since"))


def load_traffic(ref: str, *, since: str | float | None = None, store: SqlStore | None = None, now: float | None = None) -> pd.DataFrame:
    """The logged requests of ``served:NAME@ALIAS`` (``--since`` inside ``ref`` or ``since``), oldest first."""
    import pandas as pd

    from ..snapshots.storage import read_snapshot
    from ..store import get_store

    parsed = parse_served(ref)
    if parsed is None:
        raise ServeError(f"{ref!r} is not a traffic log: use served:NAME@ALIAS (optionally --since 1d).")
    name, inline_since = parsed
    window = parse_since(since) if since is not None else inline_since
    store = store or get_store()
    cutoff = (now or time.time()) - window if window is not None else None
    runs = [r for r in store.list_runs(name=name) if r["status"] == "finished"]
    frames, expired = [], 0
    for run in sorted(runs, key=lambda r: r["start_time"]):
        if cutoff is not None and run["metrics"].get("served_to", run["start_time"]) < cutoff:
            continue
        inputs = store.get_run(run["id"]).get("inputs", [])  # list_runs leaves inputs out
        record = next((i for i in inputs if i["name"] == INPUT_NAME), None)
        if record is None:
            continue
        if store.get_snapshot(record["digest"]) is None:  # expired (--log-keep) or collected (mlops-nb gc)
            expired += 1
            continue
        frames.append(read_snapshot(record["digest"], store))
    if not frames:
        since_text = f" in the last {_duration(window)}" if window is not None else ""
        gone = f" ({expired} older batch(es) expired: their rows were deleted)" if expired else ""
        raise ServeError(f"No requests of {name[len(PREFIX):]} were logged{since_text}{gone}: serve it with "
                         f"`mlops-nb serve {name[len(PREFIX):]} --log-sample 0.1`.", log=name)  # fmt: skip
    frame = pd.concat(frames, ignore_index=True)
    if cutoff is not None:
        frame = frame[frame["served_at"] >= cutoff].reset_index(drop=True)
    return frame


def _duration(seconds: float) -> str:
    for unit in ("w", "d", "h", "m"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{seconds / _UNITS[unit]:g}{unit}"
    return f"{seconds:g}s"
