"""Charts of many runs, following a run search filter: scatter, parallel coordinates, bars, steps.

Everything that grows with the number of runs is counted, ranked or sampled
in SQL; at most :data:`SAMPLE` runs (an even sample over time plus the best
ones) ever leave the database, so 10,000 runs draw as fast as 100.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from ..report import higher_is_better
from ..store import schema as t
from ..store.engine import read_transaction
from ..store.params import param_value
from .vega import BEST_COLOR, COUNTED, MUTED_COLOR, REF_COLOR, chart, clean, empty, spec, tooltip

if TYPE_CHECKING:
    from ..store import SqlStore

SAMPLE = 1_000  # runs drawn at most in a scatter (a few hundred pixels wide: more points only overlap)
LINES = 200  # runs drawn at most as parallel-coordinate lines
BARS = 30  # best runs drawn as bars
STEP_RUNS = 12  # newest runs drawn in the steps chart
PARALLEL_PARAMS = 6
_PREFERRED = ("accuracy", "f1", "roc_auc", "r2", "auc", "score", "rmse", "mae", "loss")


def runs_charts(
    store: SqlStore,
    *,
    filter: str | None = None,  # noqa: A002 - the run search's name
    x: str | None = None,
    y: str | None = None,
    metric: str | None = None,
    project: str | None = "*",
) -> dict[str, Any]:
    """The runs charts for the runs matching ``filter`` (all projects by default).

    Returns ``{"charts", "axes": {"params", "metrics"}, "x", "y", "metric", "total", "shown"}``;
    ``x`` is a param, ``y`` and ``metric`` metrics (defaults: the likeliest ones).
    """
    from ..search import matching_runs

    match = matching_runs(filter, project=project).subquery("match")
    with read_transaction(store.engine) as conn:
        total = conn.execute(select(func.count()).select_from(match)).scalar_one()
        every_run = not (filter or "").strip() and project == "*"
        # Names from the (key, ...) indexes: a loose scan, milliseconds where a join over 10,000 runs takes a second.
        names = {table: [r[0] for r in conn.execute(select(table.c.key).distinct().order_by(table.c.key)).all()]
                 for table in (t.params, t.latest_metrics)}  # fmt: skip
        guess = _pick(metric or y, names[t.latest_metrics])
        runs = _runs(conn, _sample(conn, match, total, guess))
        drawn = {t.params: {k for r in runs for k in r["params"]}, t.latest_metrics: {k for r in runs for k in r["metrics"]}}
        # Every run is drawn, or every run matches: the names are exact without asking; else a name no drawn
        # run has is kept when some matching run has it.
        keys = {table: sorted(drawn[table] if len(runs) == total else names[table] if every_run else
                              drawn[table] | {k for k in names[table] if k not in drawn[table] and _has(conn, match, table, k)})
                for table in names}  # fmt: skip
        param_keys, metrics = keys[t.params], keys[t.latest_metrics]
        y = _pick(y, metrics)
        metric = _pick(metric, metrics) if metric else y
        stepped = _stepped(conn, match, metric)
    # How many values each param takes, in the drawn runs: it picks the default x and the parallel axes.
    params = {k: len({repr(r["params"][k]) for r in runs if k in r["params"]}) for k in param_keys}
    x = x if x in params else _default_param(params)
    answer: dict[str, Any] = {"axes": {"params": param_keys, "metrics": metrics}, "x": x, "y": y,
                              "metric": metric, "total": total, "shown": len(runs)}  # fmt: skip
    if not total:
        answer["charts"] = [empty("scatter", "Runs", "no runs match this filter")]
        return answer
    if not metrics:
        answer["charts"] = [empty("scatter", "Runs", "these runs recorded no metrics yet")]
        return answer
    note = f"{len(runs):,} of {total:,} runs: an even sample over time and the best by {metric}" if len(runs) < total else None
    charts = [scatter(runs, x, y, note), parallel(runs, params, metric), bars(runs, metric, total)]
    if stepped:
        charts.append(steps(*stepped))
    answer["charts"] = charts
    return answer


# ---- queries -------------------------------------------------------------------------------
def _has(conn, match, table, key: str) -> bool:
    """Whether some matching run recorded ``key`` in ``table`` (params or latest_metrics)."""
    ids = select(match.c.id)
    return conn.execute(select(table.c.run_id).where(table.c.key == key, table.c.run_id.in_(ids)).limit(1)).first() is not None


def _default_param(variety: dict[str, int]) -> str | None:
    """The param to plot against: one that varies, the user's own (``C``) before a model's (``clf.C``)."""
    if not variety:
        return None
    return min(variety, key=lambda k: (variety[k] < 2, "." in k, -variety[k], k))


def _pick(wanted: str | None, metrics: list[str]) -> str | None:
    if wanted in metrics:
        return wanted
    for name in _PREFERRED:
        if name in metrics:
            return name
    return metrics[0] if metrics else None


def _sample(conn, match, total: int, metric: str | None) -> list[str]:
    """Ids of the runs to draw: all when few; else an even sample over start time plus the best by ``metric``."""
    if total <= SAMPLE:
        return [r[0] for r in conn.execute(select(match.c.id))]
    every = math.ceil(total / (SAMPLE - BARS))
    numbered = select(match.c.id, func.row_number().over(order_by=(match.c.start_time, match.c.id)).label("n")).subquery()
    ids = [r[0] for r in conn.execute(select(numbered.c.id).where(numbered.c.n % every == 0))]
    if metric:
        lm = t.latest_metrics
        value = lm.c.value.desc() if higher_is_better(metric) else lm.c.value.asc()
        best = select(lm.c.run_id).join(match, match.c.id == lm.c.run_id).where(lm.c.key == metric, lm.c.value.is_not(None))
        ids += [r[0] for r in conn.execute(best.order_by(value).limit(BARS))]
    return list(dict.fromkeys(ids))


def _runs(conn, ids: list[str]) -> list[dict[str, Any]]:
    """``{"id", "name", "status", "start_time", "params", "metrics"}`` of ``ids``, in batches under SQL's variable limit."""
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), 900):
        batch = ids[i:i + 900]
        # .all(): one fetchall instead of a fetchone per row (half the time on 10,000 params)
        for run_id, name, status, start in conn.execute(
                select(t.runs.c.id, t.runs.c.name, t.runs.c.status, t.runs.c.start_time).where(t.runs.c.id.in_(batch))).all():
            out[run_id] = {"id": run_id, "name": name, "status": status, "start_time": start, "params": {}, "metrics": {}}
        for run_id, key, value, kind in conn.execute(select(t.params.c.run_id, t.params.c.key, t.params.c.value,
                                                            t.params.c.value_type).where(t.params.c.run_id.in_(batch))).all():
            out[run_id]["params"][key] = param_value(value, kind)
        lm = t.latest_metrics
        for run_id, key, value in conn.execute(select(lm.c.run_id, lm.c.key, lm.c.value).where(lm.c.run_id.in_(batch))).all():
            out[run_id]["metrics"][key] = value
    return sorted(out.values(), key=lambda r: (r["start_time"], r["id"]))


