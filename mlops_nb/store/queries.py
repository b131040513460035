"""Query-building helpers shared by the store's listing methods."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


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
