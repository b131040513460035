"""Lineage as a graph: data versions → runs → model versions → registered versions and aliases → scoring runs.

From one record (a run, a data version or a model) the walk goes upstream to
the raw data and downstream to what used it, over the edges the store keeps.
Inputs a run's staleness check flagged are marked (``stale``/``hidden``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..errors import NotFoundError
from ..report import metrics_text, shape_text
from ..store import schema as t
from ..store.engine import read_transaction
from .graph import Graph, graph_chart, input_flags

if TYPE_CHECKING:
    from ..store import SqlStore

MAX_NODES = 120  # beyond this the picture stops helping; the note says it was cut
_MAX_DEPTH = 8


def lineage_chart(store: SqlStore, ref: str) -> dict[str, Any]:
    """``{"charts": [lineage graph], "nodes", "edges", "root"}`` for ``ref``.

    ``ref``: a run id (or ``run:ID``), ``data:DIGEST``, ``model:NAME@ALIAS``,
    ``model:NAME/3`` (or ``NAME:3``) or ``model:DIGEST``; unique prefixes do.
    """
    walk = _Walk(store)
    root = walk.start(ref.strip())
    note = f"cut at {MAX_NODES} nodes" if walk.cut else None
    return {"charts": [graph_chart(walk.graph, "lineage", f"lineage of {walk.graph.nodes[root]['label']}", note=note)],
            "root": root, **walk.graph.to_dict()}  # fmt: skip


class _Walk:
    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.graph = Graph()
        self.cut = False
        self._runs: dict[str, dict[str, Any]] = {}
        self._up: set[str] = set()

    def start(self, ref: str) -> str:
        if ref.startswith("data:"):
            digest = self.store.get_data_version(ref[5:])["digest"]
            node = self.data(digest, None, 0)
            for reader in self.store.data_lineage(digest)["read_by"]:
                self.graph.edge(node, self.run(reader, 0, upstream=False))
            return node
        if ref.startswith("model:"):
            return self.model_root(ref[6:])
        key = ref[4:] if ref.startswith("run:") else ref
        if not key:
            raise NotFoundError(f"Cannot draw the lineage of {ref!r}: give a run id, data:DIGEST or model:NAME@ALIAS.", ref=ref)
        return self.run(self.store.resolve_run_id(key), 0, upstream=True, downstream=True)

    # ---- nodes ---------------------------------------------------------------------------
    def full(self) -> bool:
        if len(self.graph.nodes) >= MAX_NODES:
            self.cut = True
        return self.cut

    def get_run(self, run_id: str) -> dict[str, Any]:
        if run_id not in self._runs:
            self._runs[run_id] = self.store.get_run(run_id)
        return self._runs[run_id]

    def run(self, run_id: str, depth: int, *, upstream: bool = True, downstream: bool = False) -> str:
        run = self.get_run(run_id)
        scoring = run["tags"].get("kind") == "scoring"
        node = self.graph.node(
            f"run:{run_id}", "scoring" if scoring else "run", run["name"] or run_id[:8], run_id=run_id, href=f"run:{run_id}",
            detail=f"{run['status']} {metrics_text(run['metrics'])}".strip(),
        )  # fmt: skip
        flags = input_flags(run.get("warnings"))
        if upstream and node not in self._up and depth < _MAX_DEPTH:
            self._up.add(node)
            for item in run["inputs"]:
                if self.full():
                    break
                data = self.data(item["digest"], item, depth + 1, exclude=run_id, name=item["name"])
                if item["name"] in flags:
                    self.graph.nodes[data][flags[item["name"]]] = True
                self.graph.edge(data, node)
        if downstream:
            self.downstream(run, node, depth)
        return node

    def data(self, digest: str, info: dict[str, Any] | None, depth: int, *, exclude: str | None = None, name: str = "") -> str:
        info = info or self.store.get_data_version(digest)
        node = self.graph.node(f"data:{digest}", "data", name or digest[:8], href=f"data:{digest}",
                               detail=f"{shape_text(info)} {digest[:8]}")  # fmt: skip
        if depth < _MAX_DEPTH:
            for producer in self.store.data_lineage(digest)["produced_by"]:
                if producer != exclude and not self.full():
                    self.graph.edge(self.run(producer, depth + 1), node)
        return node

    def model(self, digest: str, run_id: str | None, depth: int, class_name: str) -> str:
        node = self.graph.node(f"model:{digest}", "model", class_name.rsplit(".", 1)[-1], href=f"model:{digest}",
                               detail=digest[:12])  # fmt: skip
        if run_id and depth < _MAX_DEPTH:
            self.graph.edge(self.run(run_id, depth + 1), node)
        return node

    def model_root(self, key: str) -> str:
        from ..registry import get_model_version
        from ..registry.lineage import model_key

        version = get_model_version(model_key(key), store=self.store)
        row = self.store.get_model_version(version.digest)
        node = self.model(row["digest"], row.get("run_id"), 0, row["class_name"])
        self.registered(row["digest"], node)
        return node

    def downstream(self, run: dict[str, Any], node: str, depth: int) -> None:
        for item in run["outputs"]:
            data = self.data(item["digest"], item, _MAX_DEPTH, name=item["name"])
            self.graph.edge(node, data)
            for reader in self.store.data_lineage(item["digest"])["read_by"]:
                if reader != run["id"] and not self.full():
                    self.graph.edge(data, self.run(reader, _MAX_DEPTH, upstream=False))
        for model in run["models"]:
            m = self.model(model["digest"], None, depth, model["class_name"])
            self.graph.edge(node, m)
            self.registered(model["digest"], m)

    def registered(self, digest: str, model_node: str) -> None:
        """Registered versions of a model version, the aliases on them and the scoring runs that used them."""
        for row in self.store.registry_versions_of_digest(digest):
            name, version = row["name"], row["version"]
            reg = self.graph.node(f"registered:{name}/{version}", "registered", f"{name} v{version}", model=name,
                                  version=version, href=f"model:{name}/{version}")  # fmt: skip
            self.graph.edge(model_node, reg)
            with read_transaction(self.store.engine) as conn:
                aliases = [r[0] for r in conn.execute(select(t.model_aliases.c.alias).where(
                    t.model_aliases.c.name == name, t.model_aliases.c.version == version))]  # fmt: skip
                scorers = [r[0] for r in conn.execute(
                    select(t.run_tags.c.run_id).where(t.run_tags.c.key == "model", t.run_tags.c.value == name)
                    .where(t.run_tags.c.run_id.in_(select(t.run_tags.c.run_id).where(
                        t.run_tags.c.key == "model_version", t.run_tags.c.value == str(version))))
                    .limit(20))]  # fmt: skip
            for alias in aliases:
                self.graph.edge(reg, self.graph.node(f"alias:{name}@{alias}", "alias", f"@{alias}", model=name,
                                                     version=version, href=f"model:{name}@{alias}"))  # fmt: skip
            for scorer in scorers:
                if not self.full():
                    self.graph.edge(reg, self.run(scorer, _MAX_DEPTH, upstream=False))
