"""Hardening of the store: damaged pages, dead runs, misplaced artifacts, read-only commands.

Everything on real SQLite files and real processes; the CLI runs as the
installed ``mlops-nb`` command, so exit codes and stderr are what a user sees.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_jobs_support import MLOPS_NB, child_env

import mlops_nb
from mlops_nb import config
from mlops_nb.errors import NoRegistry, RecordingError, StoreDamaged, StoreError
from mlops_nb.store import clear_cache, get_store
from mlops_nb.processes import current_process, host_name, process_gone, process_start_time


def _cli(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(MLOPS_NB), *args], env=child_env(home), cwd=cwd, capture_output=True, text=True, timeout=120)


def _record_runs(n: int) -> list[str]:
    ids = []
    for i in range(n):
        with mlops_nb.track(name=f"run-{i}") as run:
            run.log_params({f"p{j}": "x" * 40 for j in range(10)})
            run.log_metric("accuracy", i / n)
        ids.append(run.id)
    return ids


def _corrupt_table_pages(db: Path, tables: tuple[str, ...]) -> int:
    """Overwrite every page of ``tables`` (and their indexes) with garbage; the schema pages stay intact."""
    con = sqlite3.connect(db)
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    names = set(tables) | {r[0] for r in con.execute(
        f"SELECT name FROM sqlite_master WHERE type='index' AND tbl_name IN ({','.join('?' * len(tables))})", tables
    )}  # fmt: skip
    marks = ",".join("?" * len(names))
    pages = sorted({r[0] for r in con.execute(f"SELECT pageno FROM dbstat WHERE name IN ({marks})", sorted(names))})
    con.close()
    assert pages and 1 not in pages
    with open(db, "r+b") as f:
        for page in pages:
            f.seek((page - 1) * page_size)
            f.write(b"\xde\xad\xbe\xef" * (page_size // 4))
    return len(pages)


# ---- 1. damaged data pages: one clear error everywhere, and doctor finds it ---------------------
def test_damaged_pages_give_store_errors_not_database_tracebacks(mlops_home):
    ids = _record_runs(30)
    clear_cache()  # closes the connections: the WAL is checkpointed into registry.db
    db = mlops_home / "registry.db"
    assert not (mlops_home / "registry.db-wal").exists() or (mlops_home / "registry.db-wal").stat().st_size == 0
    _corrupt_table_pages(db, ("runs", "params", "metrics", "latest_metrics"))

    store = get_store()  # the schema pages are intact: the store opens
    for call in (store.summary, lambda: store.get_run(ids[0]), store.list_runs, lambda: mlops_nb.runs()):
        with pytest.raises(StoreDamaged, match="could not be read: .*malformed.*mlops-nb doctor"):
            call()
    with pytest.raises(RecordingError, match="The code ran, but run .* could not be recorded: .*mlops-nb doctor"):
        with mlops_nb.track(name="after") as run:  # a write fails the same way, once the code has run
            run.log_metric("accuracy", 1.0)

    for args in (("summary",), ("runs",), ("show", ids[0][:8])):
        done = _cli(mlops_home, *args)
        assert done.returncode == 1, done
        assert "Traceback" not in done.stderr and "sqlalchemy" not in done.stderr
        assert done.stderr.startswith("Error: ") and "mlops-nb doctor" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1

    checked = _cli(mlops_home, "doctor")
    assert checked.returncode == 1, checked
    assert "DAMAGE database: SQLite integrity_check" in checked.stdout and "Traceback" not in checked.stderr


def test_doctor_verifies_artifacts_reports_running_runs_and_removes_stale_temp_files(mlops_home):
    from sklearn.linear_model import LogisticRegression

    with mlops_nb.track(name="train") as run:
        digest = run.log_model(LogisticRegression().fit([[0], [1], [2], [3]], [0, 0, 1, 1]), "clf")
    store = get_store()
    artifact = store.get_model_version(digest)["artifact_digest"]
    tmp = mlops_home / "artifacts" / "tmp"
    (tmp / "stale").write_bytes(b"x" * 4096)  # what a writer killed mid-write leaves behind
    old = time.time() - 7200
    os.utime(tmp / "stale", (old, old))
    (tmp / "fresh").write_bytes(b"y")  # may be a write in progress: left alone
    live = mlops_nb.track(name="still-going")
    live.__enter__()
    try:
        mlops_nb.sync()  # its start row now, not after a second: another process reads next
        clear_cache()

        done = _cli(mlops_home, "doctor")
        assert done.returncode == 0, done
        assert "ok     artifacts: 1 verified against their digests" in done.stdout
        assert "fixed  temporary files: removed 1 left by killed writes (4.0 KB)" in done.stdout
        assert "1 younger than 3600 s left alone" in done.stdout
        assert f"{live.id[:8]} still-going (pid {os.getpid()} on this host, still alive)" in done.stdout
        assert not (tmp / "stale").exists() and (tmp / "fresh").exists()

        path = mlops_home / "artifacts" / artifact[:2] / artifact[2:]
        path.write_bytes(path.read_bytes()[:-1] + b"!")  # one byte changed on disk
        done = _cli(mlops_home, "doctor")
        assert done.returncode == 1
        assert f"DAMAGE artifacts: {artifact[:12]} (model {digest[:12]}) does not match its digest" in done.stdout
        path.unlink()
        done = _cli(mlops_home, "doctor")
        assert done.returncode == 1 and f"{artifact[:12]} (model {digest[:12]}) is missing" in done.stdout
    finally:  # a run left open would be the current run of every later test
        live.__exit__(None, None, None)


# ---- 2. a new store brings its own artifact folder --------------------------------------------------
def test_changing_the_store_moves_the_artifacts(tmp_path, mlops_home):
    config.init(store=f"sqlite:///{tmp_path}/a/registry.db")
    assert get_store().artifacts.url == str(tmp_path / "a" / "artifacts")
    config.init(store=f"sqlite:///{tmp_path}/b/registry.db")
    store = get_store()
    assert store.artifacts.url == str(tmp_path / "b" / "artifacts")
    digest = store.artifacts.put_bytes(b"model")
    assert (tmp_path / "b" / "artifacts" / digest[:2] / digest[2:]).exists()
    assert not (tmp_path / "a" / "artifacts" / digest[:2]).exists()
    # an explicit folder is kept while the store stays the same
    config.init(store=f"sqlite:///{tmp_path}/b/registry.db", artifacts=str(tmp_path / "shared"))
    config.init(store=f"sqlite:///{tmp_path}/b/registry.db")
    assert get_store().artifacts.url == str(tmp_path / "shared")


# ---- 4. runs of dead processes -----------------------------------------------------------------------
_HANG = textwrap.dedent(
    """
    import sys, time, mlops_nb
    run = mlops_nb.track(name=sys.argv[1])
    run.__enter__()
    print(run.id, flush=True)
    time.sleep(600)
    """
)


def _hanging_run(home: Path, name: str) -> tuple[subprocess.Popen, str]:
    """A process whose run is still going; returns once the run is visible to other processes."""
    proc = subprocess.Popen([sys.executable, "-c", _HANG, name], env=child_env(home), stdout=subprocess.PIPE, text=True)
    run_id = proc.stdout.readline().strip()
    started = time.monotonic()
    while not any(r["id"] == run_id for r in get_store().list_runs()):
        assert time.monotonic() - started < 5, "a running run stayed unseen by other processes"
        time.sleep(0.05)
    return proc, run_id


def test_runs_record_their_process(store):
    with mlops_nb.track(name="me") as run:
        row = store.get_run(run.id)
        assert row["status"] == "running"
        assert (row["host"], row["pid"]) == (host_name(), os.getpid())
        assert row["process_start"] == pytest.approx(process_start_time(os.getpid()), abs=1)
    assert current_process()["pid"] == os.getpid()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="the boot-relative stamp is read from Linux's /proc")
def test_the_process_stamp_does_not_move_with_the_wall_clock():
    """Seconds after boot: a stepped wall clock or a paused VM cannot make a live run look like a reused pid."""
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    stamp = process_start_time(os.getpid())
    assert 0 <= stamp <= uptime
    assert not process_gone(os.getpid(), stamp)
    assert process_gone(os.getpid(), stamp + 3600)  # another process's stamp: the pid was reused
    assert not process_gone(os.getpid(), time.time())  # an epoch stamp of an older version is left alone


def test_a_killed_process_leaves_an_interrupted_run_not_a_running_one(mlops_home):
    proc, run_id = _hanging_run(mlops_home, "killed")
    try:
        assert get_store().get_run(run_id)["status"] == "running"
        clear_cache()
        assert get_store().get_run(run_id)["status"] == "running"  # still alive: left alone
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    clear_cache()
    run = get_store().get_run(run_id)  # opening the store noticed the process is gone
    assert run["status"] == "interrupted" and "ended on" in run["error"] and run["end_time"]
    listing = _cli(mlops_home, "runs")
    assert "interrupted" in listing.stdout


def test_a_reused_pid_does_not_keep_a_run_running(mlops_home):
    proc, run_id = _hanging_run(mlops_home, "reused")
    try:
        store = get_store()
        assert not process_gone(proc.pid, process_start_time(proc.pid))
        # The same pid with another start time is another process: the recorded one is gone.
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE runs SET process_start = process_start - 3600 WHERE id = ?", (run_id,))
        clear_cache()
        assert get_store().get_run(run_id)["status"] == "interrupted"
        assert proc.poll() is None  # the process itself was not touched
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_runs_of_another_host_are_left_alone(store):
    with mlops_nb.track(name="elsewhere") as run:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE runs SET host = 'another-machine', pid = 1 WHERE id = ?", (run.id,))
        clear_cache()
        assert get_store().get_run(run.id)["status"] == "running"


# ---- 5. read-only commands never create a registry -----------------------------------------------
@pytest.mark.parametrize("args", [("summary",), ("runs",), ("show", "abc"), ("lineage", "run:abc"),
                                  ("jobs", "list"), ("schedule", "list"), ("doctor",)])  # fmt: skip
def test_read_only_commands_in_an_empty_folder_say_no_registry_is_here(tmp_path, args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_NB_")}
    done = subprocess.run([str(MLOPS_NB), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done
    assert done.stderr.startswith("Error: No mlops_nb registry here: looked for ")
    assert str(tmp_path / ".mlops" / "registry.db") in done.stderr and "MLOPS_NB_HOME" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".mlops").exists()


def test_no_registry_error_from_the_api(tmp_path, mlops_home):
    with pytest.raises(NoRegistry, match="MLOPS_NB_HOME"):
        get_store(create=False)
    assert not mlops_home.exists()
    get_store()  # recording code may still create one
    assert (mlops_home / "registry.db").exists()


def test_schedule_history_of_an_unknown_schedule_fails_like_trigger(store, mlops_home):
    for args in (("schedule", "history", "NOSUCH"), ("schedule", "trigger", "NOSUCH")):
        done = _cli(mlops_home, *args)
        assert done.returncode == 1, done
        assert "No schedule named 'NOSUCH'" in done.stderr and "mlops-nb schedule list" in done.stderr
