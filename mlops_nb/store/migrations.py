"""Schema migrations: ``MIGRATIONS[n]`` upgrades a database from version n-1 to n.

New tables need no step (they are created on open); a changed column does.
Each step runs inside the transaction that opens the store.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

MIGRATIONS: dict[int, Callable[[Connection], None]] = {}
