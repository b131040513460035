"""The pipeline a notebook's tracked cells form, inferred from what they recorded; nobody declares it.

A cell is known by its run name (``%%mlops track --name``) or, unnamed, by its
source.  Its newest run stands for it: the data versions it read and made, the
models it trained, its metrics.  Cells are joined where one read a data
version another made (matched by content digest, so renaming a variable does
not break the join).  A cell that read a version its maker has since replaced
reads stale data: that version is marked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..report import number_text, shape_text
from ..store import schema as t
from ..store.engine import read_transaction
from .graph import Graph, graph_chart, input_flags

if TYPE_CHECKING:
    from ..store import SqlStore

MAX_RUNS = 500  # the notebook's newest tracked runs the inference reads
MAX_METRICS = 3  # metrics drawn per cell


def pipeline_chart(store: SqlStore, paths: list[str], *, title: str | None = None) -> dict[str, Any]:
    """``{"charts": [pipeline graph], "nodes", "edges", "cells"}`` for the notebook recorded under any of ``paths``."""
    runs = _notebook_runs(store, paths)
    graph, cells = infer_pipeline(runs)
    name = title or (paths[0].rsplit("/", 1)[-1] if paths else "notebook")
    note = None if cells else "no tracked cells recorded from this notebook yet (%%mlops track)"
    return {"charts": [graph_chart(graph, "pipeline", f"pipeline of {name}", note=note)], "cells": cells, **graph.to_dict()}


def _notebook_runs(store: SqlStore, paths: list[str]) -> list[dict[str, Any]]:
    """The notebook's newest runs (oldest first) with their data, models and latest metrics."""
    with read_transaction(store.engine) as conn:
        rows = [dict(r) for r in conn.execute(
            select(t.runs.c.id, t.runs.c.name, t.runs.c.source, t.runs.c.source_hash, t.runs.c.start_time,
                   t.runs.c.status, t.runs.c.warnings)
            .where(t.runs.c.notebook_path.in_(paths)).order_by(t.runs.c.start_time.desc(), t.runs.c.id)
            .limit(MAX_RUNS)).mappings()]  # fmt: skip
        by_id = {r["id"]: {**r, "inputs": [], "outputs": [], "models": [], "metrics": {}, "tags": {}} for r in rows}
        ids = list(by_id)
        for i in range(0, len(ids), 900):
            batch = ids[i:i + 900]
            for d in conn.execute(
                select(t.run_data.c.run_id, t.run_data.c.direction, t.run_data.c.name, t.run_data.c.digest,
                       t.data_versions.c.kind, t.data_versions.c.shape)
                .join(t.data_versions, t.data_versions.c.digest == t.run_data.c.digest)
                .where(t.run_data.c.run_id.in_(batch))).mappings():  # fmt: skip
                by_id[d["run_id"]]["inputs" if d["direction"] == "input" else "outputs"].append(dict(d))
            for m in conn.execute(select(t.run_models.c.run_id, t.run_models.c.name, t.run_models.c.digest,
                                         t.model_versions.c.class_name)
                                  .join(t.model_versions, t.model_versions.c.digest == t.run_models.c.digest)
                                  .where(t.run_models.c.run_id.in_(batch))):  # fmt: skip
                by_id[m.run_id]["models"].append({"name": m.name, "digest": m.digest, "class_name": m.class_name})
            for m in conn.execute(select(t.latest_metrics).where(t.latest_metrics.c.run_id.in_(batch))):
                by_id[m.run_id]["metrics"][m.key] = m.value
            for g in conn.execute(select(t.run_tags).where(t.run_tags.c.run_id.in_(batch))):
                by_id[g.run_id]["tags"][g.key] = g.value
    return sorted(by_id.values(), key=lambda r: (r["start_time"], r["id"]))


def _cell_key(run: dict[str, Any]) -> str:
    return f"name:{run['name']}" if run.get("name") else f"src:{run.get('source_hash') or run['id']}"


def _cell_label(run: dict[str, Any]) -> str:
    if run.get("name"):
        return run["name"]
    first = next((line.strip() for line in (run.get("source") or "").splitlines()
                  if line.strip() and not line.lstrip().startswith(("%%", "#"))), "")  # fmt: skip
    return first[:30] or run["id"][:8]


def infer_pipeline(runs: list[dict[str, Any]]) -> tuple[Graph, int]:
    """The graph of cells → data → models → metrics from runs (oldest first); returns it and the number of cells."""
    runs = [r for r in runs if r.get("tags", {}).get("kind") != "scoring"]
    newest: dict[str, dict[str, Any]] = {}
    for run in runs:  # oldest first: the last one seen per cell is its newest run
        newest[_cell_key(run)] = run
    made_by: dict[str, str] = {}  # data digest -> cell key of any run that made it
    current: dict[tuple[str, str], str] = {}  # (cell key, output name) -> digest its newest run made
    for run in runs:
        for item in run["outputs"]:
            made_by.setdefault(item["digest"], _cell_key(run))
    for key, run in newest.items():
        for item in run["outputs"]:
            current[(key, item["name"])] = item["digest"]
    graph = Graph()
    for key, run in newest.items():  # reading order: oldest cell first
        cell = graph.node(f"cell:{key}", "cell", _cell_label(run), run_id=run["id"], href=f"run:{run['id']}",
                          detail=f"{run['status']}, newest of its runs")  # fmt: skip
        flags = input_flags(run.get("warnings"))
        for item in run["inputs"]:
            data = graph.node(f"data:{item['digest']}", "data", item["name"], href=f"data:{item['digest']}",
                              detail=f"{shape_text(item)} {item['digest'][:8]}")  # fmt: skip
            maker = made_by.get(item["digest"])
            if maker is not None and maker != key:
                replaced = [d for (k, _n), d in current.items() if k == maker]
                if replaced and item["digest"] not in replaced:
                    graph.nodes[data]["stale"] = True
                    graph.nodes[data]["detail"] += " (its cell has made a newer version since)"
            if item["name"] in flags:
                graph.nodes[data][flags[item["name"]]] = True
            graph.edge(data, cell)
        for item in run["outputs"]:
            data = graph.node(f"data:{item['digest']}", "data", item["name"], href=f"data:{item['digest']}",
                              detail=f"{shape_text(item)} {item['digest'][:8]}")  # fmt: skip
            graph.edge(cell, data)
        last = cell
        for model in run["models"]:
            last = graph.node(f"model:{model['digest']}", "model", model["name"], href=f"model:{model['digest']}",
                              detail=model["class_name"].rsplit(".", 1)[-1])  # fmt: skip
            graph.edge(cell, last)
        for name, value in list(run["metrics"].items())[:MAX_METRICS]:
            if value is None:
                continue
            metric = graph.node(f"metric:{key}:{name}", "metric", f"{name}={number_text(value)}", run_id=run["id"],
                                detail=f"{name} of {_cell_label(run)}")  # fmt: skip
            graph.edge(last, metric)
    # A maker cell seen after its reader (re-run out of order) gets its edge now.
    for key in newest:
        for item in newest[key]["inputs"]:
            maker = made_by.get(item["digest"])
            if maker is not None and maker != key and f"cell:{maker}" in graph.nodes:
                graph.edge(f"cell:{maker}", f"data:{item['digest']}")
    return graph, len(newest)
