"""Drift pictures from stored checks: per-column reference vs current histograms, drift over time, a truthful badge."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..errors import NotFoundError
from ..store import schema as t
from ..store.engine import read_transaction
from .vega import BAD_COLOR, COUNTED, CUR_COLOR, REF_COLOR, chart, clean, empty, iso_time, spec, tooltip

if TYPE_CHECKING:
    from ..store import SqlStore

MAX_COLUMNS = 12  # histograms drawn per check, most drifted first
MAX_CHECKS = 200  # points of a drift-over-time chart


def badge(n_drifted: int | None, n_columns: int | None, dataset_drift: bool | None) -> dict[str, str]:
    """What a check decided, in words that cannot contradict its numbers."""
    n, m = int(n_drifted or 0), int(n_columns or 0)
    if dataset_drift:
        return {"text": f"drift detected ({n} of {m} columns drifted)", "level": "bad"}
    if n:
        return {"text": f"{n} of {m} column{'s' if m != 1 else ''} drifted", "level": "warn"}
    return {"text": "no drift", "level": "ok"}


def drift_charts(store: SqlStore, *, check: int | None = None, monitor: str | None = None) -> dict[str, Any]:
    """``{"charts": [histograms, timeline], "badge", "check"}``: a saved check (default the newest) and its history.

    With ``monitor``, the timeline is that monitor's checks (share of drifted
    columns per check, its threshold drawn) and the histograms those of its
    newest check's data; otherwise the saved checks against the same reference.
    """
    if check is None and monitor:
        check = _monitor_drift_check(store, monitor)
    row = _check(store, check)
    charts = []
    if row is not None:
        charts.append(histograms(row))
    charts.append(monitor_timeline(store, monitor) if monitor else check_timeline(store, row))
    answer: dict[str, Any] = {"charts": charts, "check": None, "badge": None}
    if row is not None:
        answer["check"] = {k: row[k] for k in ("id", "created_at", "reference", "n_columns", "n_drifted", "dataset_drift")}
        answer["badge"] = badge(row["n_drifted"], row["n_columns"], row["dataset_drift"])
    return answer


def _check(store: SqlStore, check: int | None) -> dict[str, Any] | None:
    query = select(t.drift_checks)
    query = query.where(t.drift_checks.c.id == check) if check is not None else query.order_by(t.drift_checks.c.id.desc()).limit(1)
    with read_transaction(store.engine) as conn:
        row = conn.execute(query).mappings().first()
    if row is None and check is not None:
        raise NotFoundError(f"No drift check {check}: saved checks are listed by mlops-nb drift list.", check=check)
    return dict(row) if row is not None else None


def _monitor_drift_check(store: SqlStore, monitor: str) -> int | None:
    """The saved drift check of ``monitor``'s newest check: the one made on the same data (scoring saves it)."""
    with read_transaction(store.engine) as conn:
        newest = conn.execute(
            select(t.monitor_checks.c.data_digest, t.monitor_checks.c.model, t.monitor_checks.c.version)
            .where(t.monitor_checks.c.monitor == monitor, t.monitor_checks.c.data_digest.is_not(None))
            .order_by(t.monitor_checks.c.created_at.desc()).limit(1)).first()  # fmt: skip
        if newest is None:
            return None
        same_data = select(t.drift_checks.c.id).where(t.drift_checks.c.current_digest == newest.data_digest)
        # the champion's own check on that data, else any check of that data
        for query in (same_data.where(t.drift_checks.c.reference == f"model:{newest.model}:{newest.version}"), same_data):
            found = conn.execute(query.order_by(t.drift_checks.c.id.desc()).limit(1)).scalar()
            if found is not None:
                return found
        return None


