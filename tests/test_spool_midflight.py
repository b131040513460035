"""Faults that land in the middle of a write (see test_spool_faults.py for faults between writes).

The S3 endpoint killed while a model's bytes are on the wire, and PostgreSQL killed
(``pg_ctl -m immediate``) while a kernel's recorder or a running job is inside a
transaction. Each time: every run present exactly once after recovery, every model the
store names is in the bucket and hashes to its digest, the audit chain intact, nothing
left in the spool, and no traceback shown to the user.
"""

from __future__ import annotations

import hashlib
import queue
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from mlops_nb import config
from mlops_nb.store import clear_cache, get_store
from mlops_nb.tracking import spool
from spool_support import cli
from spool_support import pg  # noqa: F401  (a fixture)

HERE = Path(__file__).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spool_records(url: str) -> int:
    """Records (and model bytes riding in them) still held in the spool file of ``url``."""
    path = spool.spool_path(url)
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM records").fetchone()[0]


def _models_in_bucket(store, fs, prefix: str) -> int:
    """Check every model any run names is in the bucket and hashes to its digest; how many."""
    checked = 0
    for row in store.list_runs():
        for model in store.get_run(row["id"])["models"]:
            digest = model["artifact_digest"]
            data = fs.cat_file(f"{prefix}/{digest[:2]}/{digest[2:]}")  # read back from the bucket itself
            assert hashlib.sha256(data).hexdigest() == digest, (row["name"], model["name"])
            checked += 1
    return checked


# ---- the S3 endpoint killed mid-upload -------------------------------------------------------
class SlowProxy:
    """tests/slow_proxy.py in its own process: the S3 endpoint the client sees, killed and started again."""

    def __init__(self, port: int, target: int, rate: float) -> None:
        self.port, self.target, self.rate = port, target, rate
        self.proc: subprocess.Popen | None = None
        self.lines: queue.Queue[str] = queue.Queue()

    def start(self, rate: float | None = None) -> None:
        """Listen on the port (again); ``rate``: bytes per second upstream (0: full speed)."""
        rate = self.rate if rate is None else rate
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "slow_proxy.py"), str(self.port), str(self.target), str(rate)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout.readline().strip() == "ready"
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.lines.put(line)

    def wait_upstream(self, nbytes: int, timeout: float) -> int:
        """Until one connection has passed ``nbytes`` to the server (an upload in flight); those bytes."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                _, _, sent = self.lines.get(timeout=1).split()
            except queue.Empty:
                continue
            if int(sent) >= nbytes:
                return int(sent)
        raise AssertionError(f"no upload reached {nbytes} bytes in {timeout} s")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()


@pytest.fixture
def s3_behind_proxy(mlops_home, monkeypatch):
    """A moto S3 server of this test's own, reached through a throttling relay at 1 MB/s."""
    import logging

    from moto.server import ThreadedMotoServer

    import s3fs

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    s3fs.S3FileSystem.clear_instance_cache()  # a client cached by an earlier test talks to its endpoint
    moto_port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    server.start()
    proxy = SlowProxy(_free_port(), moto_port, rate=1_000_000)
    for key, value in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_SESSION_TOKEN": "testing"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    proxy.moto_url = f"http://127.0.0.1:{moto_port}"
    yield proxy
    proxy.stop()
    server.stop()
    s3fs.S3FileSystem.clear_instance_cache()


BIG_MODEL = textwrap.dedent("""
    import sys, time
    import numpy as np
    from sklearn.neighbors import KNeighborsClassifier
    import mlops_nb
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80_000, 10))  # 6.4 MB of training rows, kept inside the model
    y = (X[:, 0] > 0).astype(int)
    t0 = time.perf_counter()
    with mlops_nb.track(name=sys.argv[1]) as run:
        run.log_model(KNeighborsClassifier(algorithm="brute").fit(X, y), "knn")
        run.log_metric("rows", len(X))
    print("QUEUED" if run.queued else "WRITTEN", run.id, f"{time.perf_counter() - t0:.2f}")
""")


