"""A small DAG drawn with Vega-Lite: layers left to right, edges as curves, nodes as labelled shapes.

Vega-Lite has no graph layout, so positions are computed here: a node's layer
is the longest path from a source (longest-path layering), and nodes within a
layer are ordered by the mean position of their parents (one barycentre sweep),
which keeps most edges from crossing on the graphs lineage makes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from .vega import COUNTED, chart, empty, spec, tooltip

#: Shape and colour of each kind of node.
KINDS: dict[str, tuple[str, str]] = {
    "cell": ("square", "#72b7b2"),
    "data": ("circle", "#4c78a8"),
    "run": ("diamond", "#f58518"),
    "model": ("triangle-up", "#54a24b"),
    "registered": ("triangle-up", "#2e7d32"),
    "alias": ("square", "#b279a2"),
    "scoring": ("diamond", "#9d755d"),
    "metric": ("circle", "#e45756"),
}
_X_GAP, _Y_GAP = 150, 46


@dataclass
class Graph:
    """Nodes ``{"id", "kind", "label", ...}`` (extra keys, e.g. ``run_id`` or ``href``, ride along) and edges."""

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)

    def node(self, id: str, kind: str, label: str, **extra: Any) -> str:  # noqa: A002
        """Add (or update) a node; returns its id."""
        current = self.nodes.setdefault(id, {"id": id, "kind": kind, "label": label, "stale": False, "hidden": False})
        current.update({k: v for k, v in extra.items() if v is not None})
        return id

    def edge(self, source: str, target: str) -> None:
        if source != target and (source, target) not in self.edges:
            self.edges.append((source, target))

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": list(self.nodes.values()), "edges": [{"source": s, "target": d} for s, d in self.edges]}


def input_flags(warnings: Any) -> dict[str, str]:
    """``{input name: "stale" | "hidden"}`` from a run's lineage warnings (out-of-order inputs count as stale)."""
    flags = {}
    for w in warnings or []:
        if isinstance(w, dict) and w.get("name"):
            kind = str(w.get("kind") or "")
            flags[w["name"]] = "hidden" if "hidden" in kind else "stale"
    return flags


def layout(graph: Graph) -> dict[str, tuple[float, float]]:
    """``{node id: (x, y)}``: longest-path layers left to right, barycentre order top to bottom."""
    parents: dict[str, list[str]] = defaultdict(list)
    for s, d in graph.edges:
        parents[d].append(s)
    layer: dict[str, int] = {}

    def depth(node: str, seen: frozenset[str] = frozenset()) -> int:
        if node not in layer:
            ups = [p for p in parents[node] if p not in seen]  # a cycle (never expected) cannot recurse forever
            layer[node] = 1 + max((depth(p, seen | {node}) for p in ups), default=-1)
        return layer[node]

    for node in graph.nodes:
        depth(node)
    columns: dict[int, list[str]] = defaultdict(list)
    for node in graph.nodes:  # insertion order first: the caller adds nodes in reading order
        columns[layer[node]].append(node)
    pos: dict[str, tuple[float, float]] = {}
    for i in sorted(columns):
        nodes = columns[i]
        if i > 0:
            def centre(n: str, _i: int = i) -> float:
                ys = [pos[p][1] for p in parents[n] if p in pos]
                return sum(ys) / len(ys) if ys else float("inf")

            nodes.sort(key=centre)
        for j, node in enumerate(nodes):
            pos[node] = (i * _X_GAP, j * _Y_GAP)
    return pos


def graph_chart(graph: Graph, id: str, title: str, *, note: str | None = None) -> dict[str, Any]:  # noqa: A002
    """The graph as a chart: curved edges, nodes by kind (stale inputs outlined red, hidden ones dashed)."""
    if not graph.nodes:
        return empty(id, title, "nothing recorded to draw yet")
    pos = layout(graph)
    nodes = []
    for node in graph.nodes.values():
        x, y = pos[node["id"]]
        shape, color = KINDS.get(node["kind"], ("circle", "#999"))
        nodes.append({**node, "x": x, "y": y, "shape": shape, "color": color,
                      "text": node["label"] if len(node["label"]) <= 24 else node["label"][:23] + "…"})  # fmt: skip
    edges = []
    for k, (s, d) in enumerate(graph.edges):
        (x1, y1), (x2, y2) = pos[s], pos[d]
        # three points per edge, bent halfway, drawn as one monotone line per edge
        for step, (x, y) in enumerate(((x1, y1), ((x1 + x2) / 2, (y1 + y2) / 2), (x2, y2))):
            edges.append({"edge": k, "step": step, "x": x, "y": y})
    height = max(len([1 for v in pos.values() if v[0] == x]) for x in {v[0] for v in pos.values()}) * _Y_GAP + 20
    width = (max(x for x, _ in pos.values()) + _X_GAP) or _X_GAP
    x = {"field": "x", "type": "quantitative", "axis": None, "scale": {"domain": [-20, width]}}
    y = {"field": "y", "type": "quantitative", "axis": None,
         "scale": {"domain": [-_Y_GAP / 2, max(height - _Y_GAP / 2, _Y_GAP)], "reverse": True}}  # fmt: skip
    kinds = sorted({n["kind"] for n in nodes})
    doc = spec({
        "layer": [
            {"data": {"values": edges}, "mark": {"type": "line", "color": "#aaa", "strokeWidth": 1.2, "interpolate": "monotone"},
             "encoding": {"x": x, "y": y, "detail": {"field": "edge"}, "order": {"field": "step"}}},
            {"name": COUNTED, "mark": {"type": "point", "filled": True, "size": 220, "cursor": "pointer", "strokeWidth": 2},
             "encoding": {
                 "x": x, "y": y,
                 "shape": {"field": "kind", "type": "nominal", "scale": {"domain": kinds, "range": [KINDS[k][0] for k in kinds]},
                           "legend": {"orient": "bottom", "title": None}},
                 "color": {"field": "kind", "type": "nominal", "scale": {"domain": kinds, "range": [KINDS[k][1] for k in kinds]},
                           "legend": {"orient": "bottom", "title": None}},
                 "stroke": {"condition": {"test": "datum.stale", "value": "#d62728"}, "value": None},
                 "strokeDash": {"condition": {"test": "datum.hidden", "value": [3, 2]}, "value": [1, 0]},
                 "opacity": {"condition": {"test": "datum.hidden", "value": 0.55}, "value": 1},
                 "tooltip": tooltip("kind", "label", "detail"),
             }},
            {"mark": {"type": "text", "dy": -15, "fontSize": 10},
             "encoding": {"x": x, "y": y, "text": {"field": "text"}}},
        ]
    }, values=nodes, width=max(width, 240), height=max(height, 80))  # fmt: skip
    return chart(id, title, doc, len(nodes), note)