def histograms(row: dict[str, Any]) -> dict[str, Any]:
    """Reference vs current shares per column on shared bins (bars per value for categories), drifted first."""
    result = row.get("result") or {}
    hists = result.get("histograms") or {}
    columns = [c for c in result.get("columns") or [] if c.get("column") in hists]
    columns.sort(key=lambda c: (not c.get("drifted"), -(c.get("score") or 0) if isinstance(c.get("score"), (int, float)) else 0))
    columns = columns[:MAX_COLUMNS]
    title = f"check {row['id']}: reference vs current"
    if not columns:
        return empty("histograms", title, "this check stored no histograms (its columns were not tested)")
    panels = [_column_panel(c, hists[c["column"]]) | {"name": f"{COUNTED}{i}"} for i, c in enumerate(columns)]
    doc = spec({"vconcat": [{"hconcat": panels[i:i + 2]} for i in range(0, len(panels), 2)],
                "resolve": {"scale": {"color": "shared"}}})  # fmt: skip
    n = len([c for c in result.get("columns") or [] if c.get("column") in hists])
    note = f"the {len(columns)} most drifted of {n} columns" if n > len(columns) else None
    bars = sum(len(p["data"]["values"]) for p in panels)  # both sides' shares on every bin or value
    return chart("histograms", title, doc, bars, note)


def _column_panel(column: dict[str, Any], hist: dict[str, Any]) -> dict[str, Any]:
    ref, cur = [float(v) for v in hist.get("ref", [])], [float(v) for v in hist.get("cur", [])]
    rs, cs = sum(ref) or 1.0, sum(cur) or 1.0
    verdict = "DRIFT" if column.get("drifted") else "no drift"
    title: dict[str, Any] = {"text": f"{column['column']}: {verdict}", "fontSize": 11}
    if column.get("drifted"):
        title["color"] = BAD_COLOR  # others keep the theme's title colour
    color = {"field": "side", "type": "nominal", "title": None,
             "scale": {"domain": ["reference", "current"], "range": [REF_COLOR, CUR_COLOR]}}  # fmt: skip
    share = {"field": "share", "type": "quantitative", "title": "share of rows", "axis": {"format": ".0%"}}
    if hist.get("kind") == "bins":
        edges = [float(e) for e in hist["edges"]]
        rows = [{"side": side, "lo": clean(edges[i]), "hi": clean(edges[i + 1]), "share": v / total}
                for side, values, total in (("reference", ref, rs), ("current", cur, cs))
                for i, v in enumerate(values)]  # fmt: skip
        x_type = "temporal" if hist.get("datetime") else "quantitative"
        if x_type == "temporal":
            for r in rows:
                r["lo"], r["hi"] = r["lo"] * 1000, r["hi"] * 1000
        body = {"mark": {"type": "rect", "opacity": 0.55},
                "encoding": {"x": {"field": "lo", "type": x_type, "title": None}, "x2": {"field": "hi"},
                             "y": share, "color": color, "tooltip": tooltip("side", ("share", "quantitative"))}}  # fmt: skip
    else:
        labels = [str(v) for v in hist.get("labels", [])]
        rows = [{"side": side, "value": labels[i] if i < len(labels) else str(i), "share": v / total}
                for side, values, total in (("reference", ref, rs), ("current", cur, cs))
                for i, v in enumerate(values)]  # fmt: skip
        body = {"mark": {"type": "bar"},
                "encoding": {"x": {"field": "value", "type": "nominal", "title": None, "sort": labels,
                                   "axis": {"labelAngle": -40, "labelLimit": 80}},
                             "xOffset": {"field": "side", "sort": ["reference", "current"]},
                             "y": share, "color": color, "tooltip": tooltip("side", "value", ("share", "quantitative"))}}  # fmt: skip
    return {"title": title, "width": 170, "height": 100, "data": {"values": rows}, **body}


def column_chart(column: dict[str, Any], hist: dict[str, Any]) -> dict[str, Any]:
    """One column's reference vs current histogram (the DriftPanel's picture; the same panel as in :func:`histograms`)."""
    panel = _column_panel(column, hist) | {"name": COUNTED}
    title = panel.pop("title")
    doc = spec({**panel, "title": title, "width": "container"}, height=220)
    if column.get("score") is not None and column.get("test"):
        doc["title"] = {**title, "subtitle": f"{column['test']} score {column['score']:.4g} (threshold {column.get('threshold')})"}
    return chart("column", f"{column['column']}: reference vs current", doc, len(panel["data"]["values"]))


