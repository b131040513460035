"""A run's two store writes as plain messages, applied in this process or in the recorder.

A run reaches the store in two writes: ``start`` (the row that makes it
visible while it runs, with git state) and ``finish`` (everything it
recorded, in one transaction).  A notebook job's run does the same with
``job_start`` and ``job_finish`` (which carries the executed notebook's
bytes), a data copy the stores could not take is ``snapshot_data``, and a monitor check's outcome is ``monitor_result``, so that they
are kept in the spool like a kernel's run when the registry is down.  Both are dicts of plain, picklable values,
so the same :func:`apply` writes them here (scripts, tests, plain IPython) or
in :mod:`mlops_nb.tracking.recorder`, the process beside a Jupyter kernel that keeps
SQLAlchemy, skops and the file writes off the kernel's time.

A model travels in one of three forms:

``object``
    the live estimator (only when applied in the same process);
``pickle``
    ``pickle.dumps`` of it, taken when the cell ended (later changes to the
    object cannot leak in); the applier rebuilds it and stores it as skops,
    or keeps the pickle as the joblib flavor when it cannot be rebuilt there;
``data`` + ``flavor``
    bytes already serialised by :func:`mlops_nb.tracking.model_io.serialize`.
"""

from __future__ import annotations

import functools
import os
import pickle
import sys
from collections.abc import Mapping
from typing import Any

from ..errors import MlopsError

# Digests of data versions profiled in this process: a profile is built once per version.
profiled: set[str] = set()


def apply(message: Mapping[str, Any], *, store=None, replay: bool = False) -> list[str]:
    """Write ``message`` to its store (``store`` when given); return what could not be recorded.

    ``replay``: the message may have been written already (its first writer
    died before confirming): a run already started or finished is left alone.
    """
    if store is None:
        from ..store import get_store

        store = get_store(message["store"], message["artifacts"])
    if message["op"] == "start":
        _start(store, message, replay)
        return []
    if message["op"] == "finish":
        return _finish(store, message, replay)
    if message["op"] == "job_start":
        _job_start(store, message, replay)
        return []
    if message["op"] == "job_finish":
        _job_finish(store, message)
        return []
    if message["op"] == "snapshot":  # chunks uploaded by the kernel; recorded once (insert-ignore)
        from ..snapshots.storage import record_uploaded

        record_uploaded(store, message["row"], message["chunks"], version=message.get("version"))
        return []
    if message["op"] == "snapshot_data":  # a copy the bucket or registry could not take when its run ended
        from ..snapshots.background import thawed
        from ..snapshots.storage import write_snapshot

        with thawed(message["data"]) as data:
            write_snapshot(data, message["digest"], store, version=message["version"], pinned=message["pinned"])
        return []
    if message["op"] == "monitor_result":  # applied once by the store, whatever ``replay`` says
        store.finish_monitor_check(message["check_id"], message["fields"], audit=message["audit"], alert=message["alert"])
        return []
    raise MlopsError(f"Unknown record {message['op']!r}: this mlops_nb cannot write it.")


def _start(store, message: Mapping[str, Any], replay: bool) -> None:
    if replay and store.run_status(message["run_id"]) is not None:
        return
    store.start_run(message["run_id"], message["project"], **_start_fields(message))


def _start_fields(message: Mapping[str, Any]) -> dict[str, Any]:
    from ..gitstate import git_state

    fields = dict(message["fields"])
    # taken when the run started, where the run was made in this process (see Run.start)
    fields["git_commit"], fields["git_dirty"] = message.get("git") or git_state(message.get("cwd"))
    return fields


def _finish(store, message: Mapping[str, Any], replay: bool) -> list[str]:
    # A run marked interrupted while its record waited (its kernel has exited since) is
    # finished by that record: the record is what the run did.
    if replay and store.run_status(message["run_id"]) not in (None, "running", "interrupted"):
        return []
    notes: list[str] = []
    models = []
    for entry in message["models"]:
        entry = dict(entry)
        if "artifact_digest" not in entry:
            try:
                data, entry["flavor"] = _model_bytes(entry)
            except MlopsError as exc:
                notes.append(f"model {entry['name']}: {exc}")
                continue
            entry["artifact_digest"] = store.artifacts.put_bytes(data)
            entry["artifact_size"] = len(data)
        models.append(entry)
    start = None
    if message.get("start") is not None:  # never written on its own: in the same transaction
        first = message["start"]
        if not (replay and store.run_status(message["run_id"]) is not None):
            start = (first["project"], _start_fields(first))
    store.finish_run(message["run_id"], models=models, start=start, **message["fields"])
    return notes


