"""Lineage: where a model, data version or run came from, and what used it.

Walks the edges the store already keeps (runs read and produced data versions;
runs produced model versions) upstream from one record, so that a model can be
traced back through its training run to the raw data that run's inputs were
made from, and downstream to the runs that read what it produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError
from ..report import metrics_text, shape_text

if TYPE_CHECKING:
    from ..store import SqlStore

_MAX_DEPTH = 12


@dataclass
class LineageNode:
    """One record in a lineage tree: a ``run``, ``data`` or ``model`` version."""

    kind: str
    id: str
    label: str
    children: list[LineageNode] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "label": self.label, "children": [c.to_dict() for c in self.children]}


@dataclass
class Lineage:
    """Upstream tree of a record and the runs downstream of it (``read_by``)."""

    root: LineageNode
    read_by: list[str]

    def __repr__(self) -> str:
        lines = [_node_line(self.root)]
        _render(self.root, "", lines)
        if self.read_by:
            lines.append("used by runs " + ", ".join(r[:8] for r in self.read_by))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root.to_dict(), "read_by": self.read_by}


def model_key(key: str) -> str:
    """A model reference as get_model_version reads it: ``NAME/3`` (the sidebar's and charts' form) is ``NAME:3``."""
    return key.replace("/", ":", 1) if "/" in key and "@" not in key else key


def lineage(ref: str, *, store: SqlStore | None = None) -> Lineage:
    """Trace ``ref`` upstream and list its downstream runs.

    Parameters
    ----------
    ref : str
        ``run:ID``, ``data:DIGEST``, ``model:DIGEST`` (unique prefixes are
        enough), ``model:NAME@ALIAS``, ``model:NAME:VERSION``, or a bare run id.
    """
    from ..store import get_store

    store = store or get_store()
    kind, _, key = ref.partition(":") if ":" in ref else ("run", "", ref)
    walker = _Walker(store)
    if kind == "run":
        run = store.get_run(key)
        return Lineage(walker.run(run, 0), _downstream(store, run))
    if kind == "data":
        version = store.get_data_version(key)
        return Lineage(walker.data(version["digest"], version, "", 0), store.data_lineage(version["digest"])["read_by"])
    if kind == "model":
        from .versions import get_model_version

        digest = get_model_version(model_key(key), store=store).digest  # NAME@ALIAS, NAME:3 or a digest
        return Lineage(walker.model(store.get_model_version(digest), 0), [])
    raise NotFoundError(
        f"Cannot trace {ref!r}: use run:ID, data:DIGEST or model:DIGEST (a unique prefix is enough).", ref=ref
    )


class _Walker:
    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.seen_runs: set[str] = set()

    def run(self, run: dict[str, Any], depth: int) -> LineageNode:
        label = f"{run['name'] or '-'} {run['status']} {metrics_text(run['metrics'])}".rstrip()
        node = LineageNode("run", run["id"], label)
        if run["id"] in self.seen_runs or depth >= _MAX_DEPTH:
            node.label += " (shown above)"
            return node
        self.seen_runs.add(run["id"])
        for item in run["inputs"]:
            node.children.append(self.data(item["digest"], item, item["name"], depth + 1, exclude=run["id"]))
        return node

    def data(self, digest: str, info: dict[str, Any], name: str, depth: int, exclude: str | None = None) -> LineageNode:
        node = LineageNode("data", digest, f"{name + ' ' if name else ''}{shape_text(info)}")
        producers = [r for r in self.store.data_lineage(digest)["produced_by"] if r != exclude]
        for run_id in producers:
            node.children.append(self.run(self.store.get_run(run_id), depth + 1))
        return node

    def model(self, version: dict[str, Any], depth: int) -> LineageNode:
        node = LineageNode("model", version["digest"], version["class_name"].rsplit(".", 1)[-1])
        if version.get("run_id"):
            node.children.append(self.run(self.store.get_run(version["run_id"]), depth + 1))
        return node


def _downstream(store: SqlStore, run: dict[str, Any]) -> list[str]:
    readers: set[str] = set()
    for item in run["outputs"]:
        readers.update(store.data_lineage(item["digest"])["read_by"])
    readers.discard(run["id"])
    return sorted(readers)


def _node_line(node: LineageNode) -> str:
    return f"{node.kind} {node.id[:8]} {node.label}"


def _render(parent: LineageNode, prefix: str, lines: list[str]) -> None:
    for i, child in enumerate(parent.children):
        last = i == len(parent.children) - 1
        relation = {"run": "trained by " if parent.kind == "model" else "made by ", "data": "read "}[child.kind]
        lines.append(f"{prefix}{'└─ ' if last else '├─ '}{relation}{_node_line(child)}")
        _render(child, prefix + ("   " if last else "│  "), lines)
