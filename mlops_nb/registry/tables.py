"""Registry listings as compact DataFrames, shared by the CLI, the magics and the panel's fallback."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..report import when_text

from .promotion import Promotion
from .versions import ModelVersion, RegisteredModel


def models_frame(items: list[RegisteredModel]) -> pd.DataFrame:
    rows = [
        {
            "model": m.name,
            "versions": m.latest_version or 0,
            "aliases": ", ".join(f"{a}→v{v}" for a, v in m.aliases.items()),
            "description": m.description or "",
            "created": when_text(m.created_at),
            "by": m.user or "",
        }
        for m in items
    ]
    return pd.DataFrame(rows, columns=["model", "versions", "aliases", "description", "created", "by"])


def metric_text(metrics: dict[str, float], limit: int = 4) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in list(metrics.items())[:limit])


def versions_frame(items: list[ModelVersion]) -> pd.DataFrame:
    rows = [
        {
            "version": v.version,
            "aliases": ", ".join(v.aliases),
            "class": v.class_name.rsplit(".", 1)[-1],
            "digest": v.digest[:12],
            "metrics": metric_text(v.metrics),
            "data": ", ".join(f"{d['name']}({d['digest'][:8]})" for d in v.data),
            "run": (v.run_id or "")[:8],
            "warnings": len(v.warnings),
            "created": when_text(v.created_at),
            "by": v.user or "",
        }
        for v in items
    ]
    columns = ["version", "aliases", "class", "digest", "metrics", "data", "run", "warnings", "created", "by"]
    return pd.DataFrame(rows, columns=columns)


def audit_frame(events: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [
        {
            "id": e["id"],
            "when": when_text(e["timestamp"]),
            "actor": e["actor"],
            "action": e["action"],
            "target": e["target"],
            "detail": event_detail(e),
            "reason": e.get("reason") or "",
        }
        for e in events
    ]
    return pd.DataFrame(rows, columns=["id", "when", "actor", "action", "target", "detail", "reason"])


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
