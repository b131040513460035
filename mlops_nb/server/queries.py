"""Read-only queries the sidebar needs and the store's listing methods do not offer.

Runs of one notebook (by the path its kernel recorded) and names of a set of
runs; both read the store's tables through SQLAlchemy Core, like the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..store import schema as t
from ..store.engine import read_transaction
from ..store.params import param_value

if TYPE_CHECKING:
    from ..store import SqlStore


def runs_of_notebook(store: SqlStore, paths: list[str], limit: int) -> list[dict[str, Any]]:
    """Runs whose ``notebook_path`` is one of ``paths``, newest first, with params, latest metrics and tags."""
    query = (
        select(t.runs, t.projects.c.name.label("project"))
        .join(t.projects, t.projects.c.id == t.runs.c.project_id)
        .where(t.runs.c.notebook_path.in_(paths))
        .order_by(t.runs.c.start_time.desc(), t.runs.c.id)
        .limit(limit)
    )
    with read_transaction(store.engine) as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
        by_id = {r["id"]: r for r in rows}
        for r in rows:
            r.pop("project_id", None)
            r.update(params={}, metrics={}, tags={})
        if by_id:
            ids = list(by_id)
            for m in conn.execute(select(t.latest_metrics).where(t.latest_metrics.c.run_id.in_(ids))):
                by_id[m.run_id]["metrics"][m.key] = m.value
            for p in conn.execute(select(t.params).where(t.params.c.run_id.in_(ids))):
                by_id[p.run_id]["params"][p.key] = param_value(p.value, p.value_type)
            for g in conn.execute(select(t.run_tags).where(t.run_tags.c.run_id.in_(ids))):
                by_id[g.run_id]["tags"][g.key] = g.value
    return rows


def run_names(store: SqlStore, ids: list[str]) -> dict[str, str | None]:
    """``{run id: run name}`` for ``ids`` (unknown ids left out)."""
    if not ids:
        return {}
    with read_transaction(store.engine) as conn:
        return dict(conn.execute(select(t.runs.c.id, t.runs.c.name).where(t.runs.c.id.in_(ids))).all())
