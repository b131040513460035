"""Monitor definitions, checks, firings and alerts on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest
from scoring_support import train_churn

import mlops_nb
from mlops_nb import config
from mlops_nb.errors import MonitorError
from mlops_nb.jobs.scheduler import Scheduler
from mlops_nb.monitoring.datasets import churn_frame
from mlops_nb.store import clear_cache, get_store

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def any_store(db_url, mlops_home, monkeypatch):
    monkeypatch.setenv("MLOPS_NB_STORE_URL", db_url)
    config.reset()
    clear_cache()
    return get_store()


def test_monitor_lifecycle_on_both_backends(any_store, tmp_path):
    store = any_store
    train_churn(store, n=1500)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    churn_frame(800, seed=3).to_parquet(incoming / "w1.parquet")
    m = mlops_nb.monitor("quiet", model="churn@production", data=str(incoming / "*.parquet"), cron="*/10 * * * *",
                         drift_share=0.6, retrain=ROOT / "notebooks" / "scheduled_retraining.ipynb")  # fmt: skip
    assert [x["name"] for x in store.list_monitors()] == ["quiet"] and store.list_monitors()[0]["last_slot"] is None
    with pytest.raises(MonitorError, match="already exists"):
        store.save_monitor(m)
    Scheduler(store, clock=lambda: m["created_at"] + 1200).run_once()
    (listed,) = store.list_monitors()
    assert listed["last_status"] == "finished" and listed["last_slot"] > m["created_at"]
    (check,) = store.list_monitor_checks("quiet")
    assert check["decision"] == "ok" and check["rows"] == 800 and check["version"] == 1
    assert mlops_nb.check_monitor("quiet").decision == "no_new_data"
    alert_id = store.add_alert({"monitor": "quiet", "severity": "warning", "kind": "drift", "message": "m", "payload": {"a": 1}})
    assert store.list_alerts(unacknowledged=True)[0]["id"] == alert_id
    store.acknowledge_alert(alert_id)
    assert store.list_alerts(unacknowledged=True) == [] and store.list_alerts("quiet")[0]["payload"] == {"a": 1}
    store.remove_monitor("quiet")
    assert store.list_monitors() == [] and len(store.list_monitor_checks("quiet")) == 2  # history stays
    assert [e["action"] for e in store.audit_log("monitor:quiet")] == ["monitor.add", "monitor.remove"]
