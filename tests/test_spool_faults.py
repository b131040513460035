"""Faults beyond a kernel's restart (see test_spool.py): jobs, the scheduler, concurrent writers
with the database killed mid-transaction, the bucket stopped, a full disk, a read-only registry.

Every case ends the same way: each run present exactly once, models verified by their digest,
the audit chain intact, and no traceback shown to the user.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import mlops_nb
from mlops_nb import config
from mlops_nb.errors import StoreError
from mlops_nb.jobs.scheduler import Scheduler
from mlops_nb.jobs.schedules import add_schedule, next_times
from mlops_nb.registry.audit import verify_audit
from mlops_nb.store import clear_cache, get_store
from mlops_nb.tracking import spool
from spool_support import cli, run_names
from spool_support import pg  # noqa: F401  (a fixture)
from test_jobs_support import TRACKED, write_notebook

FIT = """%%mlops track --name {name}
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True)
clf = LogisticRegression(C=C, max_iter=500).fit(X, y)
accuracy = clf.score(X, y)"""


def _models_intact(store, run_ids) -> None:
    for run_id in run_ids:
        run = store.get_run(run_id)
        assert run["status"] == "finished" and run["models"], run
        for model in run["models"]:
            assert store.artifacts.verify(model["artifact_digest"]) == model["artifact_digest"]


# ---- jobs and the scheduler ------------------------------------------------------------------
def test_a_job_whose_registry_is_down_finishes_its_notebook_and_lands_once(pg, tmp_path):
    url = config.store_url()
    nb = write_notebook(tmp_path / "train.ipynb", TRACKED, FIT.format(name="job-fit"), parameters="C = 1.0")
    pg.pause()
    ran = cli("run", str(nb), "-p", "C", "0.5", "--no-progress")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "finished" in ran.stdout and "queued (registry unreachable:" in ran.stdout
    assert "Traceback" not in ran.stdout + ran.stderr
    status = cli("status")
    assert status.returncode == 1 and "waiting because" in status.stdout, status.stdout + status.stderr

    pg.resume()
    synced = cli("sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert cli("sync").stdout.startswith("wrote 0 ")  # exactly once: nothing is left to write again
    clear_cache()
    store = get_store(url)
    [job] = store.list_job_runs()
    runs = store.list_runs(job_run_id=job["id"])
    assert job["status"] == "finished" and job["parameters"] == {"C": 0.5}
    assert [r["name"] for r in runs] == ["job-fit"] and job["run_ids"] == [runs[0]["id"]]
    assert store.get_run(runs[0]["id"])["params"]["clf.C"] == 0.5
    _models_intact(store, [runs[0]["id"]])
    executed = json.loads(store.artifacts.get_bytes(job["output_digest"]))
    assert any("C = 0.5" in "".join(c["source"]) for c in executed["cells"])  # papermill's injected cell
    assert not spool.has_waiting(url)


def test_a_scheduler_keeps_its_slot_through_an_outage_and_fires_it_once(pg, tmp_path):
    store = get_store()
    nb = write_notebook(tmp_path / "tick.ipynb", "y = x + 1")
    saved = add_schedule(nb, "*/5 * * * *", force=True, store=store)
    first = next_times("*/5 * * * *", saved["created_at"], 1)[0]
    scheduler = Scheduler(store, clock=lambda: first + 1)
    pg.pause()
    with pytest.raises(StoreError, match="could not be"):  # run_forever logs this and ticks again
        scheduler.tick()
    pg.resume()
    worker = threading.Thread(target=scheduler.run_forever, kwargs={"poll": 0.2})
    worker.start()
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not any(f["status"] == "finished" for f in store.list_firings(saved["name"])):
            time.sleep(0.5)
        time.sleep(1.0)  # a few more ticks: none may fire the slot again
    finally:
        scheduler.stop()
        worker.join(timeout=120)
    firings = store.list_firings(saved["name"])
    assert [(f["slot"], f["status"]) for f in firings] == [(first, "finished")]
    assert len(store.list_job_runs(schedule_name=saved["name"])) == 1


# ---- four writers, the database killed under them -------------------------------------------
WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    import mlops_nb
    from mlops_nb.tracking import spool
    from mlops_nb import config

    worker, n = int(sys.argv[1]), int(sys.argv[2])
    rng = np.random.default_rng(worker)
    X = rng.normal(size=(300, 6))
    y = (X[:, 0] + rng.normal(scale=0.5, size=300) > 0).astype(int)
    queued = 0
    for i in range(n):
        with mlops_nb.track(name=f"w{worker}-{i:03d}") as run:
            clf = LogisticRegression(C=1.0 + i).fit(X, y)
            run.log_model(clf, "clf")
            run.log_metric("accuracy", clf.score(X, y))
            run.log_param("i", i)
        queued += bool(run.queued)
        time.sleep(0.05)
    deadline = time.time() + 120
    while spool.has_waiting(config.store_url()) and time.time() < deadline:
        mlops_nb.sync()  # what a script's next command would do
        time.sleep(0.5)
    print("queued", queued)
""")


