"""Schema migrations: ``MIGRATIONS[n]`` upgrades a database from version n-1 to n.

New tables need no step (they are created on open); a changed column does.
Each step runs inside the transaction that opens the store.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import Connection, Index, select

from . import schema as t


def _add_columns(conn: Connection, table, names: list[str]) -> None:
    existing = {c["name"] for c in conn.dialect.get_columns(conn, table.name)}
    for name in names:
        if name in existing:
            continue
        column = table.c[name]
        kind = column.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{name}" {kind}')


def _create_index(conn: Connection, index: Index) -> None:
    index.create(conn, checkfirst=True)


def _to_v2(conn: Connection) -> None:
    """Run warnings and owning process, typed params, latest metrics, keyed audit events."""
    from .params import PARAM_FIELDS, param_columns

    _add_columns(conn, t.runs, ["warnings", "host", "pid", "process_start"])
    _add_columns(conn, t.params, ["value_type", "value_num"])
    _add_columns(conn, t.audit_events, ["mac"])
    for index in (*t.runs.indexes, *t.params.indexes):
        _create_index(conn, index)
    for row in conn.execute(select(t.params.c.run_id, t.params.c.key, t.params.c.value)).all():
        value = row.value
        try:  # version 1 wrote non-strings as JSON and strings as they were
            decoded = json.loads(value) if value is not None else None
        except ValueError:
            decoded = value
        conn.execute(
            t.params.update()
            .where(t.params.c.run_id == row.run_id, t.params.c.key == row.key)
            .values(**dict(zip(PARAM_FIELDS, param_columns(decoded))))
        )
    latest: dict[tuple[str, str], tuple[float, int | None]] = {}
    for row in conn.execute(select(t.metrics.c.run_id, t.metrics.c.key, t.metrics.c.value, t.metrics.c.step).order_by(t.metrics.c.id)):
        latest[(row.run_id, row.key)] = (row.value, row.step)
    if latest:
        conn.execute(
            t.latest_metrics.insert(),
            [{"run_id": r, "key": k, "value": v, "step": s} for (r, k), (v, s) in latest.items()],
        )


MIGRATIONS: dict[int, Callable[[Connection], None]] = {2: _to_v2}
