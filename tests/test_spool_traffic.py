"""The scoring server's traffic log through a registry outage: `mlops-nb serve --log-sample` keeps
serving while PostgreSQL is down, the batch of logged requests waits in the local spool (run and
snapshot record; the rows' chunks are in the artifact store already), and is written once."""

from __future__ import annotations

import os
import signal

import httpx
import pandas as pd
from scoring_support import train_churn
from test_serve_traffic import _serve

from mlops_nb import config
from mlops_nb.monitoring.datasets import FEATURES, churn_frame
from mlops_nb.scoring.traffic import load_traffic
from mlops_nb.store import clear_cache, get_store
from mlops_nb.tracking import spool
from spool_support import cli
from spool_support import pg  # noqa: F401  (a fixture)


def test_requests_logged_while_the_registry_is_down_are_queued_and_written_once(pg):
    url = config.store_url()
    train_churn(get_store())
    proc, base = _serve(dict(os.environ), "--log-sample", "1")
    rows = churn_frame(120, seed=3)[FEATURES]
    try:
        pg.pause()  # the model is loaded; the registry goes away under the running server
        with httpx.Client(base_url=base, timeout=30) as client:
            for start in range(0, len(rows), 6):
                chunk = rows.iloc[start:start + 6]
                body = {"dataframe_split": {"columns": FEATURES, "data": chunk.astype(object).values.tolist()}}
                assert client.post("/invocations", json=body).status_code == 200  # serving goes on
    finally:
        proc.send_signal(signal.SIGTERM)  # shutdown writes the requests still waiting: here, to the spool
        out, _ = proc.communicate(timeout=120)
    assert "Traceback" not in out, out
    status = cli("status")
    assert status.returncode == 1 and "waiting because" in status.stdout, status.stdout + status.stderr

    pg.resume()
    synced = cli("sync")
    assert synced.returncode == 0 and "Traceback" not in synced.stdout + synced.stderr, synced.stdout + synced.stderr
    assert cli("sync").stdout.startswith("wrote 0 ")  # exactly once
    clear_cache()
    store = get_store(url)
    served = [r for r in store.list_runs() if r["name"] == "served:churn@production"]
    assert [r["status"] for r in served] == ["finished"]
    logged = load_traffic("served:churn@production", store=store)
    pd.testing.assert_frame_equal(logged[FEATURES], rows.reset_index(drop=True), check_dtype=False)
    assert not spool.has_waiting(url)
    print(f"\ntraffic: {len(rows)} rows served while down; sync said {synced.stdout.strip()!r}")