def _stepped(conn, match, metric: str | None) -> tuple[str, list[dict[str, Any]]] | None:
    """The stepped metric to draw (``metric`` when it has steps) and its points of the newest runs that logged it."""
    m = t.metrics
    keys = [r[0] for r in conn.execute(
        select(m.c.key).join(match, match.c.id == m.c.run_id).where(m.c.step.is_not(None), m.c.step > 0)
        .group_by(m.c.key).order_by(func.count().desc(), m.c.key))]  # fmt: skip
    if not keys:
        return None
    key = metric if metric in keys else keys[0]
    newest = [r[0] for r in conn.execute(
        select(m.c.run_id).join(match, match.c.id == m.c.run_id).where(m.c.key == key, m.c.step > 0)
        .group_by(m.c.run_id).order_by(func.max(match.c.start_time).desc()).limit(STEP_RUNS))]  # fmt: skip
    names = dict(conn.execute(select(t.runs.c.id, t.runs.c.name).where(t.runs.c.id.in_(newest))).all())
    points = [
        {"run_id": r.run_id, "run": _label(r.run_id, names.get(r.run_id)), "step": r.step, "value": clean(r.value)}
        for r in conn.execute(select(m.c.run_id, m.c.step, m.c.value).where(m.c.run_id.in_(newest), m.c.key == key)
                              .order_by(m.c.run_id, m.c.step, m.c.id))  # fmt: skip
        if r.step is not None
    ]
    return key, points


