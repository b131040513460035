"""One run: its metric histories as lines, and its params and metrics beside a baseline run.

The baseline is the run it was derived from when there is one: the run it
reproduces, else the previous run of the same name, else the run that made
its first input; or any run the user picks.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..errors import NotFoundError
from ..store import schema as t
from ..store.engine import read_transaction
from .vega import COUNTED, chart, clean, empty, spec, tooltip

if TYPE_CHECKING:
    from ..store import SqlStore


def run_charts(store: SqlStore, run_id: str, *, baseline: str | None = None) -> dict[str, Any]:
    """``{"charts": [history], "baseline": {"run_id", "why"}, "compare": {"params", "metrics"}}`` for a run."""
    run = store.get_run(run_id)
    why = "chosen" if baseline else None
    if baseline:
        base = store.get_run(baseline)
    else:
        found, why = derived_from(store, run)
        base = store.get_run(found) if found else None
    return {
        "run_id": run["id"],
        "charts": [history(run)],
        "baseline": {"run_id": base["id"] if base else None, "name": base["name"] if base else None, "why": why},
        "compare": compare(run, base),
    }


def derived_from(store: SqlStore, run: dict[str, Any]) -> tuple[str | None, str | None]:
    """The run ``run`` came from and how: the run it ``reproduces``, the ``previous`` run of the same name
    (the same cell, before its last change), or the ``parent`` that made its first input."""
    reproduced = run["tags"].get("mlops.reproduces")
    if reproduced:
        try:
            return store.resolve_run_id(reproduced), "reproduces"
        except NotFoundError:  # a deleted original leaves the other ways
            pass
    if run.get("name"):
        with read_transaction(store.engine) as conn:
            previous = conn.execute(
                select(t.runs.c.id).where(t.runs.c.name == run["name"], t.runs.c.start_time < run["start_time"],
                                          t.runs.c.project_id == select(t.runs.c.project_id).where(t.runs.c.id == run["id"])
                                          .scalar_subquery())
                .order_by(t.runs.c.start_time.desc()).limit(1)).scalar()  # fmt: skip
        if previous:
            return previous, "previous"
    for item in run["inputs"]:
        makers = [r for r in store.data_lineage(item["digest"])["produced_by"] if r != run["id"]]
        if makers:
            return makers[-1], "parent"
    return None, None


def history(run: dict[str, Any]) -> dict[str, Any]:
    """Each metric logged more than once, by step (or by order of logging), one small chart per metric."""
    series: dict[str, list[dict[str, Any]]] = {}
    for i, point in enumerate(run["metric_history"]):
        series.setdefault(point["key"], []).append(point | {"i": i})
    lines = {k: v for k, v in series.items() if len(v) > 1}
    if not lines:
        return empty("history", "metric history", "every metric of this run was logged once: no history to draw")
    rows = []
    for key, points in lines.items():
        by_step = all(p["step"] is not None for p in points)
        for n, p in enumerate(points):
            rows.append({"metric": key, "step": p["step"] if by_step else n, "value": clean(p["value"]), "run_id": run["id"]})
    doc = spec({
        "facet": {"field": "metric", "type": "nominal", "title": None, "header": {"labelFontSize": 11}},
        "columns": 2,
        "spec": {
            "width": 170, "height": 110, "name": COUNTED,
            "mark": {"type": "line", "point": True},
            "encoding": {
                "x": {"field": "step", "type": "quantitative", "axis": {"tickMinStep": 1}},
                "y": {"field": "value", "type": "quantitative", "scale": {"zero": False}, "title": None},
                "tooltip": tooltip("metric", ("step", "quantitative"), ("value", "quantitative")),
            },
        },
        "resolve": {"scale": {"y": "independent", "x": "independent"}},
    }, values=rows)  # fmt: skip
    return chart("history", "metric history", doc, len(lines))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def compare(run: dict[str, Any], base: dict[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """Params and metrics of ``run`` beside ``base`` (changed params flagged, ``only`` says which of the two has a
    param the other lacks; metric deltas)."""
    base_params = base["params"] if base else {}
    base_metrics = base["metrics"] if base else {}
    params = []
    for k in sorted(set(run["params"]) | set(base_params)):
        a, b = run["params"].get(k), base_params.get(k)
        # a param only one of them has is not a change (a training run beside the run that prepared its data)
        only = None if base is None or (k in run["params"]) == (k in base_params) else ("run" if k in run["params"] else "baseline")
        params.append({"name": k, "run": a, "baseline": b, "only": only,
                       "changed": base is not None and only is None and not _same(a, b)})  # fmt: skip
    metrics = []
    for k in sorted(set(run["metrics"]) | set(base_metrics)):
        a, b = run["metrics"].get(k), base_metrics.get(k)
        delta = a - b if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
        metrics.append({"name": k, "run": clean(a), "baseline": clean(b), "delta": clean(delta)})
    return {"params": params, "metrics": metrics}
