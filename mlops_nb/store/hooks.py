"""Callbacks the store runs before it reads, so layers above it take part without being imported.

A Jupyter kernel writes its runs in the background (:mod:`mlops_nb.tracking.writer`);
a read in that kernel must see them.  The writer registers its ``wait`` here;
every connection the store opens runs the barriers first.  This module imports
nothing, so registering costs the kernel no SQLAlchemy import.
"""

from __future__ import annotations

from collections.abc import Callable

_read_barriers: list[Callable[[], None]] = []


def add_read_barrier(barrier: Callable[[], None]) -> None:
    """Call ``barrier()`` before every connection a store opens in this process (once per callable)."""
    if barrier not in _read_barriers:
        _read_barriers.append(barrier)


def run_read_barriers() -> None:
    """Run every registered barrier, in the order they were added."""
    for barrier in list(_read_barriers):
        barrier()