# ---- charts --------------------------------------------------------------------------------
def _label(run_id: str, name: str | None) -> str:
    return f"{name or 'run'} {run_id[:8]}"


def _best(runs: list[dict[str, Any]], metric: str) -> str | None:
    scored = [r for r in runs if isinstance(r["metrics"].get(metric), (int, float)) and math.isfinite(r["metrics"][metric])]
    if not scored:
        return None
    pick = max if higher_is_better(metric) else min
    return pick(scored, key=lambda r: r["metrics"][metric])["id"]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def scatter(runs: list[dict[str, Any]], x: str | None, y: str, note: str | None) -> dict[str, Any]:
    """``y`` (a metric) against ``x`` (a param), one point per run, the best run marked."""
    title = f"{y} vs {x}" if x else f"{y} per run"
    best = _best(runs, y)
    rows = []
    for r in runs:
        value = r["metrics"].get(y)
        if not _is_number(value):
            continue
        xv = r["params"].get(x) if x else r["start_time"]
        if xv is None:
            continue
        rows.append({"run_id": r["id"], "run": _label(r["id"], r["name"]), "x": xv if _is_number(xv) else str(xv),
                     "y": value, "best": r["id"] == best, "status": r["status"]})  # fmt: skip
    if not rows:
        return empty("scatter", title, f"no run has both {y} and {x}")
    numeric = all(_is_number(r["x"]) for r in rows)
    xs = [r["x"] for r in rows] if numeric else []
    log = numeric and min(xs) > 0 and max(xs) / min(xs) >= 100
    x_enc: dict[str, Any] = {"field": "x", "type": "quantitative" if numeric else "nominal", "title": x or "start time"}
    if log:
        x_enc["scale"] = {"type": "log"}
    if not x:
        x_enc.update(type="temporal", title="start time")
        for r in rows:
            r["x"] = r["x"] * 1000  # Vega's times are milliseconds
    doc = spec({
        "name": COUNTED,
        "mark": {"type": "point", "filled": True, "size": 60, "cursor": "pointer"},
        "encoding": {
            "x": x_enc,
            "y": {"field": "y", "type": "quantitative", "title": y, "scale": {"zero": False}},
            "color": {"condition": {"test": "datum.best", "value": BEST_COLOR}, "value": REF_COLOR},
            "size": {"condition": {"test": "datum.best", "value": 140}, "value": 50},
            "tooltip": tooltip("run", ("x", "quantitative" if numeric else "nominal"), ("y", "quantitative"), "status"),
        },
    }, values=rows)  # fmt: skip
    return chart("scatter", title, doc, len(rows), note)


