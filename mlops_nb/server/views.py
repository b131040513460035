"""What each endpoint returns, as JSON-ready dicts built from the Python API.

Plain functions taking a store (they run on the API's worker thread); the
handlers only parse requests and write responses.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import MlopsError, NotFoundError

if TYPE_CHECKING:
    from ..store import SqlStore

_RUN_FIELDS = (
    "id", "name", "status", "project", "start_time", "end_time", "duration", "notebook_path",
    "execution_count", "user", "job_run_id", "batch_id", "git_commit", "git_dirty",
)  # fmt: skip


class BadRequest(MlopsError):
    """A request's parameters or body are invalid (answered with 400)."""


# ---- runs -------------------------------------------------------------------------------
def run_summary(run: dict[str, Any]) -> dict[str, Any]:
    """The columns a list shows: identity, status, times, metrics, params, tags, warnings."""
    out = {k: run.get(k) for k in _RUN_FIELDS}
    error = run.get("error")
    out.update(
        metrics=run.get("metrics") or {},
        params=run.get("params") or {},
        tags=run.get("tags") or {},
        warnings=_warnings(run.get("warnings")),
        error=error.strip().splitlines()[-1] if error else None,
    )
    return out


def list_runs(
    store: SqlStore,
    *,
    filter: str | None = None,
    order_by: list[str] | None = None,
    max_results: int = 50,
    page_token: str | None = None,
    project: str | None = None,
) -> dict[str, Any]:
    """A page of runs matching the run search grammar (``metrics.accuracy > 0.9 and status = 'finished'``)."""
    from ..search import search_runs

    # The sidebar is not inside a project: every project's runs unless one is asked for.
    page = search_runs(
        filter or None, order_by=order_by or None, max_results=max_results, page_token=page_token,
        project=project or "*", store=store,
    )  # fmt: skip
    return {"runs": [run_summary(r) for r in page], "next_page_token": page.next_page_token}


def get_run(store: SqlStore, run_id: str) -> dict[str, Any]:
    """One run in full: params, metrics (and their history), inputs with where they came from, outputs, models, source."""
    from ..registry.lineage import lineage

    run = store.get_run(run_id)
    out = run_summary(run)
    out.update(
        error=run.get("error"),
        source=run.get("source"),
        source_hash=run.get("source_hash"),
        environment=run.get("environment") or {},
        metric_history=run.get("metric_history") or [],
        host=run.get("host"),
    )
    out["inputs"] = [_data_with_lineage(store, d, run["id"]) for d in run.get("inputs", [])]
    out["outputs"] = [_data_with_lineage(store, d, run["id"]) for d in run.get("outputs", [])]
    out["models"] = [
        {
            "name": m.get("name"), "digest": m.get("digest"), "class_name": m.get("class_name"),
            "flavor": m.get("flavor"),
            "registered": [f"{v['name']}:{v['version']}" for v in store.registry_versions_of_digest(m["digest"])],
        }
        for m in run.get("models", [])
    ]  # fmt: skip
    out["lineage"] = lineage(f"run:{run['id']}", store=store).to_dict()
    return out


def _data_with_lineage(store: SqlStore, data: dict[str, Any], run_id: str) -> dict[str, Any]:
    edges = store.data_lineage(data["digest"])
    names = _run_names(store, set(edges["produced_by"]) | set(edges["read_by"]))
    return {
        "name": data.get("name"), "digest": data["digest"], "kind": data.get("kind"), "shape": data.get("shape"),
        "columns": len(data.get("schema") or []) if isinstance(data.get("schema"), (list, dict)) else None,
        "produced_by": [{"id": i, "name": names.get(i)} for i in edges["produced_by"] if i != run_id],
        "read_by": [{"id": i, "name": names.get(i)} for i in edges["read_by"] if i != run_id],
    }  # fmt: skip


def _run_names(store: SqlStore, ids: Iterable[str]) -> dict[str, str | None]:
    from .queries import run_names

    return run_names(store, list(ids))


def run_lineage(store: SqlStore, ref: str) -> dict[str, Any]:
    from ..registry.lineage import lineage

    return lineage(ref, store=store).to_dict()


def notebook_runs(store: SqlStore, paths: list[str], limit: int) -> dict[str, Any]:
    from .queries import runs_of_notebook

    return {"runs": [run_summary(r) for r in runs_of_notebook(store, paths, limit)]}


# ---- models --------------------------------------------------------------------------------
def list_models(store: SqlStore) -> dict[str, Any]:
    """Registered models, each with its versions (newest first) and aliases, and pending promotion requests."""
    from .. import registry

    out = []
    for model in registry.models(store=store):
        item = model.to_dict()
        item["versions"] = [version_summary(v) for v in registry.versions(model.name, store=store)]
        out.append(item)
    return {"models": out, "requests": promotion_requests(store)}


def version_summary(version: Any) -> dict[str, Any]:
    d = version.to_dict()
    return {
        k: d.get(k)
        for k in ("name", "version", "ref", "digest", "class_name", "flavor", "run_id", "aliases", "created_at",
                  "user", "metrics", "description")
    } | {"warnings": _warnings(d.get("warnings"))}  # fmt: skip


def get_model(store: SqlStore, name: str) -> dict[str, Any]:
    from .. import registry

    found = [m for m in registry.models(store=store) if m.name == name]
    if not found:
        raise NotFoundError(f"No registered model named {name!r}.", name=name)
    item = found[0].to_dict()
    item["versions"] = [version_summary(v) for v in registry.versions(name, store=store)]
    item["requests"] = promotion_requests(store, name)
    item["audit"] = [_audit_row(e) for e in registry.audit(name, store=store)][-50:]
    return item


