"""The Python tracking API shared by the magics, scripts and papermill jobs.

>>> with mlops_nb.track(name="train", inputs={"train": df}) as run:
...     model = LogisticRegression().fit(X, y)
...     mlops_nb.log_metric("accuracy", model.score(X, y))
...     mlops_nb.log_model(model)
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import config
from ..environment import environment, notebook_path
from ..errors import MlopsError, RecordingError, TrackingError
from ..processes import current_process
from ..report import metrics_text, shape_text
from .capture import CellCapture, data_record, metric_value
from .model_io import model_params, model_record
from .spool import deliver, waiting_reason

if TYPE_CHECKING:
    import pandas as pd

    from ..store import SqlStore

_stack: list[Run] = []


class Run:
    """A run being recorded; obtain one from :func:`track` or ``%%mlops track``.

    Parameters
    ----------
    name : str, optional
        Human-readable name (several runs may share it).
    tags : mapping, optional
        Free-form labels, e.g. ``{"owner": "ana"}``.
    project : str, optional
        Project name; defaults to the configured one.
    store : SqlStore, optional
        Where to record; defaults to :func:`mlops_nb.store.get_store`.
    source : str, optional
        Code of the run (the cell source for tracked cells).
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        tags: Mapping[str, Any] | None = None,
        project: str | None = None,
        store: SqlStore | None = None,
        source: str | None = None,
        execution_count: int | None = None,
        namespace: Mapping[str, Any] | None = None,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.name = name
        self.tags = {str(k): str(v) for k, v in (tags or {}).items()}
        if os.environ.get("MLOPS_NB_REPRODUCES"):  # a run of `mlops-nb reproduce`: linked to its original
            self.tags.setdefault("mlops.reproduces", os.environ["MLOPS_NB_REPRODUCES"])
        self.project = config.project_name(project)
        self._store = store
        self._urls: dict[str, str] | None = None  # see _where
        self.source = source
        self.execution_count = execution_count
        self.notebook_path = notebook_path(namespace)
        self.params: dict[str, Any] = {}
        self.metrics: list[tuple[str, float, int | None, float]] = []
        self.inputs: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.warnings: list[str] = []
        # Stale / hidden / out-of-order inputs: [{kind, name, message, cell}] (mlops_nb.tracking.staleness)
        self.lineage_warnings: list[dict[str, Any]] = []
        self.status = "created"
        self.error: str | None = None
        self.start_time: float | None = None
        self.duration: float | None = None
        self.persist_start = True
        self._inserted = False
        self._start_lock = threading.Lock()  # the start row: written once, by the run or by .starts
        self._closed = False  # ending: a start that still waits must not be written on its own
        self._deferred: dict[str, Any] = {}  # models whose artifacts are not written yet
        self.queued: str | None = None  # why the run waits in the local spool (see .spool), if it does
        self._captures: list[CellCapture] = []  # their objects are what the run's data versions hold
        self._logged: dict[str, Any] = {}  # digest -> object, from log_input / log_output
        self._git = None  # Future of (commit, dirty), taken from the start of a run written here
        self.context: dict[str, dict[str, Any]] = {}  # how reproduce rebuilds what a cell read (.context)

    @property
    def store(self) -> SqlStore:
        """The store the run is recorded in (opened on first use)."""
        if self._store is None:
            from ..store import get_store

            self._store = get_store()
        return self._store

    def __repr__(self) -> str:
        return f"<Run {self.id[:8]} {self.name or ''} {self.status}>"

    # ---- logging ----------------------------------------------------------------
    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Record a metric value; call repeatedly with ``step`` for a series."""
        _check_key(name, "metric")
        number = metric_value(value)
        if number is None:
            raise TrackingError(
                f"Metric {name!r} must be a real number, got {type(value).__name__} {value!r}.",
                metric=name,
            )
        if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
            raise TrackingError(f"Metric step must be an integer, got {step!r}.", metric=name)
        self.metrics.append((name, number, step, time.time()))

    def log_param(self, name: str, value: Any) -> None:
        """Record one parameter (stored as text; JSON for non-strings)."""
        _check_key(name, "param")
        self.params[name] = value

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record several parameters."""
        if not isinstance(params, Mapping):
            raise TrackingError(f"log_params expects a mapping, got {type(params).__name__}.")
        for key, value in params.items():
            self.log_param(key, value)

    def log_model(self, model: Any, name: str = "model") -> str:
        """Store ``model`` as an artifact now; return its model version (digest).

        Its ``get_params()`` become run params prefixed with ``name.``, as for
        models captured from a tracked cell.
        """
        _check_key(name, "model")
        return self._add_model(name, model)["digest"]

    def _add_model(self, name: str, model: Any, digest: str | None = None) -> dict[str, Any]:
        from .spool import unreachable

        try:
            record = self.models[name] = model_record(name, model, self._artifacts(), digest)
        except Exception as exc:
            if not unreachable(exc):
                raise
            # The bucket (or the registry) does not answer: the model travels inside the run's
            # record, and is uploaded before the run is marked finished (see .spool).
            return self._defer_model(name, model, digest)
        for key, value in record["params"].items():
            self.params.setdefault(f"{name}.{key}", value)
        return record

    def _artifacts(self):
        """The run's artifact store, without opening the registry database when it is not open yet."""
        if self._store is not None:
            return self._store.artifacts
        from ..store.artifacts import ArtifactStore

        return ArtifactStore(self._where()["artifacts"])

    def known_profile(self, digest: str) -> bool:
        """Whether the store has a profile of data version ``digest`` (False while it does not answer)."""
        from .spool import unreachable

        try:
            return self.store.has_profile(digest)
        except Exception as exc:  # the registry is down: profile it again rather than fail the run
            if not unreachable(exc):
                raise
            return False

    def log_input(self, name: str, obj: Any) -> str:
        """Record the current version of a data object the run reads; return its digest."""
        return self._log_data(self.inputs, name, obj)

    def log_output(self, name: str, obj: Any) -> str:
        """Record the current version of a data object the run produces; return its digest."""
        return self._log_data(self.outputs, name, obj)

    def _log_data(self, target: dict[str, dict[str, Any]], name: str, obj: Any) -> str:
        _check_key(name, "data")
        record = data_record(name, obj, known=self.known_profile)
        target[name] = record
        self._logged[record["digest"]] = obj
        return record["digest"]

    def set_tag(self, key: str, value: Any) -> None:
        _check_key(key, "tag")
        self.tags[key] = str(value)

    def watch(self, capture: CellCapture) -> None:
        """Before the cell runs: record the versions it can read as this run's inputs."""
        capture.before()
        self.inputs.update(capture.inputs)
        self._captures.append(capture)
        self.context.update(capture.context())

    def collect(self, capture: CellCapture, *, defer_models: bool = False) -> None:
        """After the cell ran: add the data, models and metrics it produced.

        ``defer_models``: only fingerprint the models now (enough for the
        summary line); :meth:`save_models` stores their artifacts later.
        """
        capture.after()
        self.outputs.update(capture.outputs)
        for name, value in capture.metrics.items():
            if not any(m[0] == name for m in self.metrics):
                self.metrics.append((name, value, None, time.time()))
        for name, model in capture.models.items():
            if name not in self.models:
                try:
                    if defer_models:
                        self._defer_model(name, model, capture.model_digests.get(name))
                    else:
                        self._add_model(name, model, capture.model_digests.get(name))
                except MlopsError as exc:  # keep the run; say what was not kept
                    self.warnings.append(f"model {name}: {exc}")
        self.warnings.extend(capture.warnings)

    def _defer_model(self, name: str, model: Any, digest: str | None) -> dict[str, Any]:
        from ..fingerprint import fingerprint

        cls = type(model)
        record = {
            "name": name, "digest": digest or fingerprint(model),
            "class_name": f"{cls.__module__}.{cls.__qualname__}", "params": model_params(model),
        }  # fmt: skip
        self._deferred[name] = model
        self.models[name] = record
        for key, value in record["params"].items():
            self.params.setdefault(f"{name}.{key}", value)
        return record

    # ---- lifecycle ------------------------------------------------------------------
    def start(self, *, persist: bool = True) -> None:
        """Mark the run as started; with ``persist`` it becomes visible while it runs.

        At once to reads of this process, to other processes within
        :data:`.starts.DELAY_S`; a run that ends sooner is written in one
        transaction (see :mod:`.starts`).
        """
        self.start_time = time.time()
        self._t0 = time.perf_counter()
        self.status = "running"
        if persist:  # written from this process: git status runs beside the run, not after it
            from ..gitstate import prefetch_git_state
            from . import starts

            self._git = prefetch_git_state()
            starts.schedule(self)

    def write_start(self) -> None:
        """Write the run's start row now, unless it is written or the run is ending."""
        with self._start_lock:
            if self._inserted or self._closed:
                return
            try:
                _, self.queued = deliver(self.start_message(), store=self._store, what=f"run {self.id[:8]}")
            except MlopsError:
                # Neither the registry nor the spool took it: the code runs all the same, and the
                # finish record (which then carries the start too) says what became of the run.
                return
            self._inserted = True

    def _close_start(self) -> None:
        from . import starts

        starts.cancel(self)
        with self._start_lock:  # waits for a start being written by another thread
            self._closed = True

    def start_message(self) -> dict[str, Any]:
        """The record that makes the run visible while it runs (:mod:`mlops_nb.tracking.records`)."""
        fields = dict(
            name=self.name,
            start_time=self.start_time,
            source=self.source,
            source_hash=hashlib.sha256(self.source.encode()).hexdigest() if self.source else None,
            notebook_path=self.notebook_path,
            execution_count=self.execution_count,
            environment=environment(),
            job_run_id=os.environ.get("MLOPS_NB_JOB_RUN_ID"),
            batch_id=os.environ.get("MLOPS_NB_BATCH_ID"),
            tags=dict(self.tags),
            **current_process(),  # so that a later open of the store can tell when this process is gone
        )
        message = {"op": "start", **self._where(), "run_id": self.id, "project": self.project, "cwd": os.getcwd(),
                   "fields": fields}  # fmt: skip
        if self._git is not None:
            message["git"] = tuple(self._git.result(timeout=15))
        return message

    def finish_message(self, *, snapshot: bool = False) -> dict[str, Any]:
        """The record of everything the run recorded, written in one transaction.

        ``snapshot``: the record may be written by another process: models not
        stored yet travel as pickles taken now (see :func:`mlops_nb.tracking.records.model_entry`).
        """
        from .records import model_entry

        models = []
        for name, record in self.models.items():
            if name in self._deferred:
                try:
                    record = model_entry(record, self._deferred[name], snapshot=snapshot)
                except MlopsError as exc:  # keep the run; say what was not kept
                    self.warnings.append(f"model {name}: {exc}")
                    continue
            models.append(record)
        fields = dict(
            status=self.status,
            error=self.error,
            duration=self.duration,
            params=dict(self.params),
            metrics=list(self.metrics),
            tags=dict(self.tags),
            inputs=list(self.inputs.values()),
            outputs=list(self.outputs.values()),
            warnings=self.lineage_warnings or None,
            execution_count=self.execution_count,
            context=self.context or None,
        )
        return {
            "op": "finish", **self._where(), "run_id": self.id, "fields": fields, "models": models,
            "start": None if self._inserted else self.start_message(),
        }  # fmt: skip

    def _where(self) -> dict[str, Any]:
        """The store and artifact URLs of this run's records, settled at its first record."""
        if self._store is not None:
            return {"store": self._store.url, "artifacts": self._store.artifacts.url}
        if self._urls is None:
            url = config.store_url()
            self._urls = {"store": url, "artifacts": config.artifacts_url(store=url)}
        return dict(self._urls)

    def finish(self, error: BaseException | None = None) -> None:
        """Write everything recorded in one transaction.

        ``error``: the exception that ended the run (status ``failed``, or
        ``interrupted`` for KeyboardInterrupt).
        """
        if self.start_time is None:
            raise TrackingError("finish() called on a run that was never started.", run_id=self.id)
        self.conclude(error)
        self._close_start()
        snapshots = self.plan_snapshots()
        message = self.finish_message()
        notes, queued = deliver(message, store=self._store, what=f"run {self.id[:8]}")
        self.warnings.extend(notes)
        self.queued = queued or self.queued
        self._inserted = True
        self.write_snapshots(snapshots)

    def plan_snapshots(self):
        """Copies of the data versions this run keeps the bytes of (see :mod:`mlops_nb.snapshots.policy`);
        notes on those it does not join the run's warnings."""
        if self.status != "finished":
            return None
        from ..snapshots.policy import plan

        objects = dict(self._logged)
        for capture in self._captures:
            objects.update(capture.objects)
        chosen = plan(list(self.inputs.values()), objects, produced=bool(self.models or self.metrics))
        self.warnings.extend(chosen.notes)
        self._captures.clear()
        return chosen

    def write_snapshots(self, chosen, *, send=None) -> None:
        """Write the planned snapshots in the background (they never hold up the cell).

        ``send(message, what)``: where their records go (a kernel's recorder); by default
        they are recorded from this process.
        """
        if chosen is None or not chosen.items:
            return
        from ..snapshots.background import submit

        from .spool import later_for

        where = self._where()
        submit(chosen.items, where["store"], where["artifacts"], send=send, later=later_for(send))

    def conclude(self, error: BaseException | None = None) -> None:
        """Set the final status, duration and error text, without writing (done once)."""
        if self.status in {"finished", "failed", "interrupted"}:
            return
        self.duration = time.perf_counter() - self._t0
        if error is None:
            self.status = "finished"
        else:
            self.status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
            self.error = "".join(traceback.format_exception(type(error), error, error.__traceback__)[-20:])

    def __enter__(self) -> Run:
        self.start(persist=self.persist_start)
        _stack.append(self)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.deactivate()
        if exc is None:
            try:
                self.finish()
            except MlopsError as error:
                raise RecordingError(
                    f"The code ran, but run {self.id[:8]} could not be recorded: {error}",
                    run_id=self.id,
                ) from error
            return False
        try:
            self.finish(error=exc)
        except Exception as store_exc:  # the user's exception matters more
            warnings.warn(f"mlops_nb: run {self.id[:8]} could not be recorded: {store_exc}", stacklevel=2)
        return False

    def deactivate(self) -> None:
        """Stop being the active run (``log_*`` calls no longer reach it)."""
        if self in _stack:
            _stack.remove(self)

    def discard(self) -> None:
        """Stop being the active run without recording anything."""
        self.deactivate()
        self._close_start()
        self.status = "discarded"

    @property
    def has_results(self) -> bool:
        """Whether the run produced a model or a metric (autotrack keeps only those)."""
        return bool(self.models or self.metrics)

    def print_summary(self, *, to_stderr: bool = False) -> None:
        """Print :meth:`summary_line` in one write (a kernel may send two writes as two outputs)."""
        stream = sys.stderr if to_stderr else sys.stdout
        stream.write(self.summary_line() + "\n")

    def summary_line(self) -> str:
        """One compact line: id, data read, models produced, metrics, duration."""
        parts = [f"mlops run {self.id[:8]}" + (f" {self.name}" if self.name else "")]
        if self.status != "finished":
            parts.append(self.status.upper())
        queued = self.queued or waiting_reason(self._where()["store"])  # behind records already waiting
        if queued:
            parts.append(f"queued (registry unreachable: {queued})")
        if self.inputs:
            parts.append("read " + ", ".join(_data_label(r) for r in self.inputs.values()))
        if self.models:
            parts.append(
                "models " + ", ".join(f"{n} {m['class_name'].rsplit('.', 1)[-1]} ({m['digest'][:8]})" for n, m in self.models.items())
            )
        if self.metrics:
            parts.append(metrics_text({k: v for k, v, _, _ in self.metrics}))
        if self.duration is not None:
            parts.append(f"{self.duration:.2f}s")
        line = " · ".join(parts)
        for warning in self.lineage_warnings:
            line += "\n  ⚠ " + warning["message"]
        if self.warnings:
            line += "\n  not recorded: " + "; ".join(self.warnings)
        return line