def test_four_writers_lose_nothing_when_the_database_is_killed_mid_transaction(pg, tmp_path):
    url = config.store_url()
    store = get_store()
    _register(store, "before")
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    n = 25
    writers = [subprocess.Popen([sys.executable, str(script), str(w), str(n)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for w in range(4)]  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and len(store.list_runs()) < 20:
        time.sleep(0.1)
    pg.crash()  # transactions of four processes are cut off wherever they are
    time.sleep(2.0)
    pg.resume()
    outputs = [w.communicate(timeout=600) for w in writers]
    for writer, (out, err) in zip(writers, outputs, strict=True):
        assert writer.returncode == 0 and "Traceback" not in out + err, out + err
    assert sum(int(out.split()[-1]) for out, _ in outputs) > 0  # the fault did hit runs being written
    clear_cache()
    store = get_store(url)
    expected = sorted(f"w{w}-{i:03d}" for w in range(4) for i in range(n))
    assert [name for name in run_names(url) if name[0] == "w"] == expected  # each run exactly once
    rows = [r for r in store.list_runs() if (r["name"] or "")[:1] == "w"]
    _models_intact(store, [r["id"] for r in rows])
    for row in rows:
        worker, i = row["name"][1:].split("-")
        run = store.get_run(row["id"])
        assert run["params"]["i"] == int(i) and "accuracy" in run["metrics"]
    _register(store, "after")
    check = verify_audit(store=store)
    assert check.broken == [] and check.n_events >= 2
    assert not spool.has_waiting(url)


def _register(store, tag: str) -> None:
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier(constant=len(tag), strategy="constant").fit([[0], [1]], [0, len(tag)])
    mlops_nb.register(model, name="spool-model", alias="staging", reason=tag, store=store)


# ---- the bucket, the disk, a read-only registry ---------------------------------------------
@pytest.fixture
def own_s3(mlops_home, monkeypatch):
    """An S3 server of this test's own, which the test stops and starts again on the same port."""
    import logging
    import socket

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    servers = [ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)]
    servers[0].start()
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_SESSION_TOKEN": "testing"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)

    class Control:
        url = endpoint

        def stop(self) -> None:
            servers[-1].stop()

        def start(self) -> None:  # moto keeps its buckets in this process: they survive the restart
            servers.append(ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False))
            servers[-1].start()

    yield Control()
    servers[-1].stop()


SCRIPT = textwrap.dedent("""
    import sys
    from sklearn.tree import DecisionTreeClassifier
    from sklearn.datasets import load_digits
    import mlops_nb
    X, y = load_digits(return_X_y=True)
    with mlops_nb.track(name=sys.argv[1]) as run:
        run.log_model(DecisionTreeClassifier(random_state=0).fit(X, y), "tree")
    print("QUEUED" if run.queued else "WRITTEN", run.id)
""")