def monitor_timeline(store: SqlStore, monitor: str) -> dict[str, Any]:
    """Share of drifted columns per check of ``monitor``, its trigger threshold as a rule."""
    with read_transaction(store.engine) as conn:
        threshold = conn.execute(select(t.monitors.c.drift_share).where(t.monitors.c.name == monitor)).scalar()
        checks = conn.execute(
            select(t.monitor_checks.c.id, t.monitor_checks.c.created_at, t.monitor_checks.c.drift_share,
                   t.monitor_checks.c.n_drifted, t.monitor_checks.c.decision)
            .where(t.monitor_checks.c.monitor == monitor, t.monitor_checks.c.drift_share.is_not(None))
            .order_by(t.monitor_checks.c.created_at.desc()).limit(MAX_CHECKS)).all()  # fmt: skip
    rows = [{"check": c.id, "when": iso_time(c.created_at), "share": c.drift_share, "decision": c.decision or ""} for c in reversed(checks)]
    return _timeline(rows, f"drift over time: monitor {monitor}", threshold)


def check_timeline(store: SqlStore, row: dict[str, Any] | None) -> dict[str, Any]:
    """Share of drifted columns of the saved checks against the same reference as ``row``."""
    if row is None:
        return empty("timeline", "drift over time", "no saved drift checks yet (report.save())")
    with read_transaction(store.engine) as conn:
        checks = conn.execute(
            select(t.drift_checks.c.id, t.drift_checks.c.created_at, t.drift_checks.c.n_drifted, t.drift_checks.c.n_columns,
                   t.drift_checks.c.dataset_drift)
            .where(t.drift_checks.c.reference == row["reference"])
            .order_by(t.drift_checks.c.created_at.desc()).limit(MAX_CHECKS)).all()  # fmt: skip
    rows = [{"check": c.id, "when": iso_time(c.created_at), "share": (c.n_drifted / c.n_columns) if c.n_columns else 0.0,
             "decision": badge(c.n_drifted, c.n_columns, c.dataset_drift)["text"]} for c in reversed(checks)]  # fmt: skip
    threshold = ((row.get("result") or {}).get("summary") or {}).get("drift_share")
    return _timeline(rows, f"drift over time: checks against {row['reference']}", threshold)


def _timeline(rows: list[dict[str, Any]], title: str, threshold: float | None) -> dict[str, Any]:
    if not rows:
        return empty("timeline", title, "no checks with drift numbers yet")
    x = {"field": "when", "type": "temporal", "title": None}
    encoding = {"x": x, "y": {"field": "share", "type": "quantitative", "title": "share of columns drifted",
                              "axis": {"format": ".0%"}, "scale": {"domain": [0, 1]}},
                "tooltip": tooltip("check", ("when", "temporal"), ("share", "quantitative"), "decision")}  # fmt: skip
    layers: list[dict[str, Any]] = [
        {"mark": {"type": "line", "color": CUR_COLOR}, "encoding": encoding},
        {"name": COUNTED, "mark": {"type": "point", "filled": True, "size": 50, "color": CUR_COLOR}, "encoding": encoding},
    ]
    if threshold is not None:
        layers.append({"data": {"values": [{"threshold": threshold}]},
                       "mark": {"type": "rule", "color": BAD_COLOR, "strokeDash": [4, 3]},
                       "encoding": {"y": {"field": "threshold", "type": "quantitative"}}})  # fmt: skip
    doc = spec({"layer": layers}, values=rows, height=160)
    return chart("timeline", title, doc, len(rows), f"dashed: the drift share that triggers ({threshold:.0%})" if threshold is not None else None)