def get_version(store: SqlStore, name: str, version: int) -> dict[str, Any]:
    from .. import registry

    return registry.get_model_version(f"{name}:{version}", store=store).to_dict()


def promotion_requests(store: SqlStore, name: str | None = None) -> list[dict[str, Any]]:
    rows = store.list_promotion_requests(name, status="pending")
    keep = ("id", "name", "version", "alias", "requester", "reason", "status", "created_at", "approvals")
    return [{k: r.get(k) for k in keep} for r in rows]


def _audit_row(event: dict[str, Any]) -> dict[str, Any]:
    return {k: event.get(k) for k in ("id", "timestamp", "actor", "action", "target", "reason", "payload")}


# ---- drift -----------------------------------------------------------------------------------
def drift_checks(store: SqlStore, limit: int) -> dict[str, Any]:
    """Latest saved checks with per-column outcomes and the decision in words (histograms left out: the list stays small)."""
    from ..charts.drift import badge

    checks = []
    for row in store.list_drift_checks(limit=limit):
        result = row.get("result") or {}
        summary = result.get("summary") or {}
        columns = [
            {k: c.get(k) for k in ("column", "type", "test", "score", "threshold", "drifted", "status", "note", "missing_drift")}
            for c in result.get("columns") or []
        ]
        checks.append({
            "id": row["id"], "created_at": row["created_at"], "reference": row["reference"],
            "reference_digest": row.get("reference_digest"), "current_digest": row.get("current_digest"),
            "n_columns": row["n_columns"], "n_drifted": row["n_drifted"], "dataset_drift": bool(row["dataset_drift"]),
            "share_drifted": summary.get("share_drifted"), "drift_share": summary.get("drift_share"),
            "current_rows": summary.get("current_rows"), "reference_rows": summary.get("reference_rows"),
            "columns": columns, "warnings": result.get("warnings") or [],
            "badge": badge(row["n_drifted"], row["n_columns"], row["dataset_drift"]),
        })  # fmt: skip
    return {"checks": checks}


def alerts(store: SqlStore, limit: int) -> dict[str, Any]:
    """Monitoring alerts, newest first: what a monitor decided about which model version, and why."""
    rows = store.list_alerts(last=limit)
    keys = ("id", "created_at", "monitor", "severity", "kind", "model", "version", "decision", "message", "acknowledged")
    return {"alerts": [{k: r.get(k) for k in keys} for r in rows]}


# ---- jobs ----------------------------------------------------------------------------------
def schedules(store: SqlStore) -> dict[str, Any]:
    """Schedules with their next due time (none when paused) and latest firing."""
    from ..jobs.schedules import next_times

    out = []
    stamp = time.time()
    for s in store.list_schedules():
        upcoming = None if s["paused"] else next_times(s["cron"], stamp, 1, s["timezone"])[0]
        out.append({
            "name": s["name"], "cron": s["cron"], "timezone": s["timezone"], "paused": bool(s["paused"]),
            "notebook_path": s["notebook_path"], "parameters": s.get("parameters") or {},
            "retries": s["retries"], "timeout": s["timeout"], "forced": bool(s["forced"]),
            "next_time": upcoming, "last_slot": s.get("last_slot"), "last_status": s.get("last_status"),
        })  # fmt: skip
    return {"schedules": out}


def schedule_history(store: SqlStore, name: str, last: int) -> dict[str, Any]:
    store.get_schedule(name)  # NotFoundError for an unknown name
    keep = ("id", "slot", "status", "attempts", "job_run_ids", "started_at", "ended_at", "error", "created_at")
    return {"name": name, "firings": [{k: f.get(k) for k in keep} for f in store.list_firings(name, last=last)]}


def trigger(store: SqlStore, name: str, actor: str, reason: str | None) -> dict[str, Any]:
    note = f"run now from the JupyterLab sidebar by {actor}" + (f": {reason}" if reason else "")
    firing_id = store.request_firing(name, reason=note)
    return {
        "name": name, "firing_id": firing_id, "status": "requested",
        "message": f"Firing {firing_id} requested: the running `mlops-nb scheduler` picks it up at its next tick.",
    }  # fmt: skip


# ---- the local spool -------------------------------------------------------------------------
def spool_waiting(store_url: str, shown_url: str) -> dict[str, Any]:
    """What waits in this machine's local spool for ``store_url`` (``{"count": 0}`` when nothing does).

    Kernels started by this server share its user and environment, hence its
    spool folder.  A ``stat`` when nothing waits: the sidebar asks at every refresh.
    """
    from dataclasses import replace

    from ..tracking import spool

    found = spool.waiting(store_url) if spool.has_waiting(store_url) else []
    if not found:
        return {"count": 0}
    waiting = replace(found[0], store=shown_url)  # the line names the registry as the sidebar does: no password
    return {
        "count": waiting.count, "runs": waiting.runs, "bytes": waiting.bytes, "oldest": waiting.oldest,
        "reason": waiting.reason, "line": waiting.line(),
    }  # fmt: skip


# ---- helpers ---------------------------------------------------------------------------------
def _warnings(raw: Any) -> list[dict[str, Any]]:
    if not raw:
        return []
    return [w if isinstance(w, dict) else {"kind": "warning", "message": str(w)} for w in raw]


def jsonable(obj: Any) -> Any:
    """``obj`` with non-finite floats as None (browsers reject NaN in JSON) and unknown types as text."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    if hasattr(obj, "item"):  # numpy scalars
        return jsonable(obj.item())
    return str(obj)