def _job_start(store, message: Mapping[str, Any], replay: bool) -> None:
    from ..errors import NotFoundError

    if replay:
        try:
            store.get_job_run(message["run_id"])
            return
        except NotFoundError:
            pass
    store.start_job_run(message["run_id"], **message["fields"])


def _job_finish(store, message: Mapping[str, Any]) -> None:
    """The job's outcome, after every run its kernel recorded (they come first in the spool too).

    Idempotent: the notebook is content-addressed and the job run row is updated, not added.
    """
    fields = dict(message["fields"])
    if message.get("output") is not None:
        fields["output_digest"] = store.artifacts.put_bytes(message["output"])
    job_id = message["run_id"]
    run_ids = [r["id"] for r in store.list_runs(job_run_id=job_id)]
    # The kernel is gone: a tracked cell it was still running can never finish.
    store.interrupt_runs(run_ids, f"the job run ended ({fields['status']}) while this run was recording")
    store.finish_job_run(job_id, run_ids=run_ids, **fields)


def _model_bytes(entry: dict[str, Any]) -> tuple[bytes, str]:
    from .model_io import serialize

    if "data" in entry:
        return entry.pop("data"), entry.pop("flavor")
    if "object" in entry:
        return serialize(entry.pop("object"))
    snapshot = entry.pop("pickle")
    try:
        model = pickle.loads(snapshot)
    except Exception:  # e.g. a class only the kernel has; the pickle is still the model
        return snapshot, "joblib"
    return serialize(model)


def model_entry(record: Mapping[str, Any], model: Any, *, snapshot: bool) -> dict[str, Any]:
    """The message form of a model not stored yet (``record``: name, digest, class_name, params).

    ``snapshot``: the message leaves this process; the model is pickled now
    (stored as that pickle when its class exists only in this process).
    """
    entry = dict(record)
    if not snapshot:
        entry["object"] = model
        return entry
    try:
        data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # not picklable: serialise it here, where skops or joblib may still manage
        from .model_io import serialize

        entry["data"], entry["flavor"] = serialize(model)
    else:
        if _rebuildable_elsewhere(model):
            entry["pickle"] = data  # the recorder rebuilds it and stores it with skops
        else:
            # A class of the notebook's own: no other process can rebuild it, and loading it
            # needs that class and explicit trust whatever the format, so the pickle is the
            # artifact (flavor joblib) -- skops here would cost the cell its 1-2 s import.
            entry["data"], entry["flavor"] = data, "joblib"
    return entry


def _rebuildable_elsewhere(model: Any) -> bool:
    """Whether a fresh Python process can unpickle ``model`` without running the user's code.

    True when every class in its parameters comes from the standard library
    or an installed package, not from the notebook (``__main__``) or a module
    beside it (which the other process would import, running its code).
    """
    classes = {type(model)}
    try:
        classes.update(type(v) for v in model.get_params(deep=True).values())
    except Exception:
        pass
    return all(_installed_class(cls) for cls in classes)


@functools.lru_cache(maxsize=1024)
def _installed_class(cls: type) -> bool:
    if cls.__module__ == "builtins":
        return True
    path = getattr(sys.modules.get(cls.__module__), "__file__", None)
    return bool(path) and os.path.realpath(path).startswith(installed_roots())


@functools.lru_cache(maxsize=1)
def installed_roots() -> tuple[str, ...]:
    """The standard library's and the installed packages' folders, each ending in a separator."""
    import sysconfig

    names = ("stdlib", "platstdlib", "purelib", "platlib")
    return tuple({os.path.join(os.path.realpath(sysconfig.get_path(n)), "") for n in names if sysconfig.get_path(n)})
