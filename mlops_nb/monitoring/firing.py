"""Monitors fired by the embedded scheduler (``mlops-nb scheduler``), next to notebook schedules.

:func:`monitor_schedules` gives the scheduler one schedule-like entry per
monitor, named ``monitor:NAME`` in the firings table, so each cron slot fires
once (same claim, catch-up and restart rules as notebook schedules) and a
firing runs :func:`fire_monitor` instead of a notebook.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from ..errors import MlopsError
from ..store.monitoring import FIRING_PREFIX

if TYPE_CHECKING:
    from ..jobs.scheduler import Scheduler
    from ..store import SqlStore

log = logging.getLogger("mlops_nb.monitor")


def monitor_schedules(store: SqlStore) -> list[dict[str, Any]]:
    """Schedule-like entries for :meth:`Scheduler.tick`, one per monitor."""
    out = []
    for m in store.list_monitors():
        out.append({
            "name": FIRING_PREFIX + m["name"], "monitor": m["name"], "cron": m["cron"], "timezone": m["timezone"],
            "paused": m["paused"], "created_at": m["created_at"], "last_slot": m["last_slot"], "catchup": "one",
            "fire": fire_monitor,
        })  # fmt: skip
    return out


def fire_monitor(scheduler: Scheduler, schedule: dict[str, Any], firing_id: int) -> str:
    """Run one claimed firing of a monitor: one check; the firing records its outcome."""
    return run_firing(scheduler.store, schedule["monitor"], firing_id)


def run_firing(store: SqlStore, name: str, firing_id: int) -> str:
    from .checks import check_monitor

    store.update_firing(firing_id, status="running", attempts=1, started_at=time.time())
    try:
        result = check_monitor(name, firing_id=firing_id, store=store)
    except MlopsError as exc:
        store.update_firing(firing_id, status="failed", error=str(exc), ended_at=time.time())
        log.error("monitor %s: check failed: %s", name, exc)
        return "failed"
    jobs = [result.job_run_id] if result.job_run_id else []
    status = "failed" if result.decision == "retrain_failed" else "finished"
    store.update_firing(firing_id, status=status, job_run_ids=jobs, error=None if status == "finished" else result.reason,
                        ended_at=time.time())  # fmt: skip
    log.info("monitor %s: %s — %s", name, result.decision, result.reason)
    return status


def check_now(name: str, *, force: bool = False, store: SqlStore | None = None):
    """Fire monitor ``name`` now, in this process (``mlops-nb monitor check``); its result.

    ``force`` checks the newest data even when an earlier check already saw it.
    """
    from ..store import get_store
    from .checks import check_monitor

    store = store or get_store()
    store.get_monitor(name)  # a clear error for an unknown name, before a firing is recorded
    owner = f"{socket.gethostname()}:{os.getpid()}"
    firing_id = store.claim_firing(FIRING_PREFIX + name, time.time(), owner, status="running")
    store.update_firing(firing_id, attempts=1, started_at=time.time())
    try:
        result = check_monitor(name, firing_id=firing_id, force=force, store=store)
    except MlopsError as exc:
        store.update_firing(firing_id, status="failed", error=str(exc), ended_at=time.time())
        raise
    status = "failed" if result.decision == "retrain_failed" else "finished"
    store.update_firing(firing_id, status=status, job_run_ids=[result.job_run_id] if result.job_run_id else [],
                        error=None if status == "finished" else result.reason, ended_at=time.time())  # fmt: skip
    return result
