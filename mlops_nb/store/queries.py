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


def insert_many(conn: Connection, table, columns: tuple[str, ...], values: Sequence[Sequence[Any]]) -> None:
    """Insert ``values`` (one sequence per row, in ``columns`` order) into ``table`` in one executemany.

    A run's params and metrics are dozens of rows written per run; SQLAlchemy's per-row parameter
    handling cost twice the driver's own work for them. So the INSERT is compiled by SQLAlchemy
    once per dialect, each value goes through its column type's bind processor as SQLAlchemy
    would pass it, and the rows go to the driver as they are.
    """
    if not values:
        return
    dialect = conn.dialect
    key = (dialect.name, dialect.driver, table.name, columns)
    plan = _INSERTS.get(key)
    if plan is None:
        compiled = table.insert().compile(dialect=dialect, column_keys=list(columns))
        order = [columns.index(name) for name in compiled.positiontup] if compiled.positional else range(len(columns))
        steps = tuple((i, table.c[columns[i]].type.dialect_impl(dialect).bind_processor(dialect)) for i in order)
        # Rows that go to the driver as they are: positional, in columns order, no value to convert.
        as_given = compiled.positional and list(order) == list(range(len(columns))) and not any(f for _, f in steps)
        plan = _INSERTS[key] = (str(compiled), compiled.positional, steps, as_given)
    sql, positional, steps, as_given = plan
    if as_given:
        params: list = values if isinstance(values, list) else list(values)
    elif positional:
        params = [tuple(row[i] if f is None or row[i] is None else f(row[i]) for i, f in steps) for row in values]
    else:
        params = [{columns[i]: row[i] if f is None or row[i] is None else f(row[i]) for i, f in steps} for row in values]
    conn.exec_driver_sql(sql, params)


_INSERTS: dict[tuple, tuple[str, bool, tuple, bool]] = {}


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
