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
def jp_server_config():
    """pytest-jupyter's server with the mlops_nb extension enabled."""
    return {"ServerApp": {"jpserver_extensions": {"mlops_nb.server": True}}}


@pytest.fixture
def registry(jp_root_dir, monkeypatch):
    """The server root's own ``.mlops/`` (no MLOPS_NB_* variables: found as the kernel would)."""
    for var in ("MLOPS_NB_HOME", "MLOPS_NB_STORE_URL", "MLOPS_NB_ARTIFACTS_URL", "MLOPS_NB_POLICY", "MLOPS_NB_NOTEBOOK"):
        monkeypatch.delenv(var, raising=False)
    built = build_registry(jp_root_dir)
    yield built
    built["store"].close()
    clear_cache()


# ---- charts (issue 22): more data to draw, and JupyterLab started on a root --------------------------
def add_chart_data(root: Path, store: SqlStore) -> dict[str, Any]:
    """What the sidebar's charts need beyond :func:`build_registry`: stepped metrics and a drift history.

    Two runs from ``root/analysis.ipynb`` log ``cv`` per fold (steps 1-5) with a param ``folds``; two more
    checks against one reference make a drift-over-time line of three points: ``1 of 3`` columns drifted
    (under the 0.5 drift share: no dataset drift) and none drifted.  Returns ``{"cv_runs", "checks"}``.
    """
    root = Path(root)
    out: dict[str, Any] = {"cv_runs": [], "checks": []}
    with recorded_from(root / "analysis.ipynb"):
        for k, base in enumerate((0.90, 0.94)):
            with mlops_nb.track(name=f"cv-{k}", store=store) as run:
                mlops_nb.log_param("folds", 5)
                mlops_nb.log_param("C", 10.0 * (k + 1))
                for fold in range(1, 6):
                    mlops_nb.log_metric("cv", base + 0.01 * ((fold * (k + 2)) % 4), step=fold)
                mlops_nb.log_metric("accuracy", base + 0.02)
            out["cv_runs"].append(run.id)
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"amount": rng.normal(0, 1, 1500), "age": rng.normal(40, 8, 1500),
                              "channel": rng.choice(["web", "shop", "app"], 1500)})  # fmt: skip
    shifted = reference.assign(amount=rng.normal(2.0, 1, 1500))  # one of three columns moved
    same = pd.DataFrame({"amount": rng.normal(0, 1, 1500), "age": rng.normal(40, 8, 1500),
                         "channel": rng.choice(["web", "shop", "app"], 1500)})  # fmt: skip
    for current in (shifted, same):
        report = mlops_nb.drift(reference, current, reference_label="orders-2026-11", store=store)
        out["checks"].append(report.save(store))
    # A day apart, as a daily check would be (saved in the same second, the timeline would be one vertical line).
    with store.engine.begin() as conn:
        row = schema.drift_checks.c
        first = conn.execute(schema.drift_checks.select().where(row.id == out["checks"][0])).mappings().one()
        conn.execute(schema.drift_checks.update().where(row.id == out["checks"][0]).values(created_at=first["created_at"] - 86400))
    return out


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip
LAB_TOKEN = "mlops-sidebar-test"
REPO = Path(__file__).resolve().parents[1]


@contextmanager
def running_lab(tmp_path: Path, root: Path) -> Iterator[str]:
    """`jupyter lab` on 127.0.0.1 over ``root`` (its registry found as a kernel finds it: root/.mlops); its base URL.

    The sidebar served is the one built in this checkout (``mlops_nb/labextension``, which ``pip install -e``
    and ``npm run build`` write), put first on JUPYTER_PATH: never an older copy installed in the
    environment's share/ folder.
    """
    import json
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    built = REPO / "mlops_nb" / "labextension"
    if not (built / "package.json").exists():
        raise RuntimeError("the sidebar is not built: make install (or cd labextension && npm install && npm run build)")
    stale = [p for p in (REPO / "labextension" / "src").glob("*.ts") if p.stat().st_mtime > (built / "package.json").stat().st_mtime]
    if stale:
        raise RuntimeError(f"the sidebar build is older than {stale[0].name}: make install (or npm run build in labextension/)")
    data = tmp_path / "jupyter-data"
    (data / "labextensions").mkdir(parents=True)
    (data / "labextensions" / "mlops-nb").symlink_to(built, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_NB_")}
    env["MLOPS_NB_SPOOL_DIR"] = str(tmp_path / "spool")  # the lab's and its kernels' spool: never the user's own
    env["JUPYTER_PATH"] = os.pathsep.join([str(data), *filter(None, [os.environ.get("JUPYTER_PATH")])])
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"), JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"))  # fmt: skip
    labconfig = tmp_path / "config" / "labconfig"  # the "receive Jupyter news?" toast would cover the screenshots
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = tmp_path / "lab.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             f"--IdentityProvider.token={LAB_TOKEN}", f"--ServerApp.root_dir={root}",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--allow-root"],
            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(240):  # readiness: the server answers its status API
                if proc.poll() is not None:
                    raise RuntimeError(f"jupyter lab exited: {log_path.read_text()[-2000:]}")
                try:
                    urllib.request.urlopen(f"{base}/api/status?token={LAB_TOKEN}", timeout=2)
                    break
                except (urllib.error.URLError, ConnectionError, OSError):
                    time.sleep(0.5)
            else:
                raise RuntimeError(f"jupyter lab did not start: {log_path.read_text()[-2000:]}")
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def lab_api(base: str, endpoint: str, **query: str) -> Any:
    """GET ``/mlops-nb/api/<endpoint>`` of a running lab, as JSON."""
    import json
    import urllib.parse
    import urllib.request

    qs = urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
    with urllib.request.urlopen(f"{base}/mlops-nb/api/{endpoint}?{qs}&token={LAB_TOKEN}", timeout=60) as response:
        return json.loads(response.read())


def set_theme(base: str, theme: str) -> None:
    """Switch a running lab's theme (its settings API, as the Settings menu does), e.g. ``"JupyterLab Dark"``."""
    import json
    import urllib.request

    request = urllib.request.Request(
        f"{base}/lab/api/settings/@jupyterlab/apputils-extension:themes",
        data=json.dumps({"raw": json.dumps({"theme": theme})}).encode(), method="PUT",
        headers={"Authorization": f"token {LAB_TOKEN}", "Content-Type": "application/json"},
    )  # fmt: skip
    urllib.request.urlopen(request, timeout=10)
