"""Charts in a notebook output: our sidebar's renderer, JupyterLab's Vega-Lite, or a static SVG.

A displayed chart carries three representations and the front end picks the
richest it has: ``application/vnd.mlops-nb.chart+json`` (drawn by the
mlops_nb JupyterLab extension, where clicking a point opens that run in the
sidebar), ``application/vnd.vegalite.v5+json`` (JupyterLab without the
extension, VS Code) and ``image/svg+xml`` drawn here by vl-convert, which is
what nbconvert, GitHub's viewer and an executed job notebook show.
"""

from __future__ import annotations

import copy
import html
from typing import Any

CHART_MIME = "application/vnd.mlops-nb.chart+json"
VEGALITE_MIME = "application/vnd.vegalite.v5+json"
STATIC_WIDTH = 460  # px: what "width": "container" becomes outside a live container
_VL_VERSION = "5.20"


def fixed_width(spec: dict[str, Any], width: int = STATIC_WIDTH) -> dict[str, Any]:
    """``spec`` with container widths made fixed (a static renderer has no container to measure)."""
    out = copy.deepcopy(spec)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("width") == "container":
                node["width"] = width
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(out)
    return out


def svg(spec: dict[str, Any]) -> str | None:
    """The chart drawn as SVG (vl-convert, no browser); None when vl-convert is not installed."""
    try:
        import vl_convert
    except ImportError:
        return None
    return vl_convert.vegalite_to_svg(fixed_width(spec), vl_version=_VL_VERSION)


class Chart:
    """One chart ``{"id", "title", "spec", "marks", "note"}`` that displays itself in a notebook.

    ``static=False`` leaves the SVG out (faster, for live-only views).
    """

    def __init__(self, chart: dict[str, Any], *, static: bool = True) -> None:
        self.chart = chart
        self.static = static

    @property
    def spec(self) -> dict[str, Any]:
        """The Vega-Lite spec with the chart's title and note in it (the sidebar draws those itself)."""
        spec = dict(self.chart["spec"])
        title: dict[str, Any] = {"text": self.chart["title"]}
        if self.chart.get("note"):
            title["subtitle"] = self.chart["note"]
        spec.setdefault("title", title)
        return spec

    def to_svg(self) -> str | None:
        return svg(self.spec)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        spec = self.spec
        bundle: dict[str, Any] = {
            CHART_MIME: self.chart,
            VEGALITE_MIME: fixed_width(spec),
            "text/plain": repr(self),
        }
        if self.static:
            drawn = svg(spec)
            if drawn is not None:
                bundle["image/svg+xml"] = drawn
        return bundle

    def __repr__(self) -> str:
        note = f" — {self.chart['note']}" if self.chart.get("note") else ""
        return f"<Chart {self.chart['id']}: {self.chart['title']} ({self.chart['marks']} marks){note}>"


class Charts(list):
    """Several charts shown one after another (``display(charts)`` or as a cell's value)."""

    def __init__(self, charts: list[dict[str, Any]], *, static: bool = True, title: str | None = None) -> None:
        super().__init__(Chart(c, static=static) for c in charts)
        self.title = title

    def by_id(self, chart_id: str) -> Chart:
        for chart in self:
            if chart.chart["id"] == chart_id:
                return chart
        raise KeyError(chart_id)

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        if self.title:
            display(HTML(f"<b>{html.escape(self.title)}</b>"))
        for chart in self:
            display(chart)

    def __repr__(self) -> str:
        return "\n".join(repr(c) for c in self)


def show_charts(out: Any, charts: list[dict[str, Any]]) -> None:
    """Put ``charts`` in an ipywidgets ``Output`` (live views only: no static SVG; a panel's static HTML
    covers nbconvert)."""
    out.outputs = tuple({"output_type": "display_data", "data": Chart(c, static=False)._repr_mimebundle_(), "metadata": {}}
                        for c in charts)  # fmt: skip