def parallel(runs: list[dict[str, Any]], variety: dict[str, int], metric: str) -> dict[str, Any]:
    """Parallel coordinates: the params that vary most, then ``metric``; one line per run, coloured by the metric."""
    axes = [k for k in sorted(variety, key=lambda k: ("." in k, -variety[k], k)) if variety[k] > 1][:PARALLEL_PARAMS]
    drawn = [r for r in runs if _is_number(r["metrics"].get(metric)) and any(r["params"].get(k) is not None for k in axes)]
    scored = len(drawn)
    if len(drawn) > LINES:  # keep the best and an even share of the rest, LINES in all
        best = sorted(drawn, key=lambda r: r["metrics"][metric], reverse=higher_is_better(metric))[: LINES // 4]
        chosen = {r["id"] for r in best}
        others = [r for r in drawn if r["id"] not in chosen]
        room = LINES - len(best)
        drawn = best + [others[i * len(others) // room] for i in range(room)]
    title = f"params → {metric}"
    if not drawn or not axes:
        return empty("parallel", title, "no param varies between these runs" if drawn else f"no run recorded {metric}")
    columns = axes + [metric]
    def value(run: dict[str, Any], i: int) -> Any:
        return run["metrics"][metric] if i == len(axes) else run["params"].get(columns[i])

    scales = [_axis_scale([value(r, i) for r in drawn]) for i in range(len(columns))]
    ticks = [{"axis": name, "order": i, "pos": pos, "label": label}
             for i, name in enumerate(columns) for label, pos in scales[i]["ticks"]]  # fmt: skip
    rows = []
    for r in drawn:
        for i, name in enumerate(columns):
            v = value(r, i)
            pos = scales[i]["place"](v)
            rows.append({"run_id": r["id"], "run": _label(r["id"], r["name"]), "axis": name, "order": i, "pos": pos,
                         "value": v if _is_number(v) or v is None else str(v),
                         "metric": r["metrics"][metric]})  # fmt: skip
    x = {"field": "axis", "type": "nominal", "sort": columns, "title": None, "axis": {"labelAngle": 0, "domain": False}}
    y = {"field": "pos", "type": "quantitative", "axis": None, "scale": {"domain": [0, 1]}}
    doc = spec({
        "layer": [
            {"data": {"values": [{"axis": c} for c in columns]}, "mark": {"type": "rule", "color": "#bbb"},
             "encoding": {"x": x}},
            {"name": COUNTED, "mark": {"type": "line", "strokeWidth": 1.2, "opacity": 0.7, "cursor": "pointer"},
             "encoding": {"x": x, "y": y, "detail": {"field": "run_id"},
                          "color": {"field": "metric", "type": "quantitative", "title": metric,
                                    "scale": {"scheme": "viridis", "reverse": not higher_is_better(metric)}},
                          "tooltip": tooltip("run", "axis", "value", ("metric", "quantitative"))}},
            {"data": {"values": ticks}, "mark": {"type": "text", "align": "left", "dx": 3, "fontSize": 9, "opacity": 0.8},
             "encoding": {"x": x, "y": y, "text": {"field": "label"}}},
        ]
    }, values=rows, height=240)  # fmt: skip
    note = f"{len(drawn):,} of {scored:,} runs drawn (the best and an even sample)" if len(drawn) < scored else None
    return chart("parallel", title, doc, len(drawn), note)


def _axis_scale(values: list[Any]) -> dict[str, Any]:
    """Where a value sits on a 0–1 axis, and labelled ticks: numbers by value (log when wide), others by rank."""
    numbers = [v for v in values if _is_number(v)]
    if numbers and len(numbers) == len([v for v in values if v is not None]):
        lo, hi = min(numbers), max(numbers)
        log = lo > 0 and hi / lo >= 100
        f = math.log10 if log else (lambda v: v)
        a, b = f(lo), f(hi)

        def place(v: Any) -> float | None:
            return None if not _is_number(v) else (0.5 if a == b else (f(v) - a) / (b - a))

        return {"place": place, "ticks": [(_short(lo), place(lo)), (_short(hi), place(hi))]}
    labels = sorted({str(v) for v in values if v is not None})
    rank = {v: (i / (len(labels) - 1) if len(labels) > 1 else 0.5) for i, v in enumerate(labels)}
    return {"place": lambda v: None if v is None else rank.get(str(v)), "ticks": [(v[:12], rank[v]) for v in labels[:12]]}


def _short(value: float) -> str:
    return f"{value:.3g}"


def bars(runs: list[dict[str, Any]], metric: str, total: int) -> dict[str, Any]:
    """``metric`` of the best :data:`BARS` runs, best first, the best one highlighted."""
    scored = [r for r in runs if _is_number(r["metrics"].get(metric))]
    scored.sort(key=lambda r: r["metrics"][metric], reverse=higher_is_better(metric))
    shown = scored[:BARS]
    if not shown:
        return empty("bars", f"{metric} per run", f"no run recorded {metric}")
    rows = [{"run_id": r["id"], "run": _label(r["id"], r["name"]), "value": r["metrics"][metric], "best": i == 0, "rank": i}
            for i, r in enumerate(shown)]  # fmt: skip
    doc = spec({
        "name": COUNTED,
        "mark": {"type": "bar", "cursor": "pointer"},
        "encoding": {
            "y": {"field": "run", "type": "nominal", "sort": {"field": "rank"}, "title": None},
            "x": {"field": "value", "type": "quantitative", "title": metric, "scale": {"zero": False}},
            "color": {"condition": {"test": "datum.best", "value": BEST_COLOR}, "value": MUTED_COLOR},
            "tooltip": tooltip("run", ("value", "quantitative")),
        },
    }, values=rows, height=max(80, 14 * len(rows)))  # fmt: skip
    # The sample always holds the best runs by the chosen metric (ranked in SQL), so these are the true best.
    note = f"the best {len(shown)} of {total:,} runs" if total > len(shown) else None
    return chart("bars", f"{metric} per run ({'higher' if higher_is_better(metric) else 'lower'} is better)", doc, len(rows), note)


def steps(key: str, points: list[dict[str, Any]]) -> dict[str, Any]:
    """A stepped metric (``cv`` folds, ``mean_test_score`` per candidate...) as one line per run."""
    by_run: dict[str, int] = defaultdict(int)
    for p in points:
        by_run[p["run_id"]] += 1
    doc = spec({
        "name": COUNTED,  # the lines; the points overlay is a mark of its own, not counted
        "mark": {"type": "line", "point": True, "cursor": "pointer"},
        "encoding": {
            "x": {"field": "step", "type": "quantitative", "title": "step", "axis": {"tickMinStep": 1}},
            "y": {"field": "value", "type": "quantitative", "title": key, "scale": {"zero": False}},
            "color": {"field": "run", "type": "nominal", "title": None, "legend": {"orient": "bottom", "columns": 2}},
            "tooltip": tooltip("run", ("step", "quantitative"), ("value", "quantitative")),
        },
    }, values=points)  # fmt: skip
    return chart("steps", f"{key} by step", doc, len(by_run), f"the {len(by_run)} newest runs that logged {key} with steps")


def comparison(runs: list[dict[str, Any]], histories: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Chosen runs side by side: each metric as grouped bars (one per run), stepped metrics as lines."""
    rows = [{"run_id": r["id"], "run": _label(r["id"], r["name"]), "metric": k, "value": v}
            for r in runs for k, v in sorted(r["metrics"].items()) if _is_number(v)]  # fmt: skip
    out = []
    if rows:
        doc = spec({
            "name": COUNTED,
            "mark": {"type": "bar", "cursor": "pointer"},
            "encoding": {
                "y": {"field": "metric", "type": "nominal", "title": None},
                "yOffset": {"field": "run"},
                "x": {"field": "value", "type": "quantitative", "title": None},
                "color": {"field": "run", "type": "nominal", "title": None, "legend": {"orient": "bottom", "columns": 2}},
                "tooltip": tooltip("run", "metric", ("value", "quantitative")),
            },
        }, values=rows, height=max(80, 12 * len(rows)))  # fmt: skip
        out.append(chart("compare", "metrics side by side", doc, len(rows)))
    names = {r["id"]: _label(r["id"], r["name"]) for r in runs}
    points = [{"run_id": rid, "run": f"{names[rid]} {h['key']}", "step": h["step"], "value": clean(h["value"])}
              for rid, history in histories.items() for h in history if h["step"] is not None]  # fmt: skip
    if points:
        keys = sorted({p["run"] for p in points})
        out.append(steps("stepped metrics", points) | {"marks": len(keys), "note": None})
    return out