def test_a_model_whose_bucket_is_down_waits_and_the_run_never_points_at_a_missing_artifact(own_s3, tmp_path, monkeypatch):
    import s3fs

    bucket = f"mlops-{tmp_path.name[-8:].lower().replace('_', '-')}"
    fs = s3fs.S3FileSystem(skip_instance_cache=True, client_kwargs={"endpoint_url": own_s3.url})
    fs.mkdir(bucket)
    monkeypatch.setenv("MLOPS_NB_ARTIFACTS_URL", f"s3://{bucket}/artifacts")
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    url = config.store_url()

    own_s3.stop()
    ran = subprocess.run([sys.executable, str(script), "while-down"], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0 and ran.stdout.startswith("QUEUED"), ran.stdout + ran.stderr
    clear_cache()
    [row] = get_store(url).list_runs()
    # Visible (interrupted: its process has ended), and nothing points at the artifact not there yet.
    assert row["status"] in ("running", "interrupted")
    assert get_store(url).get_run(row["id"])["models"] == []

    own_s3.start()
    synced = cli("sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    clear_cache()
    store = get_store(url)
    run = store.get_run(row["id"])
    assert run["status"] == "finished" and [m["name"] for m in run["models"]] == ["tree"]
    digest = run["models"][0]["artifact_digest"]
    stored = fs.cat_file(f"{bucket}/artifacts/{digest[:2]}/{digest[2:]}")  # in the bucket itself
    assert hashlib.sha256(stored).hexdigest() == digest
    assert not spool.has_waiting(url)


def _tmpfs(where: Path, size: str) -> Path:
    """A tmpfs of ``size`` mounted at ``where``. Needs mount rights (root with CAP_SYS_ADMIN, as in CI)."""
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    return where


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB disk that fills up."""
    where = _tmpfs(tmp_path / "small-disk", "2m")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_while_spooling_is_one_line_and_the_cell_still_runs(pg, small_disk, monkeypatch, shell):
    from IPython.core.error import UsageError

    monkeypatch.setenv("MLOPS_NB_SPOOL_DIR", str(small_disk / "spool"))
    (small_disk / "filler").write_bytes(b"\0" * (2 * 1024 * 1024 - 4096 * 3))
    pg.pause()
    clear_cache()
    shell.user_ns["big"] = list(range(10))
    with pytest.raises(UsageError) as caught:
        shell.run_cell_magic("mlops", "track", "import numpy as np\nweights = np.random.default_rng(0).normal(size=400_000)\nran = True\n")
    text = str(caught.value)
    assert shell.user_ns["ran"] is True
    assert "disk holding the local spool" in text and "is full" in text and "\n" not in text.strip()
    assert "MLOPS_NB_SPOOL_DIR" in text


@pytest.fixture
def read_only_folder(tmp_path):
    """A tmpfs for the registry and ``remount("ro"|"rw")``: read-only, root cannot write to it either."""
    where = _tmpfs(tmp_path / "ro", "64m")

    def remount(mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", str(where)], check=True)

    yield where, remount
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_registry_on_a_read_only_folder_queues_runs_until_it_is_writable(read_only_folder, mlops_home, monkeypatch):
    where, remount = read_only_folder
    url = f"sqlite:///{where}/registry.db"
    monkeypatch.setenv("MLOPS_NB_STORE_URL", url)
    monkeypatch.setenv("MLOPS_NB_ARTIFACTS_URL", str(mlops_home / "artifacts"))
    config.reset()
    clear_cache()
    with mlops_nb.track(name="writable"):
        mlops_nb.log_metric("accuracy", 0.9)
    clear_cache()  # closes the connections: the WAL is checkpointed before the folder turns read-only
    remount("ro")
    with mlops_nb.track(name="read-only") as run:
        mlops_nb.log_metric("accuracy", 0.8)
    assert run.queued and "read" in run.queued.lower(), run.queued
    status = cli("status")
    assert status.returncode == 1 and "Traceback" not in status.stdout + status.stderr
    remount("rw")
    clear_cache()
    assert cli("sync").returncode == 0
    assert run_names(url) == ["read-only", "writable"]
    store = get_store(url)
    assert store.get_run(run.id)["metrics"] == {"accuracy": 0.8}


# ---- a monitor's decision ---------------------------------------------------------------------
def test_a_monitor_decision_reached_while_the_registry_is_down_is_written_once(pg):
    from mlops_nb.monitoring.checks import CheckResult, _finish

    store = get_store()
    check_id = store.add_monitor_check({"monitor": "churn-acc", "model": "churn", "version": 1})
    result = CheckResult("churn-acc", check_id, "kept_champion", "accuracy=0.71 < 0.8; the challenger is worse",
                         "churn", 1, rows=900, metric="accuracy", metric_value=0.71, triggered=True,
                         crossed=["metric: accuracy=0.71 < 0.8"], challenger_version=2)  # fmt: skip
    pg.pause()
    clear_cache()
    _finish(store, None, result, "ab" * 32)  # the retraining took minutes; the registry went away meanwhile
    assert result.queued and result.alert_id is None

    pg.resume()
    assert cli("sync").returncode == 0
    assert cli("sync").stdout.startswith("wrote 0 ")
    clear_cache()
    store = get_store()
    [check] = [c for c in store.list_monitor_checks("churn-acc") if c["id"] == check_id]
    assert check["decision"] == "kept_champion" and check["metric_value"] == 0.71 and check["ended_at"]
    [alert] = store.list_alerts("churn-acc")
    assert alert["check_id"] == check_id and alert["severity"] == "warning" and alert["kind"] == "metric"
    events = [e for e in store.audit_log() if e["action"] == "monitor_decision"]
    assert len(events) == 1 and events[0]["payload"]["check_id"] == check_id
    assert verify_audit(store=store).broken == []
