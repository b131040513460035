"""Job tables on a real PostgreSQL server: validations, schedules, slot claims, a fired notebook."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from test_jobs_support import write_notebook

from mlops_nb.jobs.scheduler import Scheduler
from mlops_nb.jobs.schedules import add_schedule, next_times
from mlops_nb.store import SqlStore


@pytest.fixture(scope="module")
def pg_url():
    from pg_server import PostgresServer

    try:
        server = PostgresServer()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    url = server.start()
    yield url
    server.stop()


def test_schedule_claims_and_firing_on_postgres(pg_url, tmp_path, mlops_home):
    store = SqlStore(pg_url, str(tmp_path / "art"))
    nb = write_notebook(tmp_path / "pg.ipynb", "y = x + 1")
    with pytest.raises(Exception, match="never validated"):
        add_schedule(nb, "*/5 * * * *", store=store)
    saved = add_schedule(nb, "*/5 * * * *", force=True, reason="pg test", store=store)
    assert store.audit_log(f"schedule:{saved['name']}")[-1]["action"] == "schedule.add.forced"

    # Many claimants, one slot: exactly one wins (the unique constraint decides).
    slot = 1_000_000.0
    with ThreadPoolExecutor(4) as pool:
        winners = list(pool.map(lambda i: store.claim_firing(saved["name"], slot, f"host:{i}"), range(8)))
    assert sum(w is not None for w in winners) == 1
    store.update_firing(next(w for w in winners if w is not None), status="skipped")

    first = next_times(saved["cron"], saved["created_at"])[0]
    scheduler = Scheduler(store, clock=lambda: first + 1)
    firing = store.get_firing(scheduler.run_once()[0])
    scheduler.close()
    assert firing["status"] == "finished" and store.last_slot(saved["name"]) == first
    listed = store.list_schedules()[0]
    assert listed["last_status"] == "finished" and listed["last_slot"] == first
    job = store.get_job_run(firing["job_run_ids"][0])
    assert job["status"] == "finished" and job["parameters"] == {}
    assert store.find_validation(job["notebook_hash"]) is None
    store.close()
