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

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
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
    proxy.wait_upstream(1 << 20, timeout=120)  # a megabyte of the model is on the wire
    proxy.kill()
    killed_at = time.time()
    out, err = writer.communicate(timeout=300)
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
    print(f"\nS3 killed mid-upload: writer gave up after {given_up_s:.1f} s, sync took {sync_s:.1f} s")
