"""The recorder process: a real kernel's runs are written beside it, completely and in order.

Each test drives a real ipykernel through nbclient and reads the real SQLite
registry from this process afterwards.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from capture_kernel import flush, kernel_session, output_text
from mlops_nb import load_model
from mlops_nb.fingerprint import fingerprint
from mlops_nb.tracking.recorder import LOCK_ENV, wait_for_recorders
from mlops_nb.tracking.records import apply

KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
SETUP = (
    "%load_ext mlops_nb\n"
    "from sklearn.datasets import load_iris\n"
    "from sklearn.ensemble import RandomForestClassifier\n"
    "X, y = load_iris(return_X_y=True)"
)
FIT = "%%mlops track --name {name}\nforest = RandomForestClassifier(n_estimators=30, random_state=0).fit(X, y)\nacc = forest.score(X, y)"


class Kernel:
    def __init__(self, client, nb) -> None:
        self.client, self.nb = client, nb

    def run(self, source: str) -> str:
        cell = new_code_cell(source)
        self.nb.cells.append(cell)
        self.client.execute_cell(cell, len(self.nb.cells) - 1)
        return output_text(cell)


@pytest.fixture
def kernel(kernel_env, tmp_path):
    nb = new_notebook(metadata=KERNEL)
    with kernel_session(nb, env=kernel_env, cwd=tmp_path) as client:
        k = Kernel(client, nb)
        k.run(SETUP)
        yield k


def _runs(store, name):
    return [r for r in store.list_runs() if r["name"] == name]


def test_the_kernel_records_without_importing_the_store_or_skops(kernel, store):
    shown = kernel.run(FIT.format(name="fit"))
    assert "models forest RandomForestClassifier" in shown
    # The heavy imports happen in the recorder, not in the user's kernel.
    assert kernel.run("import sys; print(sorted(m for m in ('sqlalchemy', 'skops') if m in sys.modules))").strip() == "[]"
    pids = kernel.run(
        "import mlops_nb.tracking.writer as w, os; print(os.getpid(), w._recorder._proc.pid)"
    ).split()  # fmt: skip
    assert pids[0] != pids[1]
    flush(kernel.client)
    (run,) = _runs(store, "fit")
    full = store.get_run(run["id"])
    assert full["status"] == "finished" and full["pid"] == int(pids[0])  # the kernel's identity, for reaping
    assert full["metrics"]["acc"] == pytest.approx(1.0)
    (model,) = full["models"]
    assert model["flavor"] == "skops"
    assert fingerprint(load_model(model["digest"], store=store)) == model["digest"]


def test_a_read_in_the_kernel_waits_for_its_own_runs(kernel, store):
    # This process holds the registry's write lock for a while: the recorder's writes of the
    # run wait for it, while a read (SQLite WAL) would not; so only the kernel's own wait for
    # its runs can make the next cell see the run finished.
    db = sqlite3.connect(store.url.removeprefix("sqlite:///"), check_same_thread=False, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    release = threading.Timer(2.0, lambda: db.execute("ROLLBACK"))
    release.start()
    try:
        kernel.run(FIT.format(name="read-back"))
        started = time.monotonic()
        shown = kernel.run("import mlops_nb\nr = mlops_nb.runs(name='read-back')\nprint(len(r), r['status'].iloc[0], r['metrics.acc'].iloc[0])")
    finally:
        release.join()
        db.close()
    assert shown.split() == ["1", "finished", "1.0"]
    assert time.monotonic() - started > 0.5  # it did wait for the lock to go


def test_the_model_recorded_is_the_one_the_cell_ended_with(kernel, store):
    kernel.run(FIT.format(name="snapshot"))
    # Changed at once, while the recorder may still be writing the run.
    kernel.run("forest.set_params(n_estimators=3).fit(X[:50], y[:50]); changed = True")
    flush(kernel.client)
    (run,) = _runs(store, "snapshot")
    (model,) = store.get_run(run["id"])["models"]
    rebuilt = load_model(model["digest"], store=store)
    assert rebuilt.n_estimators == 30 and len(rebuilt.estimators_) == 30


def test_a_model_class_defined_in_the_notebook_is_kept(kernel, store):
    kernel.run(
        "from sklearn.linear_model import LogisticRegression\n"
        "class MyModel(LogisticRegression):\n    pass"
    )  # fmt: skip
    kernel.run("%%mlops track --name custom\nmine = MyModel(max_iter=500).fit(X, y)")
    flush(kernel.client)
    (run,) = _runs(store, "custom")
    (model,) = store.get_run(run["id"])["models"]
    assert model["class_name"] == "__main__.MyModel"
    assert model["flavor"] == "joblib" and model["artifact_size"] > 0  # its pickle: nothing else can rebuild it
    assert kernel.run("import sys\nprint('skops' in sys.modules)").strip() == "False"  # no 1-2 s import in the cell
    shown = kernel.run(f"print(type(mlops_nb.load_model({model['digest']!r}, trust=True)).__name__)")
    assert shown.strip() == "MyModel"


def test_runs_survive_the_kernel_exiting_right_after_the_cell(kernel_env, tmp_path, store):
    nb = new_notebook(metadata=KERNEL, cells=[new_code_cell(SETUP), new_code_cell(FIT.format(name="last-cell"))])
    lock = tmp_path / "recorder.lock"  # as the job runner does
    with kernel_session(nb, env={**kernel_env, LOCK_ENV: str(lock)}, cwd=tmp_path) as client:
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
    # No sync in the kernel: the recorder outlives it if need be, and finishes.
    assert wait_for_recorders(lock, timeout=120)
    (run,) = _runs(store, "last-cell")
    assert store.get_run(run["id"])["status"] == "finished"
    assert store.get_run(run["id"])["models"][0]["flavor"] == "skops"


def test_a_dead_recorder_loses_nothing(kernel, store):
    kernel.run(FIT.format(name="before-kill"))
    pid = int(kernel.run("import mlops_nb.tracking.writer as w; print(w._recorder._proc.pid)"))
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    shown = ""  # the first cell after the death says so (the snapshot writer may be the one to notice)
    while (out := kernel.run("print(w._recorder is not None and w._recorder.alive)")).strip().endswith("True"):
        shown += out
        assert time.monotonic() < deadline, "the kernel did not notice the recorder had died"
        time.sleep(0.1)
    shown += out + kernel.run(FIT.format(name="after-kill"))
    assert "recorder process stopped (killed by signal 9)" in shown
    flush(kernel.client)
    for name in ("before-kill", "after-kill"):
        (run,) = _runs(store, name)
        full = store.get_run(run["id"])
        assert full["status"] == "finished" and full["models"][0]["flavor"] == "skops", name


def test_a_record_written_twice_on_replay_is_written_once(store, mlops_home):
    from mlops_nb.tracking.run import Run

    run = Run("replayed", store=store)
    run.start(persist=False)
    run.log_metric("loss", 0.5)
    run.conclude()
    message = run.finish_message()
    apply(message, store=store)
    apply(message, store=store, replay=True)  # its first writer died before confirming
    full = store.get_run(run.id)
    assert full["status"] == "finished"
    assert [m["value"] for m in full["metric_history"]] == [0.5]


def test_the_summary_line_is_one_output(kernel):
    kernel.run(FIT.format(name="one-output"))
    streams = [o for o in kernel.nb.cells[-1].outputs if o["output_type"] == "stream"]
    assert len(streams) == 1 and streams[0]["text"].startswith("mlops run ") and streams[0]["text"].endswith("s\n")
    assert nbformat.validate(kernel.nb) is None


@pytest.mark.parametrize("where", ["process", "thread"])
def test_a_shell_writing_in_the_background_reads_its_own_runs(shell, store, monkeypatch, where):
    monkeypatch.setenv("MLOPS_NB_BACKGROUND_WRITES", "1")
    if where == "thread":
        monkeypatch.setenv("MLOPS_NB_RECORDER", "thread")
    shell.run_cell(SETUP.split("\n", 1)[1])
    result = shell.run_cell(FIT.format(name=f"in-{where}"))
    assert result.success
    # No explicit wait: opening a connection to the store waits for this process's writes.
    (run,) = _runs(store, f"in-{where}")
    full = store.get_run(run["id"])
    assert full["status"] == "finished" and full["models"][0]["flavor"] == "skops"
    assert full["params"]["forest.n_estimators"] == 30
