"""No run lost when the registry blinks: a real PostgreSQL server stopped and started between cells.

Each fault test starts its own throwaway server (the session's shared one
stays up for the other tests), stops it the way a restart does
(``pg_ctl -m fast``), tracks runs while it is down, starts it again and
checks every run is in the registry exactly once.
"""

from __future__ import annotations

import time

import pytest
from nbformat.v4 import new_code_cell, new_notebook

import mlops_nb
from capture_kernel import kernel_session, output_text
from mlops_nb import config
from mlops_nb.errors import SpoolError
from mlops_nb.store import clear_cache, get_store
from mlops_nb.tracking import spool
from spool_support import cli as _cli
from spool_support import pg  # noqa: F401  (a fixture)
from spool_support import run_names as _names

KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


def test_runs_tracked_while_the_registry_is_down_wait_and_are_written_once_by_sync(pg, capsys):
    url = config.store_url()
    with mlops_nb.track(name="before"):
        mlops_nb.log_metric("accuracy", 0.9)
    pg.pause()
    clear_cache()
    with mlops_nb.track(name="during") as run:  # no exception: the cell's work is not undone
        mlops_nb.log_metric("accuracy", 0.8)
    assert run.queued and "connection" in run.queued.lower() and len(run.queued) <= 200
    assert "queued (registry unreachable:" in run.summary_line()

    status = _cli("status")
    assert status.returncode == 1, status.stdout + status.stderr
    # (one record: a run that ends within starts.DELAY_S is written whole, start included)
    assert "1 record(s) of 1 run(s)" in status.stdout and "Traceback" not in status.stderr

    pg.resume()
    synced = _cli("sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "wrote 1 waiting record(s)" in synced.stdout
    assert _names(url) == ["before", "during"]
    during = next(r for r in get_store(url).list_runs() if r["name"] == "during")
    assert get_store(url).get_run(during["id"])["metrics"] == {"accuracy": 0.8}
    assert not spool.has_waiting(url)
    assert _cli("status").returncode == 0


def test_a_kernel_loses_no_run_across_a_restart_and_nobody_has_to_do_anything(pg, kernel_env, tmp_path):
    url = config.store_url()
    nb = new_notebook(metadata=KERNEL)
    env = {**kernel_env, "MLOPS_NB_STORE_URL": url, "MLOPS_NB_ARTIFACTS_URL": str(tmp_path / "artifacts")}

    def run(client, source: str) -> str:
        cell = new_code_cell(source)
        nb.cells.append(cell)
        client.execute_cell(cell, len(nb.cells) - 1)
        return output_text(cell)

    fit = "%%mlops track --name {}\nfrom sklearn.linear_model import LogisticRegression\nclf = LogisticRegression().fit(X, y)\naccuracy = clf.score(X, y)"
    with kernel_session(nb, env=env, cwd=tmp_path) as client:
        run(client, "%load_ext mlops_nb\nfrom sklearn.datasets import load_iris\nX, y = load_iris(return_X_y=True)")
        run(client, fit.format("first"))
        run(client, "mlops_nb_sync = __import__('mlops_nb').sync; mlops_nb_sync()")
        pg.pause()
        second = run(client, fit.format("second"))
        run(client, "import time; time.sleep(1)")
        third = run(client, fit.format("third"))
        status = run(client, "%mlops status")
        pg.resume()
        deadline = time.time() + 60
        while time.time() < deadline and _names(url) != ["first", "second", "third"]:
            time.sleep(1)  # the recorder retries by itself
        assert _names(url) == ["first", "second", "third"], (second, third, status)
        assert "Traceback" not in second + third
        assert "queued (registry unreachable" in third  # behind the record of the second, already spooled
        assert "in the local spool" in status
    assert not spool.has_waiting(url)
    store = get_store(url)
    for row in store.list_runs():
        run_ = store.get_run(row["id"])
        assert run_["status"] == "finished" and run_["models"], run_["name"]
        assert store.artifacts.get_bytes(run_["models"][0]["artifact_digest"])  # verified by digest


def test_a_replay_after_a_lost_acknowledgement_adds_nothing(store, mlops_home):
    with mlops_nb.track(name="once") as run:
        mlops_nb.log_metric("accuracy", 0.5)
    message = run.finish_message()
    spool.append(message, "acknowledgement lost", "run once")  # the write happened; its answer did not arrive
    written, why = spool.replay(store.url)
    assert (written, why) == (1, None)
    assert [r["name"] for r in store.list_runs()] == ["once"]
    assert store.get_run(run.id)["metrics"] == {"accuracy": 0.5}


def test_records_the_store_refuses_are_kept_aside_and_never_block_the_rest(store, mlops_home):
    bad = {"op": "unknown", "store": store.url, "artifacts": store.artifacts.url, "run_id": "x" * 32}
    spool.append(bad, "test", "a record")
    with mlops_nb.track(name="after"):
        pass
    assert spool.replay(store.url) == (0, None)
    assert [r["name"] for r in store.list_runs()] == ["after"]
    kept = spool.refused(store.url)
    assert len(kept) == 1 and "Unknown record" in kept[0]["reason"]


def test_a_full_spool_says_so_in_one_line_and_drops_nothing(mlops_home, monkeypatch):
    monkeypatch.setenv("MLOPS_NB_SPOOL_MAX", "2K")
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    message = {"op": "start", "store": url, "artifacts": "/tmp/x", "run_id": "a" * 32, "fields": {"pad": "x" * 1000}}
    spool.append(message, "down", "run aaaaaaaa")
    with pytest.raises(SpoolError) as caught:
        spool.append(message, "down", "run aaaaaaaa")
    text = str(caught.value)
    assert "spool for" in text and "is full" in text and "MLOPS_NB_SPOOL_MAX" in text and "\n" not in text
    assert spool.waiting(url)[0].count == 1  # the first record is still there


def test_a_bad_spool_cap_is_a_clear_error(mlops_home, monkeypatch):
    monkeypatch.setenv("MLOPS_NB_SPOOL_MAX", "lots")
    with pytest.raises(SpoolError, match="MLOPS_NB_SPOOL_MAX='lots' is not a size"):
        spool.max_bytes()


def _spooled_ops(url: str) -> set[str]:
    import sqlite3

    path = spool.spool_path(url)
    if not path.exists():
        return set()
    try:
        with sqlite3.connect(path) as db:
            return {op for (op,) in db.execute("SELECT op FROM records")}
    except sqlite3.OperationalError:  # the file is there, its table not yet: being created right now
        return set()


def test_records_spooled_by_a_recorder_that_is_killed_are_written_by_the_next_command(pg, kernel_env, tmp_path):
    url = config.store_url()
    nb = new_notebook(metadata=KERNEL)
    env = {**kernel_env, "MLOPS_NB_STORE_URL": url, "MLOPS_NB_ARTIFACTS_URL": str(tmp_path / "artifacts")}
    with kernel_session(nb, env=env, cwd=tmp_path) as client:
        def run(source: str) -> str:
            cell = new_code_cell(source)
            nb.cells.append(cell)
            client.execute_cell(cell, len(nb.cells) - 1)
            return output_text(cell)

        run("%load_ext mlops_nb")
        pg.pause()
        run("%%mlops track --name kept\naccuracy = 0.75")
        # Wait for the run's end to be spooled (on a loaded machine its start may be spooled on its own first).
        deadline = time.time() + 30
        while time.time() < deadline and "finish" not in _spooled_ops(url):
            time.sleep(0.2)
        assert "finish" in _spooled_ops(url), _spooled_ops(url)
        run("import os, signal, mlops_nb.tracking.writer as w; os.kill(w._recorder._proc.pid, signal.SIGKILL)")
    pg.resume()
    synced = _cli("sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert _names(url) == ["kept"]
    row = get_store(url).list_runs()[0]
    assert get_store(url).get_run(row["id"])["metrics"] == {"accuracy": 0.75}


def test_a_file_read_while_the_registry_is_down_keeps_the_bytes_the_run_read(pg, tmp_path, capsys):
    url = config.store_url()
    csv = tmp_path / "train.csv"
    csv.write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(500)))
    read = csv.read_bytes()
    pg.pause()
    clear_cache()
    with mlops_nb.track(name="fit", inputs={"train": str(csv)}) as run:
        mlops_nb.log_metric("accuracy", 0.7)
    mlops_nb.sync()  # the snapshot is taken at the end of the run, and queued with it
    assert run.queued
    csv.write_text("x,y\n1,1\n")  # the user edits the file before the registry is back
    pg.resume()
    synced = _cli("sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "Traceback" not in synced.stderr and not spool.has_waiting(url)
    back = mlops_nb.load_data(f"run:{run.id}/train", store=get_store(url))
    assert back == read  # the bytes as the run read them, not the edited file
