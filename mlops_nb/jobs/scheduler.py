"""The embedded scheduler: fires due schedules as job runs, with timeouts and retries.

It is a process of its own (``mlops-nb scheduler``), not part of a Jupyter
server, so schedules keep firing when nobody has JupyterLab open.  Each firing
is written to the registry *before* its notebook starts, under a unique
(schedule, slot) constraint: a restarted scheduler, or a second one on the
same registry, never fires a slot twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from croniter import croniter

from ..errors import JobError, MlopsError
from .execute import run_notebook
from .schedules import CATCHUP_POLICIES, zone

if TYPE_CHECKING:
    from ..store.sql import SqlStore

log = logging.getLogger("mlops_nb.scheduler")

#: At most this many missed slots are run by the "all" catch-up policy.
MAX_CATCHUP = 100
#: Other things fired on cron slots besides notebook schedules: ``module:function(store)``
#: returning schedule-like dicts named uniquely (``monitor:NAME``) with a ``fire`` callable.
HOOKS = ("mlops_nb.monitoring.firing:monitor_schedules",)


def latest_slot(cron: str, now: float, tz: str = "UTC") -> float | None:
    """The latest slot of ``cron`` at or before ``now``."""
    # croniter's get_prev is strictly before its start; cron has minute
    # resolution, so starting one second later includes a slot exactly at now.
    it = croniter(cron, dt.datetime.fromtimestamp(now + 1, zone(tz)))
    slot = it.get_prev(float)
    return slot if slot <= now else None


def due_slots(
    cron: str, after: float, now: float, *, tz: str = "UTC", catchup: str = "one", grace: float = 60.0
) -> tuple[list[float], list[float]]:
    """Slots in ``(after, now]`` to fire, and missed slots to record as skipped.

    Parameters
    ----------
    after : float
        The last slot already handled (or the schedule's creation time).
    catchup : {"skip", "one", "all"}
        ``skip``: fire only a slot less than ``grace`` seconds old; ``one``: fire
        the latest missed slot once; ``all``: fire every missed slot (at most
        :data:`MAX_CATCHUP`).

    Returns
    -------
    (fire, skip) : lists of epoch times
        ``skip`` holds at most the latest slot not fired (recording it moves
        the schedule's cursor past the gap).
    """
    if catchup not in CATCHUP_POLICIES:
        raise MlopsError(f"Unknown catch-up policy {catchup!r}: use one of {', '.join(CATCHUP_POLICIES)}.")
    first = croniter(cron, dt.datetime.fromtimestamp(after, zone(tz))).get_next(float)
    if first > now:
        return [], []
    latest = latest_slot(cron, now, tz)
    if latest is None or latest < first:  # ``first`` is due, so it is the latest at least (float edges)
        latest = first
    if catchup == "all":
        it = croniter(cron, dt.datetime.fromtimestamp(after, zone(tz)))
        slots = []
        while (slot := it.get_next(float)) <= now:
            slots.append(slot)
            if len(slots) > MAX_CATCHUP:
                slots.pop(0)
        return slots, []
    if catchup == "skip" and now - latest > grace:
        return [], [latest]
    return [latest], []


class Scheduler:
    """Fires the registry's schedules; one instance per ``mlops-nb scheduler`` process.

    Parameters
    ----------
    store : SqlStore, optional
        Registry holding the schedules (default: the configured one).
    clock : callable
        Returns the current epoch time; tests inject a fake clock.
    sleep : callable
        Used for the backoff between retries; tests inject a no-op.
    max_concurrent : int
        Notebooks running at once; a schedule never overlaps itself.
    backoff : float
        Seconds before the first retry, doubled for each further one.
    grace : float
        How late a slot may be and still fire under the ``skip`` policy.
    catchup : str, optional
        Override every schedule's catch-up policy.
    """

    def __init__(
        self,
        store: SqlStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        max_concurrent: int = 2,
        backoff: float = 30.0,
        grace: float = 60.0,
        catchup: str | None = None,
    ) -> None:
        from ..store import get_store

        if max_concurrent < 1:
            raise MlopsError("max_concurrent must be at least 1.")
        self.store = store or get_store()
        self.clock = clock
        self.sleep = sleep
        self.backoff = backoff
        self.grace = grace
        self.catchup = catchup
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._pool = ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="mlops-nb-firing")
        self._active: dict[str, Future] = {}  # schedule name -> its running firing
        self._lock = threading.Lock()
        self._stop = threading.Event()

    # ---- one pass ------------------------------------------------------------------
    def recover(self) -> list[int]:
        """Mark firings left running by a dead scheduler on this host as ``interrupted``."""
        host = socket.gethostname()
        stale = []
        for firing in self.store.list_firings():
            if firing["status"] not in ("pending", "running", "retrying"):
                continue
            owner_host, _, pid = (firing["owner"] or "").rpartition(":")
            if owner_host == host and pid.isdigit() and not _alive(int(pid)):
                self.store.update_firing(
                    firing["id"], status="interrupted", ended_at=time.time(),
                    error=f"the scheduler process {pid} stopped while this firing ran",
                )  # fmt: skip
                log.warning("firing %s of %s: interrupted (scheduler %s is gone)", firing["id"], firing["schedule_name"], pid)
                stale.append(firing["id"])
        return stale

    def tick(self) -> list[int]:
        """Claim and start every due slot; return the ids of the firings started."""
        now = self.clock()
        started = []
        for schedule in [*self.store.list_schedules(), *hooked_schedules(self.store)]:
            name = schedule["name"]
            if schedule["paused"]:
                continue
            with self._lock:
                running = name in self._active and not self._active[name].done()
            if running:
                continue  # no overlap: the slot is picked up (per catch-up policy) once it ends
            after = max(schedule["created_at"], schedule["last_slot"] or 0.0)
            try:
                fire, skip = due_slots(
                    schedule["cron"], after, now, tz=schedule["timezone"],
                    catchup=self.catchup or schedule["catchup"], grace=self.grace,
                )  # fmt: skip
            except MlopsError as exc:
                log.error("schedule %s: %s", name, exc)
                continue
            for slot in skip:
                if self.store.claim_firing(name, slot, self.owner, status="skipped") is not None:
                    log.info("schedule %s: slot %s skipped (missed; catch-up policy skip)", name, _iso(slot))
            firing_ids = [fid for slot in fire if (fid := self._claim(name, slot)) is not None]
            # Manual triggers (mlops-nb schedule trigger) run like due slots, after them.
            firing_ids += self.store.claim_requested(name, self.owner)
            if firing_ids:
                future = self._pool.submit(self._fire_all, schedule, firing_ids)
                with self._lock:
                    self._active[name] = future
                started.extend(firing_ids)
        return started

    def _claim(self, name: str, slot: float) -> int | None:
        firing_id = self.store.claim_firing(name, slot, self.owner)
        if firing_id is None:
            log.info("schedule %s: slot %s already claimed elsewhere", name, _iso(slot))
        else:
            log.info("schedule %s: firing %s claimed for slot %s", name, firing_id, _iso(slot))
        return firing_id

    def _fire_all(self, schedule: dict[str, Any], firing_ids: list[int]) -> None:
        for firing_id in firing_ids:  # catch-up "all": one after the other, never overlapping
            try:
                # A hooked schedule (a monitor) brings its own firing; notebook schedules run the notebook.
                (schedule.get("fire") or Scheduler.fire)(self, schedule, firing_id)
            except Exception as exc:  # keep the scheduler alive whatever one firing does
                log.exception("firing %s of %s crashed", firing_id, schedule["name"])
                self.store.update_firing(firing_id, status="failed", error=str(exc), ended_at=time.time())

    def fire(self, schedule: dict[str, Any], firing_id: int) -> str:
        """Run one claimed firing: hash check, attempts with backoff; return the final status."""
        name = schedule["name"]
        job_run_ids: list[str] = []
        attempts = 1 + (schedule["retries"] or 0)
        status = "failed"
        for attempt in range(1, attempts + 1):
            started = {"started_at": time.time()} if attempt == 1 else {}
            self.store.update_firing(firing_id, status="running", attempts=attempt, job_run_ids=job_run_ids, **started)
            log.info("firing %s of %s: attempt %d/%d running", firing_id, name, attempt, attempts)
            try:  # the hash is checked on every attempt: retries come minutes later
                run = run_notebook(
                    schedule["notebook_path"], schedule["parameters"] or {}, timeout=schedule["timeout"],
                    kernel=schedule["kernel"], store=self.store, schedule_name=name, firing_id=firing_id,
                    attempt=attempt, expected_hash=schedule["notebook_hash"],
                )  # fmt: skip
            except JobError as exc:  # changed since validation, moved or unreadable: never run it
                self.store.update_firing(firing_id, status="refused", job_run_ids=job_run_ids, error=str(exc), ended_at=time.time())
                log.error("firing %s of %s: refused: %s", firing_id, name, exc)
                return "refused"
            job_run_ids.append(run.id)
            status = run.status
            if run.ok:
                self.store.update_firing(firing_id, status="finished", job_run_ids=job_run_ids, error=None, ended_at=time.time())
                log.info("firing %s of %s: finished (job run %s)", firing_id, name, run.id[:8])
                return "finished"
            error = run.describe_failure()
            if attempt < attempts:
                delay = self.backoff * 2 ** (attempt - 1)
                self.store.update_firing(firing_id, status="retrying", job_run_ids=job_run_ids, error=error)
                log.warning("firing %s of %s: attempt %d %s (%s); retrying in %.0f s", firing_id, name, attempt,
                            run.status, error, delay)  # fmt: skip
                self.sleep(delay)
            else:
                self.store.update_firing(firing_id, status=status, job_run_ids=job_run_ids, error=error, ended_at=time.time())
                log.error("firing %s of %s: %s after %d attempt(s): %s", firing_id, name, status, attempt, error)
        return status

    # ---- the loop ----------------------------------------------------------------------
    def wait(self) -> None:
        """Block until every started firing (retries included) has ended."""
        while True:
            with self._lock:
                pending = [f for f in self._active.values() if not f.done()]
            if not pending:
                return
            for future in pending:
                future.result()

    def run_once(self) -> list[int]:
        """Recover, fire what is due now, wait for it: ``mlops-nb scheduler --once``."""
        self.recover()
        started = self.tick()
        self.wait()
        return started

    def run_forever(self, poll: float = 30.0) -> None:
        """Tick every ``poll`` seconds until :meth:`stop`; running firings are waited for."""
        self.recover()
        log.info("scheduler %s started (poll %.0f s)", self.owner, poll)
        try:
            while not self._stop.is_set():
                try:
                    self.tick()
                except MlopsError as exc:  # e.g. the database is briefly unreachable
                    log.error("scheduler tick failed: %s", exc)
                self._stop.wait(poll)
        finally:
            log.info("scheduler %s stopping; waiting for running notebooks", self.owner)
            self.wait()
            self._pool.shutdown()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.wait()
        self._pool.shutdown()


def hooked_schedules(store: SqlStore) -> list[dict[str, Any]]:
    """Schedule-like entries of :data:`HOOKS` (each with its own ``fire(scheduler, schedule, firing_id)``)."""
    import importlib

    out: list[dict[str, Any]] = []
    for hook in HOOKS:
        module, _, function = hook.partition(":")
        try:
            out.extend(getattr(importlib.import_module(module), function)(store))
        except MlopsError as exc:  # one broken source must not stop notebook schedules
            log.error("scheduler hook %s: %s", hook, exc)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="minutes")
