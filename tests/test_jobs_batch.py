"""batch: one job run per combination on a local pool and on a Dask LocalCluster."""

from __future__ import annotations

import pytest
from test_jobs_support import TRACKED, write_notebook

from mlops_nb.jobs import batch

CALC = "%%mlops track --name calc\nscore = 10 / x"


def test_local_pool_keeps_going_after_a_failure(tmp_path, store):
    nb = write_notebook(tmp_path / "grid.ipynb", TRACKED, CALC, parameters="x = 1")
    result = batch(nb, {"x": [0, 2, 5]}, workers=2, progress=False)
    assert [r.status for r in result.runs] == ["failed", "finished", "finished"]
    assert result.n_failed == 1 and result.backend == "local:2"
    table = result.table(store)
    assert list(table["x"]) == [0, 2, 5] and list(table["status"]) == ["failed", "finished", "finished"]
    assert list(table["score"])[1:] == [5.0, 2.0]
    assert "ZeroDivisionError" in table["error"][0]
    assert store.get_batch(result.id)["status"] == "failed" and store.get_batch(result.id)["n_failed"] == 1
    assert {j["id"] for j in store.list_job_runs(batch_id=result.id)} == {r.id for r in result.runs}
    # ids are shown cut to 8 characters; that prefix finds the batch and its job runs
    assert {j["id"] for j in store.list_job_runs(batch_id=result.id[:8])} == {r.id for r in result.runs}
    assert store.get_batch(result.id[:8])["id"] == result.id
    # The runs recorded inside the notebooks carry the batch id (MLOPS_NB_BATCH_ID), for the runs panel.
    tracked = store.list_runs(batch_id=result.id)
    assert len(tracked) == 3 and sorted(r["status"] for r in tracked) == ["failed", "finished", "finished"]


def test_dask_local_cluster(tmp_path, store):
    distributed = pytest.importorskip("distributed")
    nb = write_notebook(tmp_path / "grid.ipynb", TRACKED, CALC, parameters="x = 1")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            result = batch(nb, [{"x": 1}, {"x": 4}], dask=client, progress=False)
    assert result.ok and result.backend.startswith("dask:")
    assert list(result.table(store)["score"]) == [10.0, 2.5]
    assert len(store.list_runs(batch_id=result.id)) == 2
    assert store.get_batch(result.id)["status"] == "finished"
