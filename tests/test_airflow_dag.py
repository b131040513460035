"""The exported DAG in a real Airflow 3 (its own virtual environment, build/venv-airflow; `make airflow-venv`).

Airflow runs with a standalone SQLite metadata database in a temporary AIRFLOW_HOME, no
scheduler and no webserver: `airflow dags reserialize`, `dags list-import-errors`, then
`dags test`, which runs the task in Airflow's own task runner.  The task calls `mlops-nb run`
from this repository's environment (MLOPS_NB_COMMAND), as a worker with mlops-nb installed would.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from test_jobs_support import MLOPS_NB, ROOT, write_notebook

from mlops_nb import config
from mlops_nb.store import clear_cache, get_store

AIRFLOW_BIN = ROOT / "build" / "venv-airflow" / "bin"
QUICKSTART = ROOT / "notebooks" / "quickstart.ipynb"

if not (AIRFLOW_BIN / "airflow").exists():
    if os.environ.get("MLOPS_NB_REQUIRE_AIRFLOW"):  # make test: the venv is its prerequisite, a skip would hide a break
        raise RuntimeError(f"{AIRFLOW_BIN / 'airflow'} is missing: run `make airflow-venv`")
    pytest.skip("Airflow's virtual environment is missing: run `make airflow-venv`", allow_module_level=True)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    """(cli, run_airflow, store, folders): our CLI and Airflow's, one registry, one DAG folder."""
    base = tmp_path_factory.mktemp("airflow")
    home = base / "mlops"
    dags = base / "dags"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_NB_", "AIRFLOW"))}
    env.update(MLOPS_NB_HOME=str(home), MLOPS_NB_SPOOL_DIR=str(base / "spool"))
    airflow_env = dict(env, AIRFLOW_HOME=str(base / "airflow-home"), AIRFLOW__CORE__DAGS_FOLDER=str(dags),
                       AIRFLOW__CORE__LOAD_EXAMPLES="False", MLOPS_NB_COMMAND=str(MLOPS_NB))  # fmt: skip
    airflow_env.pop("MLOPS_NB_HOME")  # the DAG alone must say where the registry is

    def cli(*args: str) -> str:
        done = subprocess.run([str(MLOPS_NB), *args], env=env, cwd=base, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def run_airflow(*args: str, program: str = "airflow", expect: int | None = 0) -> subprocess.CompletedProcess:
        done = subprocess.run([str(AIRFLOW_BIN / program), *args], env=airflow_env, cwd=base, capture_output=True,
                              text=True, timeout=600)  # fmt: skip
        assert expect is None or done.returncode == expect, done.stdout[-3000:] + done.stderr[-3000:]
        return done

    run_airflow("db", "migrate")
    config.reset()
    clear_cache()
    store = get_store(f"sqlite:///{home / 'registry.db'}", str(home / "artifacts"))
    yield cli, run_airflow, store, base
    clear_cache()


def test_exported_quickstart_dag_runs_in_airflow_through_our_job_runner(airflow):
    cli, run_airflow, store, base = airflow
    cli("schedule", "add", str(QUICKSTART), "--cron", "0 3 * * *", "--name", "quickstart", "-p", "C", "0.5",
        "-p", "max_depth", "3", "--retries", "2", "--timeout", "300", "--force")  # fmt: skip
    dag_file = base / "dags" / "mlops_nb_quickstart.py"
    output_dir = base / "executed" / "nightly"  # does not exist yet: the task creates it
    cli("schedule", "export", "quickstart", "--to", "airflow", "--out", str(dag_file), "--output-dir", str(output_dir))
    source = dag_file.read_text()
    assert "from airflow.sdk import DAG, task" in source and "PapermillOperator" not in source

    run_airflow("dags", "reserialize")
    errors = run_airflow("dags", "list-import-errors", "--output", "json").stdout
    assert json.loads(errors.strip().splitlines()[-1]) == []  # Airflow's warnings come first on stdout
    assert "mlops_nb_quickstart" in run_airflow("dags", "list", "--output", "json").stdout

    # The schedule's retries and timeout as Airflow's own task object holds them.
    probe = ("import json, runpy, sys; t = runpy.run_path(sys.argv[1])['dag'].get_task('run_notebook'); "
             "print(json.dumps({'retries': t.retries, 'timeout': t.execution_timeout.total_seconds(), "
             "'delay': t.retry_delay.total_seconds(), 'backoff': t.retry_exponential_backoff}))")  # fmt: skip
    task = json.loads(run_airflow("-c", probe, str(dag_file), program="python").stdout.strip().splitlines()[-1])
    assert task == {"retries": 2, "timeout": 360.0, "delay": 30.0, "backoff": True}  # timeout + 60 s grace

    done = run_airflow("dags", "test", "mlops_nb_quickstart")
    log = done.stdout + done.stderr
    assert "state=success" in log
    (job,) = store.list_job_runs()
    assert job["status"] == "finished" and job["schedule_name"] == "quickstart"
    assert job["parameters"] == {"C": 0.5, "max_depth": 3}
    runs = {r["name"]: r for r in store.list_runs(job_run_id=job["id"])}
    assert set(runs) == {"prepare-data", "train-logreg", "train-forest", "retrain-logreg"}
    assert set(job["run_ids"]) == {r["id"] for r in runs.values()} and runs["train-logreg"]["metrics"]["accuracy"] > 0.8
    assert job["output_digest"] and f"job run {job['id']}" in log  # the task log carries our summary
    assert [p.name for p in output_dir.iterdir()] == [f"quickstart-{job['id'][:8]}.ipynb"]


def test_a_failing_notebook_fails_the_task_with_our_one_line_error(airflow, tmp_path):
    cli, run_airflow, store, base = airflow
    nb = write_notebook(tmp_path / "broken.ipynb", "import math", "y = math.sqrt(x - 5)", parameters="x = 1")
    cli("schedule", "add", str(nb), "--cron", "0 4 * * *", "--name", "broken", "--force")
    cli("schedule", "export", "broken", "--to", "airflow", "--out", str(base / "dags" / "mlops_nb_broken.py"),
        "--output-dir", str(base / "executed"))  # fmt: skip
    run_airflow("dags", "reserialize")
    done = run_airflow("dags", "test", "mlops_nb_broken", expect=None)
    log = done.stdout + done.stderr
    assert "state=success" not in log and "state=failed" in log
    (job,) = store.list_job_runs(schedule_name="broken")
    assert job["status"] == "failed"
    one_line = "failed: cell 3 [In 3], line 1: y = math.sqrt(x - 5): ValueError: math domain error"
    assert one_line in log
    assert f"mlops-nb run exited with status 1: {one_line}" in log  # the task's own error
    assert "Traceback" not in _our_lines(log)


def _our_lines(log: str) -> str:
    """Lines of the task log that came from `mlops-nb run` (Airflow's own traceback of the raise is its business)."""
    return "\n".join(line for line in log.splitlines() if "mlops_nb_broken.py" in line and "loc=mlops_nb_broken.py:" in line)
