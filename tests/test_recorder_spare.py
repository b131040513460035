"""Spare recorders: a recorder whose kernel has gone serves the next kernel, as a new one would.

Real kernels (nbclient) in turn, each with its own registry; the spares live in a runtime folder
of the test's own, and are stopped at its end.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from capture_kernel import kernel_session, output_text
from mlops_nb import load_model
from mlops_nb.store.sql import SqlStore
from waiting import wait_for

KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
FIT = (
    "%load_ext mlops_nb\n"
    "from sklearn.datasets import load_iris\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "X, y = load_iris(return_X_y=True)"
)
TRACKED = "%%mlops track --name {name}\nmodel = LogisticRegression(C={c}, max_iter=500).fit(X, y)\nacc = model.score(X, y)"
PID = "import mlops_nb.tracking.writer as w; print(w._recorder.pid)"


@pytest.fixture
def runtime():
    """A runtime folder (XDG_RUNTIME_DIR) of the test's own, short enough for socket paths."""
    folder = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    yield folder
    for sock in (folder / f"mlops_nb-recorders-{os.getuid()}").glob("*.sock"):
        try:
            os.kill(int(sock.stem.rpartition("-")[2]), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass
    shutil.rmtree(folder, ignore_errors=True)


def _session(tmp_path: Path, name: str, runtime: Path, *, spare_s: str = "120", python_path: str | None = None):
    """Run one kernel with its own registry: fit, record, and return (recorder pid, registry home)."""
    home = tmp_path / name
    cwd = tmp_path / f"{name}-cwd"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_NB_")}
    env.update(MLOPS_NB_HOME=str(home), MLOPS_NB_SPOOL_DIR=str(tmp_path / "spool"), XDG_RUNTIME_DIR=str(runtime),
               MLOPS_NB_RECORDER_SPARE_S=spare_s)  # fmt: skip
    if python_path:
        env["PYTHONPATH"] = python_path
    nb = new_notebook(metadata=KERNEL)
    with kernel_session(nb, env=env, cwd=cwd) as client:
        for source in (FIT, TRACKED.format(name=name, c=0.5), PID):
            nb.cells.append(new_code_cell(source))
            client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
        pid = int(output_text(nb.cells[-1]).split()[-1])
    return pid, home


def _spares(runtime: Path) -> set[int]:
    return {int(s.stem.rpartition("-")[2]) for s in (runtime / f"mlops_nb-recorders-{os.getuid()}").glob("*.sock")}


def _runs(home: Path) -> list[dict]:
    store = SqlStore(f"sqlite:///{home}/registry.db", str(home / "artifacts"))
    try:
        return [store.get_run(r["id"]) for r in store.list_runs()]
    finally:
        store.close()


def test_the_next_kernel_is_served_by_the_recorder_the_last_one_left(tmp_path, runtime):
    first, home1 = _session(tmp_path, "first", runtime)
    assert wait_for(lambda: first in _spares(runtime)), "the recorder did not wait as a spare"
    second, home2 = _session(tmp_path, "second", runtime)
    assert second == first  # no new process: the spare took the second kernel
    assert wait_for(lambda: first in _spares(runtime))  # and waits again

    # Each kernel's run went to its own registry and artifact folder, whole.
    runs1, runs2 = _runs(home1), _runs(home2)
    assert [r["name"] for r in runs1] == ["first"] and [r["name"] for r in runs2] == ["second"]
    assert runs2[0]["metrics"]["acc"] > 0.9 and runs2[0]["models"][0]["name"] == "model"
    os.environ["MLOPS_NB_HOME"] = str(home2)
    try:
        from mlops_nb import config
        from mlops_nb.store import clear_cache

        config.reset()
        clear_cache()
        model = load_model(runs2[0]["models"][0]["digest"])
        assert model.get_params()["C"] == 0.5
    finally:
        os.environ.pop("MLOPS_NB_HOME")
        config.reset()
        clear_cache()


def test_a_spare_whose_code_changed_declines_and_exits(tmp_path, runtime):
    """A module file the recorder loaded changes (an upgrade, an edit): the next kernel gets a new one."""
    package = tmp_path / "pkg"
    shutil.copytree(Path(__file__).resolve().parents[1] / "mlops_nb", package / "mlops_nb",
                    ignore=shutil.ignore_patterns("__pycache__", "labextension"))  # fmt: skip
    first, _ = _session(tmp_path, "first", runtime, python_path=str(package))
    assert wait_for(lambda: first in _spares(runtime))
    records = package / "mlops_nb" / "tracking" / "records.py"
    records.write_text(records.read_text() + "\n")
    second, home2 = _session(tmp_path, "second", runtime, python_path=str(package))
    assert second != first
    assert [r["name"] for r in _runs(home2)] == ["second"]
    assert wait_for(lambda: not _alive(first)), "the declining spare did not exit"


def test_a_spare_exits_when_no_kernel_comes(tmp_path, runtime):
    first, _ = _session(tmp_path, "first", runtime, spare_s="1")
    assert wait_for(lambda: not _alive(first), timeout=30)
    assert first not in _spares(runtime)


def test_without_spares_the_recorder_exits_with_its_kernel(tmp_path, runtime):
    first, _ = _session(tmp_path, "first", runtime, spare_s="0")
    assert wait_for(lambda: not _alive(first), timeout=30)
    assert not _spares(runtime)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def test_jobs_back_to_back_share_a_recorder_and_wait_for_their_runs(tmp_path, runtime, monkeypatch, store):
    """``mlops-nb run`` returns only once its runs are written, whether the recorder is new or a spare."""
    from test_jobs_support import write_notebook

    from mlops_nb.jobs import run_notebook

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("MLOPS_NB_RECORDER_SPARE_S", "120")
    fits = [TRACKED.format(name=f"fit{i}", c=c) for i, c in enumerate((0.1, 1.0))]
    nb = write_notebook(tmp_path / "fits.ipynb", FIT, *fits, parameters="seed = 0")
    spares = []
    for seed in (1, 2):
        job = run_notebook(nb, {"seed": seed}, output=str(tmp_path / "out") + "/")
        assert job.ok, job.error
        record = store.get_job_run(job.id)
        assert len(record["run_ids"]) == 2  # both runs written before run_notebook returned
        assert all(store.get_run(r)["models"] for r in record["run_ids"])
        assert wait_for(lambda: len(_spares(runtime)) == 1)
        spares.append(_spares(runtime))
    assert spares[0] == spares[1]  # the second job's kernel was served by the first job's recorder


def test_a_runtime_folder_too_deep_for_a_socket_falls_back_to_the_temp_folder(monkeypatch, tmp_path):
    from mlops_nb.tracking import spare

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / ("x" * 90)))
    assert spare.folder().parent == Path(tempfile.gettempdir())
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/tmp")
    shared = Path("/tmp") / f"mlops_nb-recorders-{os.getuid()}"
    assert spare.folder() == shared and shared.stat().st_mode & 0o077 == 0
