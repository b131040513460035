"""The server's traffic reaches the monitors: `mlops-nb serve --log-sample` logs requests as data in batches,
and a monitor on ``served:churn@production --since 1d`` checks them as it checks a file."""

from __future__ import annotations

import random
import subprocess
import sys
import time

import httpx
import pandas as pd
import pytest
from scoring_support import train_churn
from test_jobs_support import ROOT
from test_serve import _free_port

import mlops_nb
from mlops_nb.errors import ServeError
from mlops_nb.monitoring.checks import check_monitor
from mlops_nb.monitoring.datasets import FEATURES, churn_frame
from mlops_nb.scoring.traffic import TrafficLog, load_traffic, parse_since

RETRAIN = ROOT / "notebooks" / "scheduled_retraining.ipynb"


def _serve(kernel_env, *extra: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops_nb.cli", "serve", "churn@production", "--port", str(port), "--no-auth", *extra],
        env=kernel_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            pytest.fail(f"the server exited: {proc.stdout.read()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail("the server did not answer /health")


def test_logged_requests_come_back_as_data_and_a_monitor_checks_them_like_a_file(store, kernel_env, tmp_path):
    train_churn(store)
    proc, url = _serve(kernel_env, "--log-sample", "1")
    drifted = churn_frame(300, seed=7, price_increase=20)[FEATURES]
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            for start in range(0, 300, 5):
                chunk = drifted.iloc[start:start + 5]
                body = {"dataframe_split": {"columns": FEATURES, "data": chunk.astype(object).values.tolist()}}
                assert client.post("/invocations", json=body).status_code == 200
            waiting = client.get("/version").json()["traffic"]
        assert waiting["log"] == "served:churn@production" and waiting["sample"] == 1
        assert waiting["writer"] == "process"  # batches are written by the child, not the serving interpreter
    finally:
        proc.terminate()  # shutdown writes the requests still waiting
        proc.wait(timeout=60)
    assert proc.returncode in (0, -15), proc.stdout.read()  # uvicorn re-raises SIGTERM after a graceful shutdown

    served = load_traffic("served:churn@production --since 1d", store=store)
    assert len(served) == 300 and set(served["model_version"]) == {"1"}
    assert (served["served_at"].diff().dropna() >= 0).all()
    sent = drifted.reset_index(drop=True)
    pd.testing.assert_frame_equal(served[FEATURES].sort_values(FEATURES).reset_index(drop=True),
                                  sent.sort_values(FEATURES).reset_index(drop=True), check_dtype=False)  # fmt: skip
    runs = store.list_runs(name="served:churn@production")
    assert runs and all(r["tags"]["kind"] == "served" for r in runs) and sum(r["metrics"]["rows"] for r in runs) == 300
    with pytest.raises(ServeError, match="No requests of churn@production were logged in the last 1s"):
        load_traffic("served:churn@production", since="1s", store=store, now=time.time() + 3600)

    # The same rows as a file and as live traffic: the monitor measures the same drift on both.
    (tmp_path / "incoming").mkdir()
    served[FEATURES].to_parquet(tmp_path / "incoming" / "batch.parquet", index=False)
    common = {"model": "churn@production", "cron": "0 6 * * *", "retrain": RETRAIN, "drift_share": 1.0, "store": store}
    mlops_nb.monitor("live", data="served:churn@production", since="1d", **common)
    mlops_nb.monitor("files", data=str(tmp_path / "incoming" / "*.parquet"), **common)
    live, files = check_monitor("live", store=store), check_monitor("files", store=store)
    assert store.get_monitor("live")["data"] == "served:churn@production --since 1d"
    assert live.decision == "ok" and live.rows == 300 and "monthly_charges" in live.drifted
    assert (live.drift_share, sorted(live.drifted)) == (files.drift_share, sorted(files.drifted))
    assert check_monitor("live", store=store).decision == "no_new_data"  # nothing served since


def test_sampling_and_bounded_memory(store):
    log = TrafficLog("churn@production", store, 0.1, flush_every=3600, max_rows=500)
    random.seed(1)
    row = pd.DataFrame({"a": [1.0]})
    kept = sum(log.offer(row, 1) for _ in range(3000))
    assert 240 <= kept <= 360  # about one in ten (seeded)
    assert log.flush() == kept and log.logged_rows == kept and log.batches == 1

    full = TrafficLog("churn@production", store, 1.0, flush_every=3600, max_rows=100)
    assert sum(full.offer(row, 1) for _ in range(1000)) == 100  # never more than max_rows wait in memory
    assert full.describe()["waiting_rows"] == 100 and full.dropped_rows == 900
    assert full.flush() == 100 and full.describe()["waiting_rows"] == 0
    assert len(load_traffic("served:churn@production", store=store)) == kept + 100


def test_bad_settings_are_one_line(store):
    with pytest.raises(ServeError, match="--log-sample must be in"):
        TrafficLog("m@a", store, 1.5)
    with pytest.raises(ServeError, match="Cannot read the duration"):
        parse_since("yesterday")
    assert parse_since("12h") == 43200 and parse_since("2w") == 14 * 86400
    train_churn(store, n=400)
    with pytest.raises(mlops_nb.errors.MonitorError, match="--since applies to served"):
        mlops_nb.monitor("x", model="churn@production", data="*.csv", since="1d", cron="0 6 * * *", retrain=RETRAIN,
                         drift_share=0.5, store=store)  # fmt: skip


def test_log_keep_expires_old_batches_so_disk_stays_flat(store):
    def stored() -> int:
        root = store.artifacts.root
        return sum(p.stat().st_size for p in __import__("pathlib").Path(root).rglob("*") if p.is_file())

    log = TrafficLog("churn@production", store, 1.0, flush_every=3600, keep=0.5)
    rows = pd.DataFrame({"a": range(2000)}, dtype="float64")
    sizes = []
    for i in range(4):
        assert log.offer(rows + i, 1)
        assert log.flush() == 2000
        sizes.append(stored())
        time.sleep(0.6)  # the next write finds this batch older than keep
    assert log.expired_batches >= 2 and sizes[-1] < sizes[0] * 2  # flat, not growing by a batch per write
    newest = load_traffic("served:churn@production", store=store)
    assert len(newest) == 2000 and newest["a"].iloc[0] == 3.0  # only the batch younger than keep is left
    assert len(store.list_runs(name="served:churn@production")) == 4  # the runs stay: what was served when
    with pytest.raises(ServeError, match="--log-keep must be a positive duration"):
        TrafficLog("m@a", store, 1.0, keep=0)