def _data_label(record: Mapping[str, Any]) -> str:
    return f"{record['name']}({shape_text(record)}, {record['digest'][:8]})"


def _check_key(name: Any, what: str) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise TrackingError(f"A {what} name must be a non-empty string of at most 255 characters, got {name!r}.")


# ---- module-level API ------------------------------------------------------------
def track(
    name: str | None = None,
    *,
    inputs: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    project: str | None = None,
    store: SqlStore | None = None,
) -> Run:
    """Record a block of code as a run: ``with mlops_nb.track(...) as run:``.

    Parameters
    ----------
    name : str, optional
        Run name.
    inputs : mapping, optional
        Data the block reads, fingerprinted now (before the block can change it): frames, arrays,
        files (a ``Path``, or a string naming an existing file) or any other fingerprintable value.
    tags : mapping, optional
        Labels for the run.

    Returns
    -------
    Run
        A context manager.  Inside the block use it (or the module-level
        ``log_*`` functions) to add metrics, params, models and data.  An
        exception leaving the block marks the run ``failed`` and propagates
        unchanged.
    """
    run = Run(name, tags=tags, project=project, store=store)
    for key, value in (inputs or {}).items():
        # a string naming an existing file is that file (its content is versioned, not its name)
        run.log_input(key, Path(value) if isinstance(value, str) and os.path.isfile(value) else value)
    return run


