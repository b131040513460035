"""Runs whose process has ended are marked ``interrupted`` when a store opens."""

from __future__ import annotations

import logging
import os

from sqlalchemy import select

from ..errors import StoreError
from ..processes import host_name, process_gone
from . import schema as t
from .engine import read_transaction

log = logging.getLogger("mlops_nb.store")


def reap_dead_runs(store) -> int:
    """Mark ``running`` runs of this host whose process has ended as ``interrupted``; return how many.

    Only reads when nothing is to be done.  A store that cannot be written
    (read-only file, damaged pages) is left as it is: reaping must never stop
    a store from opening.
    """
    host = host_name()
    runs = t.runs
    try:
        with read_transaction(store.engine) as conn:
            rows = conn.execute(
                select(runs.c.id, runs.c.pid, runs.c.process_start).where(
                    runs.c.status == "running", runs.c.host == host, runs.c.pid.is_not(None)
                )
            ).all()
        dead = [r.id for r in rows if r.pid != os.getpid() and process_gone(r.pid, r.process_start)]
        if not dead:
            return 0
        return store.interrupt_runs(
            dead, f"the process recording the run ended on {host} before the run finished (killed or crashed)"
        )
    except StoreError as exc:
        log.debug("could not check for runs of ended processes: %s", exc)
        return 0
