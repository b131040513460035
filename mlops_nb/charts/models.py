"""A registered model: metrics across its versions, which version each alias held when, champion vs challenger."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..registry.promotion import ALIAS_ACTIONS
from ..store import schema as t
from ..store.engine import read_transaction
from .vega import BEST_COLOR, COUNTED, REF_COLOR, chart, clean, empty, iso_time, spec, tooltip

if TYPE_CHECKING:
    from ..store import SqlStore


MAX_TREND_METRICS = 6


def model_charts(store: SqlStore, name: str) -> dict[str, Any]:
    """``{"charts": [trend, aliases, decisions?]}`` for registered model ``name``."""
    versions = store.list_registry_versions(name)  # raises NotFoundError for an unknown name
    charts = [trend(store, name, versions), alias_timeline(store, name)]
    decided = decisions(store, name)
    if decided is not None:
        charts.append(decided)
    return {"name": name, "charts": charts}


def trend(store: SqlStore, name: str, versions: list[dict[str, Any]]) -> dict[str, Any]:
    """Each metric of the versions' training runs across version numbers."""
    runs = {v["version"]: v.get("run_id") for v in versions}
    ids = [r for r in runs.values() if r]
    metrics: dict[str, dict[str, float]] = {}
    if ids:
        with read_transaction(store.engine) as conn:
            for m in conn.execute(select(t.latest_metrics).where(t.latest_metrics.c.run_id.in_(ids))):
                metrics.setdefault(m.run_id, {})[m.key] = m.value
    keys = sorted({k for values in metrics.values() for k in values})[:MAX_TREND_METRICS]
    rows = [{"version": v, "metric": k, "value": clean(metrics.get(r or "", {}).get(k)), "model": name, "run_id": r}
            for v, r in sorted(runs.items()) for k in keys if metrics.get(r or "", {}).get(k) is not None]  # fmt: skip
    if not rows:
        return empty("trend", f"{name}: metrics across versions", "its versions' runs recorded no metrics")
    encoding = {
        "x": {"field": "version", "type": "ordinal", "title": "version", "axis": {"labelAngle": 0}},
        "y": {"field": "value", "type": "quantitative", "scale": {"zero": False}, "title": None},
        "color": {"field": "metric", "type": "nominal", "title": None, "legend": {"orient": "bottom"}},
        "tooltip": tooltip(("version", "ordinal"), "metric", ("value", "quantitative")),
    }
    doc = spec({"layer": [{"mark": "line", "encoding": encoding},
                          {"name": COUNTED, "mark": {"type": "point", "filled": True, "size": 45}, "encoding": encoding}]},
               values=rows, height=170)  # fmt: skip
    return chart("trend", f"{name}: metrics across versions", doc, len(rows))


def alias_timeline(store: SqlStore, name: str) -> dict[str, Any]:
    """Which version each alias held over time, replayed from the audit trail: one bar per holding."""
    now = time.time()
    spans: list[dict[str, Any]] = []
    open_: dict[str, dict[str, Any]] = {}
    for event in store.audit_log(f"model:{name}"):
        payload = event.get("payload") or {}
        if event["action"] not in ALIAS_ACTIONS or "alias" not in payload:
            continue
        alias = payload["alias"]
        held = open_.pop(alias, None)
        if held is not None:
            held["end"] = iso_time(event["timestamp"])
            spans.append(held)
        if payload.get("version") is not None:
            open_[alias] = {"alias": f"@{alias}", "version": f"v{payload['version']}", "start": iso_time(event["timestamp"]),
                            "by": event["actor"], "action": event["action"], "model": name, "current": False}  # fmt: skip
    for held in open_.values():
        spans.append(held | {"end": iso_time(now), "current": True})
    if not spans:
        return empty("aliases", f"{name}: aliases over time", "no alias was ever set on this model")
    doc = spec({
        "layer": [
            {"name": COUNTED, "mark": {"type": "bar", "height": 14, "cornerRadius": 2},
             "encoding": {"y": {"field": "alias", "type": "nominal", "title": None},
                          "x": {"field": "start", "type": "temporal", "title": None}, "x2": {"field": "end"},
                          "color": {"field": "version", "type": "nominal", "title": "version", "legend": {"orient": "bottom"}},
                          "stroke": {"condition": {"test": "datum.current", "value": "#222"}, "value": None},
                          "tooltip": tooltip("alias", "version", ("start", "temporal"), ("end", "temporal"), "by", "action")}},
            {"mark": {"type": "text", "align": "left", "dx": 3, "fontSize": 9, "color": "#fff"},
             "encoding": {"y": {"field": "alias", "type": "nominal"}, "x": {"field": "start", "type": "temporal"},
                          "text": {"field": "version"}}},
        ]
    }, values=spans, height=max(60, 30 * len({s['alias'] for s in spans})))  # fmt: skip
    return chart("aliases", f"{name}: aliases over time", doc, len(spans))


def decisions(store: SqlStore, name: str) -> dict[str, Any] | None:
    """Champion vs challenger scores of the monitors' races on this model; None when no monitor ever raced one."""
    with read_transaction(store.engine) as conn:
        checks = conn.execute(
            select(t.monitor_checks.c.id, t.monitor_checks.c.created_at, t.monitor_checks.c.monitor,
                   t.monitor_checks.c.version, t.monitor_checks.c.challenger_version, t.monitor_checks.c.decision,
                   t.monitor_checks.c.payload, t.monitor_checks.c.metric)
            .where(t.monitor_checks.c.model == name, t.monitor_checks.c.challenger_version.is_not(None))
            .order_by(t.monitor_checks.c.created_at).limit(200)).all()  # fmt: skip
    rows = []
    for c in checks:
        scores = (c.payload or {}).get("scores") or {}
        for role, version in (("champion", c.version), ("challenger", c.challenger_version)):
            value = scores.get(f"{name}:{version}")  # keyed by ModelVersion.ref
            if value is not None:
                rows.append({"check": f"#{c.id} {iso_time(c.created_at)[:10]}", "role": role, "version": f"v{version}",
                             "score": clean(value), "decision": c.decision, "monitor": c.monitor,
                             "metric": c.metric or ""})  # fmt: skip
    if not checks:
        return None
    if not rows:
        return empty("decisions", f"{name}: champion vs challenger", "the monitors' races stored no scores")
    doc = spec({
        "name": COUNTED,
        "mark": {"type": "bar"},
        "encoding": {
            "y": {"field": "check", "type": "nominal", "title": None, "sort": None},
            "yOffset": {"field": "role", "sort": ["champion", "challenger"]},
            "x": {"field": "score", "type": "quantitative", "scale": {"zero": False}, "title": rows[0]["metric"] or "score"},
            "color": {"field": "role", "type": "nominal", "scale": {"domain": ["champion", "challenger"], "range": [REF_COLOR, BEST_COLOR]},
                      "title": None, "legend": {"orient": "bottom"}},
            "tooltip": tooltip("check", "role", "version", ("score", "quantitative"), "decision", "monitor"),
        },
    }, values=rows, height=max(60, 26 * len(checks)))  # fmt: skip
    return chart("decisions", f"{name}: champion vs challenger", doc, len(rows))
