"""A batch on a real Dask cluster: a `dask scheduler` and two `dask worker --nthreads 1` processes.

The registry is PostgreSQL and the artifacts are on S3 (moto's server on 127.0.0.1), the
team backends the workers reach as separate OS processes.  One worker is killed (SIGKILL,
its whole process group) while it runs a member: Dask gives the member to the other worker,
and the registry holds each combination's finished job run once; the killed attempt is
marked ``lost`` and its notebook did not run on.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from test_jobs_support import ROOT, TRACKED, write_notebook

from mlops_nb.jobs.batches import batch, member_job_id
from mlops_nb.store import SqlStore

DASK = ROOT / ".venv" / "bin" / "dask"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(tmp_path, mlops_home, s3_endpoint):
    """(scheduler address, {name: worker process}); every process in its own session so that it can be killed whole."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ)  # the workers' environment: AWS_* point at moto
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    procs: dict[str, subprocess.Popen] = {}

    def start(name: str, *args: str) -> None:
        with open(logs / f"{name}.log", "wb") as log:
            procs[name] = subprocess.Popen([str(DASK), *args], env=env, cwd=tmp_path, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

    start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0")
    for name in ("w1", "w2"):
        start(name, "worker", address, "--nthreads", "1", "--name", name, "--dashboard-address", ":0",
              "--local-directory", str(tmp_path / name))  # fmt: skip
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=120)
    yield address, procs
    for proc in procs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _processes_of(job_run_id: str) -> list[int]:
    """Live processes started for a job run (papermill, its kernel): their environment names it."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"MLOPS_NB_JOB_RUN_ID={job_run_id}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_batch_on_a_two_worker_cluster_survives_a_killed_worker(cluster, pg_database, s3_bucket, tmp_path):
    address, procs = cluster
    store = SqlStore(pg_database, f"s3://{s3_bucket}/team/artifacts")
    nb = write_notebook(
        tmp_path / "grid.ipynb", "import time\ntime.sleep(4)  # long enough to be killed in",
        TRACKED, "%%mlops track --name fit\nscore = a * 10 + b", parameters="a = 1\nb = 1",
    )  # fmt: skip
    grid = {"a": [1, 2, 3], "b": [1, 2]}
    outcome: dict = {}
    runner = threading.Thread(target=lambda: outcome.update(result=batch(nb, grid, dask=address, store=store, progress=False)))
    runner.start()

    # Both workers busy with a member each (running job runs, sleeping in the first cell): kill w1 whole.
    deadline = time.monotonic() + 180
    while len(store.list_job_runs(status="running")) < 2 and runner.is_alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    running = store.list_job_runs(status="running")
    assert len(running) == 2, "both workers should be running a member"
    os.killpg(procs["w1"].pid, signal.SIGKILL)
    procs["w1"].wait()
    runner.join(timeout=600)
    result = outcome["result"]

    assert result.ok and result.backend == f"dask:{address}" and len(result.runs) == 6
    job_runs = store.list_job_runs(batch_id=result.id)
    finished = [j for j in job_runs if j["status"] == "finished"]
    lost = [j for j in job_runs if j["status"] != "finished"]
    # Every combination finished exactly once, with the batch's provenance.
    assert sorted((j["parameters"]["a"], j["parameters"]["b"]) for j in finished) == [
        (1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2)]  # fmt: skip
    assert {r.id for r in result.runs} == {j["id"] for j in finished}
    tracked = store.list_runs(batch_id=result.id)
    assert sorted(r["job_run_id"] for r in tracked) == sorted(j["id"] for j in finished)  # one tracked run each
    for run in tracked:
        job = next(j for j in finished if j["id"] == run["job_run_id"])
        assert run["name"] == "fit" and run["status"] == "finished"
        assert job["run_ids"] == [run["id"]] and job["batch_id"] == result.id and job["output_digest"]
        assert store.artifacts.exists(job["output_digest"])  # the executed notebook, on S3
    assert store.get_batch(result.id)["status"] == "finished"

    # The killed worker's member: its first attempt is marked lost, the second one finished; its notebook died with it.
    (gone,) = lost
    assert gone["status"] == "lost" and gone["attempt"] == 1 and "Dask worker died" in gone["error"]
    member = next(i for i, combo in enumerate(result.runs) if combo.parameters == gone["parameters"])
    assert gone["id"] == member_job_id(result.id, member, 1)
    again = next(j for j in finished if j["parameters"] == gone["parameters"])
    assert again["id"] == member_job_id(result.id, member, 2) and again["attempt"] == 2
    assert _processes_of(gone["id"]) == []
    assert store.list_runs(job_run_id=gone["id"]) == []  # killed in its first cell: nothing tracked twice
    assert all(j["attempt"] == 1 for j in finished if j["id"] != again["id"])
    store.close()
