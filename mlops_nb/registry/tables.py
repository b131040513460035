"""Registry listings as plain rows, and as the compact DataFrames the magics and the panel's fallback show.

Each ``*_table`` function builds the rows once; the CLI prints them with :func:`mlops_nb.report.table_text`
(no pandas import: a listing answers at once) and each ``*_frame`` wraps the same rows in a DataFrame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..report import when_text

if TYPE_CHECKING:
    from .promotion import Promotion
    from .versions import ModelVersion, RegisteredModel

    import pandas as pd

#: A listing: its column names and one list of cell values per row.
Table = tuple[list[str], list[list[Any]]]


def _frame(table: Table) -> pd.DataFrame:
    import pandas as pd

    columns, rows = table
    return pd.DataFrame(rows, columns=columns)


def models_table(items: list[RegisteredModel]) -> Table:
    """Registered models with their latest version, aliases, description, creation time and creator."""
    rows = [
        [m.name, m.latest_version or 0, ", ".join(f"{a}→v{v}" for a, v in m.aliases.items()), m.description or "",
         when_text(m.created_at), m.user or ""]
        for m in items
    ]  # fmt: skip
    return ["model", "versions", "aliases", "description", "created", "by"], rows


def models_frame(items: list[RegisteredModel]) -> pd.DataFrame:
    return _frame(models_table(items))


def metric_text(metrics: dict[str, float], limit: int = 4) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in list(metrics.items())[:limit])


def versions_table(items: list[ModelVersion]) -> Table:
    """Versions with aliases, class, digest, metrics, training data, run, warnings count, time and creator."""
    rows = [
        [v.version, ", ".join(v.aliases), v.class_name.rsplit(".", 1)[-1], v.digest[:12], metric_text(v.metrics),
         ", ".join(f"{d['name']}({d['digest'][:8]})" for d in v.data), (v.run_id or "")[:8], len(v.warnings),
         when_text(v.created_at), v.user or ""]
        for v in items
    ]  # fmt: skip
    return ["version", "aliases", "class", "digest", "metrics", "data", "run", "warnings", "created", "by"], rows


def versions_frame(items: list[ModelVersion]) -> pd.DataFrame:
    return _frame(versions_table(items))


def audit_table(events: list[dict[str, Any]]) -> Table:
    """Audit events: id, time, actor, action, target, what changed, why."""
    rows = [
        [e["id"], when_text(e["timestamp"]), e["actor"], e["action"], e["target"], event_detail(e), e.get("reason") or ""]
        for e in events
    ]
    return ["id", "when", "actor", "action", "target", "detail", "reason"], rows


def audit_frame(events: list[dict[str, Any]]) -> pd.DataFrame:
    return _frame(audit_table(events))


def requests_table(requests: list[dict[str, Any]]) -> Table:
    """Promotion requests (rows of ``SqlStore.list_promotion_requests``) with their approvers."""
    rows = [
        [r["id"], r["name"], r["version"], r["alias"], r["status"], r["requester"],
         ", ".join(a["user"] for a in r["approvals"] or []), when_text(r["created_at"]), r["reason"] or ""]
        for r in requests
    ]  # fmt: skip
    return ["id", "model", "version", "alias", "status", "requester", "approvals", "when", "reason"], rows


def event_detail(event: dict[str, Any]) -> str:
    """One short line saying what an audit event changed."""
    p = event.get("payload") or {}
    action = event["action"]
    if action == "register":
        return f"v{p.get('version')} ({str(p.get('model_digest', ''))[:8]})"
    if action in ("promote", "rollback", "alias_removed"):
        was = f" (was v{p['previous_version']})" if p.get("previous_version") is not None else ""
        to = f"v{p.get('version')}" if p.get("version") is not None else "removed"
        approvers = f" approved by {', '.join(p['approvers'])}" if p.get("approvers") else ""
        return f"@{p.get('alias')} → {to}{was}{approvers}"
    if action in ("promotion_refused", "promotion_requested", "approve", "approval_refused"):
        failed = [g["gate"] for g in p.get("gates") or [] if not g.get("passed")]
        req = f" request {p['request_id']}" if p.get("request_id") else ""
        return f"@{p.get('alias')} ← v{p.get('version')}{req}" + (f" failed: {', '.join(failed)}" if failed else "")
    keys = ", ".join(f"{k}={v}" for k, v in list(p.items())[:3])
    return keys


def promotion_line(result: Promotion) -> str:
    if result.status == "pending_approval":
        return (
            f"{result.name}:{result.version} → @{result.alias} waits for approval (request {result.request_id}); "
            f"an approver runs: mlops-nb models approve {result.request_id}"
        )
    if result.status == "unchanged":
        now_at = f"v{result.version}" if result.version is not None else "nothing"
        return f"{result.name}@{result.alias} no longer points at v{result.previous_version} (now {now_at}): nothing rolled back"
    was = f" (was v{result.previous_version})" if result.previous_version is not None else ""
    verb = {"promoted": "now points at", "rolled_back": "rolled back to", "removed": "removed from"}[result.status]
    return f"{result.name}@{result.alias} {verb} v{result.version}{was}"
