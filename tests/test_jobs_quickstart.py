"""The quickstart notebook end to end through the real `mlops-nb` command.

validate → run with parameters → 4-combination batch on 2 workers → schedule
→ `mlops-nb scheduler --once`; every step must show up in the registry.
"""

from __future__ import annotations

import datetime
import subprocess

import pytest
from sqlalchemy import update
from test_jobs_support import MLOPS_NB, ROOT, child_env

from mlops_nb import config
from mlops_nb.store import clear_cache, get_store
from mlops_nb.store import schema as t

QUICKSTART = ROOT / "notebooks" / "quickstart.ipynb"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    home = tmp_path_factory.mktemp("quickstart") / "mlops"
    env = child_env(home)

    def cli(*args: str, expect: int = 0) -> str:
        done = subprocess.run([str(MLOPS_NB), *args], env=env, cwd=home.parent, capture_output=True, text=True, timeout=300)
        assert done.returncode == expect, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        return done.stdout

    config.reset()
    clear_cache()
    store = get_store(f"sqlite:///{home / 'registry.db'}", str(home / "artifacts"))
    yield cli, store
    clear_cache()


def test_quickstart_validates_runs_batches_and_fires(registry):
    cli, store = registry

    checks = cli("validate", str(QUICKSTART), "--timeout", "120")
    assert "PASSED: 7/7" in checks and "4 tracked runs" in checks
    assert store.list_runs() == []  # validation runs stay out of the registry

    out = cli("run", str(QUICKSTART), "-p", "C", "0.5", "-p", "max_depth", "3", "--no-progress")
    job = store.list_job_runs()[0]
    assert job["status"] == "finished" and job["parameters"] == {"C": 0.5, "max_depth": 3}
    runs = {r["name"]: r for r in store.list_runs(job_run_id=job["id"])}
    assert set(runs) == {"prepare-data", "train-logreg", "train-forest", "retrain-logreg"} and set(job["run_ids"]) == {r["id"] for r in runs.values()}
    assert {"accuracy", "f1"} <= set(runs["train-logreg"]["metrics"]) and "roc_auc" in runs["train-forest"]["metrics"]
    assert runs["train-forest"]["project"] == "quickstart" and f"job run {job['id']}" in out

    table = cli("batch", str(QUICKSTART), "-p", "C", "0.1,1.0", "-p", "max_depth", "2,4", "--workers", "2", "--no-progress")
    batch = store.list_batches()[0]
    assert batch["status"] == "finished" and batch["n_total"] == 4 and batch["backend"] == "local:2"
    assert "train-logreg.accuracy" in table and "train-forest.accuracy" in table and "roc_auc" in table
    assert "4/4 finished" in table
    members = store.list_job_runs(batch_id=batch["id"])
    assert sorted((j["parameters"]["C"], j["parameters"]["max_depth"]) for j in members) == [
        (0.1, 2), (0.1, 4), (1.0, 2), (1.0, 4)]  # fmt: skip
    assert len(store.list_runs(batch_id=batch["id"])) == 16

    # A daily slot ten minutes ago: the next one is a day away, so the second pass below cannot meet a fresh slot
    # however slowly this test runs (a */10 cron crossed a boundary between the two passes once).
    slot = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10)
    assert "nightly" in cli("schedule", "add", str(QUICKSTART), "--cron", f"{slot.minute} {slot.hour} * * *",
                            "--name", "nightly", "--retries", "1", "--timeout", "300")  # fmt: skip
    # Pretend it was added 20 minutes ago, so that the slot is due now.
    store._write(lambda conn: conn.execute(
        update(t.job_schedules).where(t.job_schedules.c.name == "nightly")
        .values(created_at=t.job_schedules.c.created_at - 1200)))  # fmt: skip
    fired = cli("scheduler", "--once")
    assert "nightly: slot" in fired and "finished after 1 attempt" in fired
    assert "nothing due" in cli("scheduler", "--once")  # restart: the slot is not fired again
    history = cli("schedule", "history", "nightly")
    assert "finished" in history
    firing = store.list_firings("nightly")[0]
    scheduled = store.get_job_run(firing["job_run_ids"][0])
    assert scheduled["schedule_name"] == "nightly" and len(scheduled["run_ids"]) == 4
    assert "nightly" in cli("jobs", "list", "--schedule", "nightly")
