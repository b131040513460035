"""Vega-Lite specs as plain dicts: one chart description drawn by the notebook and the sidebar alike.

A chart is ``{"id", "title", "spec", "marks", "note"}``: ``spec`` is a complete
Vega-Lite v5 document (data inline), ``marks`` how many data marks it draws
(points, bars, lines or nodes; the browser tests count them), ``note`` one
line shown under it.  Rows that carry ``run_id`` make their mark open that run.  The unit
that draws the counted marks is named :data:`COUNTED`.
Built as dicts rather than through altair: the server answers JSON and
altair's import (jsonschema) would cost the sidebar a second per start.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
#: The unit whose marks ``marks`` counts is named ``counted`` (``counted0``, ``counted1``... in a concat, where
#: names must differ): Vega puts the name in the SVG group's class (``counted_marks``), so tests count those items.
COUNTED = "counted"
#: One palette everywhere: the drift panel's reference/current colours, then Tableau.
REF_COLOR, CUR_COLOR, BEST_COLOR, MUTED_COLOR, BAD_COLOR = "#4c78a8", "#f58518", "#e45756", "#9aa5b1", "#d62728"
CONFIG = {
    "view": {"stroke": None},
    "axis": {"labelFontSize": 10, "titleFontSize": 11, "labelLimit": 140},
    "legend": {"labelFontSize": 10, "titleFontSize": 10, "labelLimit": 160},
    "title": {"fontSize": 12, "anchor": "start"},
    "font": "sans-serif",
    # Text colours live here, not on marks, so that the sidebar's theme config (dark or light) wins.
    "text": {"color": "#333"},
}


def spec(body: dict[str, Any], *, values: list[dict[str, Any]] | None = None, width: Any = "container",
         height: int = 220) -> dict[str, Any]:  # fmt: skip
    """A complete Vega-Lite document around ``body`` (mark/encoding/layer/...), data inline."""
    doc: dict[str, Any] = {"$schema": SCHEMA, "config": CONFIG}
    if values is not None:
        doc["data"] = {"values": values}
    if "facet" not in body and "hconcat" not in body and "vconcat" not in body:
        doc["width"] = width
        doc["height"] = height
    doc.update(body)
    return doc


def chart(id: str, title: str, doc: dict[str, Any], marks: int, note: str | None = None) -> dict[str, Any]:  # noqa: A002
    """The chart object the server sends and the notebook displays."""
    return {"id": id, "title": title, "spec": doc, "marks": int(marks), "note": note}


def iso_time(ts: float) -> str:
    """A Unix time as the UTC ISO string Vega's temporal fields read."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def clean(value: Any) -> Any:
    """A JSON value Vega can read: NaN and infinities become null (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def tooltip(*fields: str | tuple[str, str]) -> list[dict[str, Any]]:
    """Tooltip entries; a tuple is ``(field, type)``, a bare name is nominal."""
    out = []
    for item in fields:
        name, kind = item if isinstance(item, tuple) else (item, "nominal")
        entry: dict[str, Any] = {"field": name, "type": kind}
        if kind == "quantitative":
            entry["format"] = ".4~g"
        out.append(entry)
    return out


def empty(id: str, title: str, message: str) -> dict[str, Any]:  # noqa: A002
    """A chart with nothing to draw yet: the message says why (no broken picture)."""
    doc = spec({"mark": {"type": "text", "fontSize": 12, "opacity": 0.75},
                "encoding": {"text": {"field": "message"}}}, values=[{"message": message}], height=40)  # fmt: skip
    return chart(id, title, doc, 0, message)
