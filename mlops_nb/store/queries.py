"""Query-building helpers shared by the store's listing methods."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select

from . import schema as t
from .params import param_value

_CHUNK = 500  # ids per IN (...) list


def newest_first(query, table, last: int | None, *filters: tuple[Any, Any]):
    """``query`` with the given ``(column, value)`` equality filters (None values skipped),
    ordered newest first by ``start_time`` and limited to ``last`` rows."""
    for column, value in filters:
        if value is not None:
            query = query.where(column == value)
    query = query.order_by(table.c.start_time.desc(), table.c.id)
    return query if last is None else query.limit(last)


def rows(table, items: Sequence[Mapping[str, Any]], **fixed: Any) -> list[dict[str, Any]]:
    """Rows for ``table`` taken from records that hold its columns (others ignored)."""
    return [{**{c.name: item.get(c.name) for c in table.columns}, **fixed} for item in items]


def attach_run_extras(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add each run's typed ``params``, last ``metrics`` and ``tags`` to its row (``project_id`` dropped)."""
    extras = {r["id"]: {"params": {}, "metrics": {}, "tags": {}} for r in rows}
    ids = list(extras)
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        for r in conn.execute(select(t.params).where(t.params.c.run_id.in_(chunk))):
            extras[r.run_id]["params"][r.key] = param_value(r.value, r.value_type)
        for r in conn.execute(select(t.latest_metrics).where(t.latest_metrics.c.run_id.in_(chunk))):
            extras[r.run_id]["metrics"][r.key] = r.value
        for r in conn.execute(select(t.run_tags).where(t.run_tags.c.run_id.in_(chunk))):
            extras[r.run_id]["tags"][r.key] = r.value
    for row in rows:
        row.pop("project_id", None)
        row.update(extras[row["id"]])
    return rows