def active_run() -> Run | None:
    """The innermost run being recorded, if any."""
    return _stack[-1] if _stack else None


def _require_run(what: str) -> Run:
    run = active_run()
    if run is None:
        raise TrackingError(
            f"{what} was called outside a tracked run: put it in a %%mlops track cell, "
            "turn on %mlops autotrack, or use `with mlops_nb.track():`."
        )
    return run


def log_metric(name: str, value: float, step: int | None = None) -> None:
    """Record a metric in the active run."""
    _require_run("log_metric").log_metric(name, value, step)


def log_param(name: str, value: Any) -> None:
    """Record a parameter in the active run."""
    _require_run("log_param").log_param(name, value)


def log_params(params: Mapping[str, Any]) -> None:
    """Record several parameters in the active run."""
    _require_run("log_params").log_params(params)


def log_model(model: Any, name: str = "model") -> str:
    """Store a model in the active run; return its model version (digest)."""
    return _require_run("log_model").log_model(model, name)


def runs(
    *,
    name: str | None = None,
    last: int | None = None,
    project: str | None = None,
    status: str | None = None,
    batch_id: str | None = None,
    store: SqlStore | None = None,
) -> pd.DataFrame:
    """Recorded runs of the current project as a DataFrame, newest first.

    ``project``: another project, or ``"*"`` for every project.  Columns:
    ``run_id, name, status, start_time (UTC), duration_s, project, user`` then
    ``metrics.<key>``, ``params.<key>`` and ``tags.<key>``.  For filters on
    metrics and params use :func:`mlops_nb.search_runs`.
    """
    from ..store import get_store
    from .spool import note_waiting

    project = None if project == "*" else config.project_name(project)
    store = store or get_store()
    rows = store.list_runs(name=name, last=last, project=project, status=status, batch_id=batch_id)
    note_waiting(store.url)
    return runs_frame(rows)


def runs_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Run dicts (with params, metrics, tags) as the DataFrame :func:`runs` returns."""
    import pandas as pd

    records = []
    for r in rows:
        record = {
            "run_id": r["id"],
            "name": r["name"],
            "status": r["status"],
            "start_time": pd.Timestamp(r["start_time"], unit="s", tz="UTC"),
            "duration_s": r["duration"],
            "project": r["project"],
            "user": r["user"],
        }
        record.update({f"metrics.{k}": v for k, v in r["metrics"].items()})
        record.update({f"params.{k}": v for k, v in r["params"].items()})
        record.update({f"tags.{k}": v for k, v in r["tags"].items()})
        records.append(record)
    base = ["run_id", "name", "status", "start_time", "duration_s", "project", "user"]
    return pd.DataFrame.from_records(records, columns=None if records else base)