def test_the_s3_server_killed_during_a_model_upload_loses_nothing(s3_behind_proxy, tmp_path, monkeypatch):
    import s3fs

    proxy = s3_behind_proxy
    bucket = f"mlops-{tmp_path.name[-8:].lower().replace('_', '-')}"
    fs = s3fs.S3FileSystem(skip_instance_cache=True, client_kwargs={"endpoint_url": proxy.moto_url})
    fs.mkdir(bucket)
    monkeypatch.setenv("MLOPS_NB_ARTIFACTS_URL", f"s3://{bucket}/artifacts")
    url = config.store_url()
    script = tmp_path / "fit.py"
    script.write_text(BIG_MODEL)

    proxy.start()
    writer = subprocess.Popen([sys.executable, str(script), "mid-upload"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        proxy.wait_upstream(1 << 20, timeout=120)  # a megabyte of the model is on the wire
        proxy.kill()
        killed_at = time.time()
        out, err = writer.communicate(timeout=300)
    finally:
        if writer.poll() is None:
            writer.kill()
    given_up_s = time.time() - killed_at
    assert writer.returncode == 0 and out.startswith("QUEUED"), out + err
    assert "Traceback" not in out + err
    run_id = out.split()[1]
    clear_cache()
    store = get_store(url)
    # The run is visible, but names no model: the bytes that did not arrive are nowhere in the store.
    assert store.get_run(run_id)["models"] == []
    assert _spool_records(url) == 1

    proxy.start(rate=0)  # the endpoint is back on the same port (at full speed: the test waits less)
    started = time.perf_counter()
    synced = cli("sync")
    sync_s = time.perf_counter() - started
    assert synced.returncode == 0 and "Traceback" not in synced.stdout + synced.stderr, synced.stdout + synced.stderr
    assert cli("sync").stdout.startswith("wrote 0 ")  # exactly once: nothing is left to write again
    clear_cache()
    store = get_store(url)
    [row] = store.list_runs()
    run = store.get_run(run_id)
    assert row["id"] == run_id and run["status"] == "finished" and [m["name"] for m in run["models"]] == ["knn"]
    assert run["models"][0]["artifact_size"] > 6_000_000
    fs.invalidate_cache()
    assert _models_in_bucket(store, fs, f"{bucket}/artifacts") == 1
    assert not spool.has_waiting(url) and _spool_records(url) == 0  # the model's bytes left the spool with it
    path = spool.spool_path(url)
    spool_bytes = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    assert spool_bytes < 1_000_000  # and the disk they took is given back
    print(f"\nS3 killed mid-upload: writer gave up after {given_up_s:.1f} s, sync took {sync_s:.1f} s, "
          f"spool files {spool_bytes} bytes after sync")


BIG_DATA = textwrap.dedent("""
    import sys
    import numpy as np
    import pandas as pd
    import mlops_nb
    train = pd.DataFrame(np.random.default_rng(1).normal(size=(100_000, 8)), columns=list("abcdefgh"))  # 6.4 MB
    with mlops_nb.track(name=sys.argv[1], inputs={"train": train}) as run:
        mlops_nb.log_metric("rows", len(train))
    print(run.id)  # its snapshot is written by a thread after the run; exit waits for it
""")


def test_the_s3_server_killed_while_a_data_snapshot_uploads_loses_nothing(s3_behind_proxy, tmp_path, monkeypatch):
    import numpy as np
    import pandas as pd
    import s3fs

    from mlops_nb import load_data

    proxy = s3_behind_proxy
    bucket = f"mlops-{tmp_path.name[-8:].lower().replace('_', '-')}"
    fs = s3fs.S3FileSystem(skip_instance_cache=True, client_kwargs={"endpoint_url": proxy.moto_url})
    fs.mkdir(bucket)
    monkeypatch.setenv("MLOPS_NB_ARTIFACTS_URL", f"s3://{bucket}/artifacts")
    url = config.store_url()
    script = tmp_path / "fit.py"
    script.write_text(BIG_DATA)

    proxy.start()
    writer = subprocess.Popen([sys.executable, str(script), "mid-snapshot"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        proxy.wait_upstream(256 * 1024, timeout=120)  # chunks of the data are on the wire
        proxy.kill()
        killed_at = time.time()
        out, err = writer.communicate(timeout=300)
        given_up_s = time.time() - killed_at
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0 and "Traceback" not in out + err, out + err
    assert "it waits in the local spool" in err, err  # said once, where the user reads it
    run_id = out.split()[0]
    clear_cache()
    store = get_store(url)
    digest = store.get_run(run_id)["inputs"][0]["digest"]
    assert store.get_run(run_id)["status"] == "finished" and store.get_snapshot(digest) is None
    assert _spool_records(url) == 1

    proxy.start(rate=0)
    synced = cli("sync")
    assert synced.returncode == 0 and "Traceback" not in synced.stdout + synced.stderr, synced.stdout + synced.stderr
    assert cli("sync").stdout.startswith("wrote 0 ")
    clear_cache()
    store = get_store(url)
    snap = store.get_snapshot(digest)
    assert snap is not None and snap["chunk_list"]
    fs.invalidate_cache()
    for chunk in [c["chunk"] for c in snap["chunk_list"]] + [snap["manifest"]]:  # each read back and hashed
        assert hashlib.sha256(fs.cat_file(f"{bucket}/artifacts/{chunk[:2]}/{chunk[2:]}")).hexdigest() == chunk
    expected = pd.DataFrame(np.random.default_rng(1).normal(size=(100_000, 8)), columns=list("abcdefgh"))
    pd.testing.assert_frame_equal(load_data(f"run:{run_id}/train", store=store), expected)  # fingerprint checked
    assert not spool.has_waiting(url) and _spool_records(url) == 0
    print(f"\nS3 killed mid-snapshot: writer queued it after {given_up_s:.1f} s; {len(snap['chunk_list'])} chunks stored by sync")


# ---- PostgreSQL killed inside a transaction --------------------------------------------------
class KillMidTransaction(threading.Thread):
    """Watches ``pg_stat_activity`` and kills the server (``pg_ctl -m immediate``) the moment another
    session is inside a transaction running a statement that matches ``pattern`` (SQL ILIKE)."""

    def __init__(self, server, url: str, pattern: str) -> None:
        super().__init__(daemon=True)
        self.server, self.pattern = server, pattern
        self.dsn = url.replace("postgresql+psycopg://", "postgresql://")
        self.seen: tuple | None = None
        self.crashed = threading.Event()
        self.stopped = threading.Event()
        self.start()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stopped.is_set():
                self.seen = conn.execute(
                    "SELECT pid, state, now() - xact_start, left(query, 40) FROM pg_stat_activity "
                    "WHERE pid <> pg_backend_pid() AND xact_start IS NOT NULL AND query ILIKE %s "
                    "AND state IN ('active', 'idle in transaction')", (self.pattern,),
                ).fetchone()  # fmt: skip
                if self.seen is not None:
                    break
                time.sleep(0.002)
        if self.seen is not None:
            self.server.crash()
            self.crashed.set()

    def wait(self, timeout: float) -> tuple:
        if not self.crashed.wait(timeout):
            self.stopped.set()
            raise AssertionError(f"no transaction running {self.pattern!r} was seen in {timeout} s")
        return self.seen


def _register(store, tag: str) -> None:
    from sklearn.dummy import DummyClassifier

    import mlops_nb

    model = DummyClassifier(constant=len(tag), strategy="constant").fit([[0], [1]], [0, len(tag)])
    mlops_nb.register(model, name="midflight-model", alias="staging", reason=tag, store=store)


# A run large enough that writing it takes the recorder a while: a model and 40,000 metric points.
BIG_RUN = """%%mlops track --name {name}
import mlops_nb
from sklearn.linear_model import LogisticRegression
clf = LogisticRegression(max_iter=500).fit(X, y)
for step in range(2000):
    for k in range(20):
        mlops_nb.log_metric(f"loss{{k}}", 1.0 / (1 + step + k), step=step)
accuracy = clf.score(X, y)"""
LOAD = "%load_ext mlops_nb\nfrom sklearn.datasets import load_iris\nX, y = load_iris(return_X_y=True)"


def _check_big_runs(store, names: list[str]) -> None:
    by_name = {r["name"]: r for r in store.list_runs()}
    for name in names:
        run = store.get_run(by_name[name]["id"])
        assert run["status"] == "finished" and [m["name"] for m in run["models"]] == ["clf"], run["name"]
        digest = run["models"][0]["artifact_digest"]
        assert store.artifacts.verify(digest) == digest  # read back and hashed
        assert len([m for m in run["metric_history"] if m["key"] == "loss7"]) == 2000, name
        keys = [m["key"] for m in run["metric_history"]]
        assert len(keys) == 40_001 and keys.count("accuracy") == 1, name  # every point once


def test_postgres_killed_while_a_kernels_recorder_writes_a_run(pg, kernel_env, tmp_path):
    from nbformat.v4 import new_code_cell, new_notebook

    from capture_kernel import kernel_session, output_text
    from mlops_nb.registry.audit import verify_audit
    from spool_support import run_names

    url = config.store_url()
    _register(get_store(), "before")
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    env = {**kernel_env, "MLOPS_NB_STORE_URL": url, "MLOPS_NB_ARTIFACTS_URL": str(tmp_path / "artifacts")}
    shown = []

    def run(client, source: str) -> str:
        cell = new_code_cell(source)
        nb.cells.append(cell)
        client.execute_cell(cell, len(nb.cells) - 1)
        shown.append(output_text(cell))
        return shown[-1]

    with kernel_session(nb, env=env, cwd=tmp_path) as client:
        run(client, LOAD)
        run(client, "mlops_nb_sync = __import__('mlops_nb').sync; mlops_nb_sync()")  # the recorder is up
        watch = KillMidTransaction(pg, url, "insert into metrics%")
        run(client, BIG_RUN.format(name="big"))  # the cell ends; the recorder writes the run meanwhile
        seen = watch.wait(timeout=60)
        deadline = time.time() + 30
        while time.time() < deadline and not spool.has_waiting(url):
            time.sleep(0.1)
        assert spool.has_waiting(url), seen  # the cut transaction's record went to the spool
        down = run(client, BIG_RUN.format(name="while-down"))
        status = run(client, "%mlops status")
        pg.resume()
        resumed = time.time()
        while time.time() < resumed + 60 and run_names(url) != ["big", "while-down"]:
            time.sleep(0.5)  # nobody does anything: the recorder replays by itself
        landed_s = time.time() - resumed
        assert run_names(url) == ["big", "while-down"], (seen, status)
    assert "in the local spool" in status and "queued (registry unreachable" in down
    assert not any("Traceback" in text for text in shown), shown
    store = get_store(url)
    _check_big_runs(store, ["big", "while-down"])
    _register(store, "after")
    assert verify_audit(store=store).broken == []
    assert not spool.has_waiting(url) and _spool_records(url) == 0
    print(f"\nkernel: killed {seen[2].total_seconds():.2f} s into the transaction ({seen[3]!r}); "
          f"both runs in the registry {landed_s:.1f} s after the restart")


def test_postgres_killed_while_a_running_job_writes_a_run(pg, tmp_path):
    import json

    from mlops_nb.registry.audit import verify_audit
    from spool_support import run_names
    from test_jobs_support import TRACKED, write_notebook

    url = config.store_url()
    _register(get_store(), "before")
    load = "from sklearn.datasets import load_iris\nX, y = load_iris(return_X_y=True)"
    nb = write_notebook(tmp_path / "train.ipynb", TRACKED, load, BIG_RUN.format(name="job-big"),
                        BIG_RUN.format(name="job-after"), parameters="C = 1.0")  # fmt: skip
    job = subprocess.Popen([sys.executable, "-m", "mlops_nb.cli", "run", str(nb), "--no-progress"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        watch = KillMidTransaction(pg, url, "insert into metrics%")
        seen = watch.wait(timeout=120)
        time.sleep(2.0)  # down for a while: the job goes on meanwhile
        pg.resume()
        out, err = job.communicate(timeout=300)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 0 and "finished" in out, out + err
    assert "Traceback" not in out + err
    synced = cli("sync")  # whatever the job's processes could not write yet
    assert synced.returncode == 0 and "Traceback" not in synced.stdout + synced.stderr, synced.stdout + synced.stderr
    assert cli("sync").stdout.startswith("wrote 0 ")

    clear_cache()
    store = get_store(url)
    assert run_names(url) == ["job-after", "job-big"]  # each exactly once
    _check_big_runs(store, ["job-big", "job-after"])
    [job_run] = store.list_job_runs()
    assert job_run["status"] == "finished"
    assert sorted(job_run["run_ids"]) == sorted(r["id"] for r in store.list_runs())
    executed = json.loads(store.artifacts.get_bytes(job_run["output_digest"]))
    outputs = json.dumps([c.get("outputs", []) for c in executed["cells"]])
    assert "Traceback" not in outputs and '"output_type": "error"' not in outputs
    _register(store, "after")
    assert verify_audit(store=store).broken == []
    assert not spool.has_waiting(url) and _spool_records(url) == 0
    print(f"\njob: killed {seen[2].total_seconds():.2f} s into the transaction ({seen[3]!r}); sync said {synced.stdout.strip()!r}")


def test_a_kernels_data_snapshot_waits_while_the_bucket_is_down(kernel_env, tmp_path, monkeypatch):
    """The kernel's snapshot thread cannot upload: the copy goes to the recorder, which keeps it in the
    spool and writes it by itself once the bucket answers."""
    import logging

    import numpy as np
    import pandas as pd
    import s3fs
    from moto.server import ThreadedMotoServer
    from nbformat.v4 import new_code_cell, new_notebook

    from capture_kernel import kernel_session, output_text
    from mlops_nb import load_data

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    s3fs.S3FileSystem.clear_instance_cache()  # a client cached by an earlier test talks to its endpoint
    port = _free_port()
    servers = [ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)]
    servers[0].start()
    endpoint = f"http://127.0.0.1:{port}"
    bucket = f"mlops-{tmp_path.name[-8:].lower().replace('_', '-')}"
    aws = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_SESSION_TOKEN": "testing"}  # fmt: skip
    for key, value in aws.items():
        monkeypatch.setenv(key, value)
    fs = s3fs.S3FileSystem(skip_instance_cache=True, client_kwargs={"endpoint_url": endpoint})
    fs.mkdir(bucket)
    url = config.store_url()
    env = {**kernel_env, **aws, "MLOPS_NB_ARTIFACTS_URL": f"s3://{bucket}/artifacts"}
    monkeypatch.setenv("MLOPS_NB_ARTIFACTS_URL", env["MLOPS_NB_ARTIFACTS_URL"])
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    shown = []

    def run(client, source: str) -> str:
        cell = new_code_cell(source)
        nb.cells.append(cell)
        client.execute_cell(cell, len(nb.cells) - 1)
        shown.append(output_text(cell))
        return shown[-1]

    try:
        with kernel_session(nb, env=env, cwd=tmp_path) as client:
            run(client, "%load_ext mlops_nb\nimport numpy as np, pandas as pd\n"
                        "df = pd.DataFrame(np.random.default_rng(2).normal(size=(50_000, 4)), columns=list('abcd'))")  # fmt: skip
            servers[-1].stop()  # the bucket goes away between cells
            run(client, "%%mlops track --name k-snap\naccuracy = float(df['a'].abs().mean())")
            deadline = time.time() + 90
            while time.time() < deadline and not spool.has_waiting(url):
                time.sleep(0.5)  # the recorder tries the bucket once more, then keeps the copy
            assert spool.has_waiting(url), shown
            later = run(client, "x = 1")
            servers.append(ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False))
            servers[-1].start()  # moto keeps its buckets in this process: they survive the restart
            deadline = time.time() + 60
            while time.time() < deadline and spool.has_waiting(url):
                time.sleep(0.5)  # nobody does anything: the recorder retries by itself
            assert not spool.has_waiting(url)
        assert not any("Traceback" in text for text in shown), shown
        assert "snapshot of" in later and "queued" in later, later  # said under the next cell, once
        assert later.count("snapshot of") == 1
        clear_cache()
        store = get_store(url)
        [row] = store.list_runs()
        digest = store.get_run(row["id"])["inputs"][0]["digest"]
        assert store.get_snapshot(digest) is not None
        expected = pd.DataFrame(np.random.default_rng(2).normal(size=(50_000, 4)), columns=list("abcd"))
        pd.testing.assert_frame_equal(load_data(f"run:{row['id']}/df", store=store), expected)  # fingerprint checked
    finally:
        servers[-1].stop()
        s3fs.S3FileSystem.clear_instance_cache()
