"""A registry under a Jupyter root, made through the real Python API, for the sidebar tests.

``build_registry(root)`` writes ``root/.mlops/``: a data-preparation run and two
training runs recorded from ``root/analysis.ipynb`` (lineage prepare → train), a
run from another notebook, model ``iris`` with v1 at ``production`` and v2
unaliased, a saved drift check with a drifted column, and a schedule.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import nbformat
import pytest
import numpy as np
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import mlops_nb
from mlops_nb.errors import MonitorError
from mlops_nb.jobs import schedule
from mlops_nb.store import SqlStore, clear_cache, schema


KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}}


def registry_store(root: Path) -> SqlStore:
    home = Path(root) / ".mlops"
    return SqlStore(f"sqlite:///{home / 'registry.db'}", str(home / "artifacts"))


@contextmanager
def recorded_from(notebook: Path) -> Iterator[None]:
    """Runs recorded in this block carry ``notebook`` as their notebook path (as our job runner sets it)."""
    old = os.environ.get("MLOPS_NB_NOTEBOOK")
    os.environ["MLOPS_NB_NOTEBOOK"] = str(notebook)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MLOPS_NB_NOTEBOOK", None)
        else:
            os.environ["MLOPS_NB_NOTEBOOK"] = old


def build_registry(root: Path) -> dict[str, Any]:
    root = Path(root)
    store = registry_store(root)
    frame = load_iris(as_frame=True).frame
    notebook = root / "analysis.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")], metadata=KERNEL), notebook)
    out: dict[str, Any] = {"store": store, "notebook": notebook, "runs": {}}
    with recorded_from(notebook):
        with mlops_nb.track(name="prepare", inputs={"raw": frame}, store=store) as run:
            features = frame.drop(columns="target").round(1)
            run.log_output("features", features)
        out["runs"]["prepare"] = run.id
        digests = []
        for C in (0.05, 1.0):
            with mlops_nb.track(name=f"train-C{C}", inputs={"features": features}, store=store) as run:
                model = LogisticRegression(C=C, max_iter=500).fit(features, frame["target"])
                mlops_nb.log_param("C", C)
                mlops_nb.log_metric("accuracy", float(model.score(features, frame["target"])))
                digests.append(mlops_nb.log_model(model, "clf"))
            out["runs"][f"train-C{C}"] = run.id
    # A lineage warning as the kernel's session ledger writes it (only a live kernel produces one).
    with store.engine.begin() as conn:
        warning = {"kind": "stale_input", "name": "features", "message": "features changed after this run read it", "cell": None}
        conn.execute(schema.runs.update().where(schema.runs.c.id == out["runs"]["train-C0.05"]).values(warnings=[warning]))
    with recorded_from(root / "other.ipynb"):
        with mlops_nb.track(name="elsewhere", store=store):
            mlops_nb.log_metric("accuracy", 0.5)
    mlops_nb.register(digests[0], name="iris", alias="production", description="iris classifier", store=store)
    mlops_nb.register(digests[1], name="iris", store=store)

    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"amount": rng.normal(0, 1, 2000), "channel": rng.choice(["web", "shop"], 2000)})
    current = pd.DataFrame({"amount": rng.normal(1.5, 1, 2000), "channel": rng.choice(["web", "shop"], 2000)})
    out["drift_id"] = mlops_nb.drift(reference, current).save(store)

    job = root / "retrain.ipynb"
    nbformat.write(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("C = 1.0", metadata={"tags": ["parameters"]})], metadata=KERNEL),
        job,
    )
    out["schedule"] = schedule(job, "0 3 * * *", name="nightly", force=True, reason="sidebar test", store=store)["name"]
    # A monitor whose first check finds no data: a real check, recorded as an error alert.
    (root / "incoming").mkdir(exist_ok=True)
    retrain = root / "retrain_iris.ipynb"
    cell = nbformat.v4.new_code_cell('data_path = ""', metadata={"tags": ["parameters"]})
    nbformat.write(nbformat.v4.new_notebook(cells=[cell], metadata=KERNEL), retrain)
    mlops_nb.monitor("iris-watch", model="iris@production", data=str(root / "incoming" / "*.parquet"),
                     retrain=retrain, drift_share=0.5, store=store)  # fmt: skip
    try:
        mlops_nb.check_monitor("iris-watch", store=store)
    except MonitorError:
        pass
    out["alert_id"] = store.list_alerts()[0]["id"]
    return out


def spooled_run(store, name: str, reason: str = "connection refused (test)") -> str:
    """A finished run's record kept in the local spool for ``store``, as when the registry did not answer; its id.

    A real record (:class:`mlops_nb.tracking.run.Run`'s own message): ``spool.replay`` writes it.
    """
    from mlops_nb.tracking import spool
    from mlops_nb.tracking.run import Run

    run = Run(name, store=store)
    run.start(persist=False)  # nothing written yet: the whole run is in the one record
    run.log_metric("accuracy", 0.77)
    run.conclude()
    spool.append(run.finish_message(), reason, f"run {run.id[:8]}")
    return run.id


@pytest.fixture
def registry(jp_root_dir, monkeypatch):
    """The server root's own ``.mlops/`` (no MLOPS_NB_* variables: found as the kernel would)."""
    for var in ("MLOPS_NB_HOME", "MLOPS_NB_STORE_URL", "MLOPS_NB_ARTIFACTS_URL", "MLOPS_NB_POLICY", "MLOPS_NB_NOTEBOOK"):
        monkeypatch.delenv(var, raising=False)
    built = build_registry(jp_root_dir)
    yield built
    built["store"].close()
    clear_cache()
