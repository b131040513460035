"""Bad input gives one clear line: quoting mistakes in magics, missing drivers, unreachable Dask, wrong parameter types."""

from __future__ import annotations

import subprocess

import nbformat
import pytest
from IPython.core.error import UsageError
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook
from test_jobs_support import MLOPS_NB, TRACKED, child_env, write_notebook

from mlops_nb import config
from mlops_nb.errors import ConfigError, JobError
from mlops_nb.jobs import batch, run_notebook
from mlops_nb.store import SqlStore


def _cli(home, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(MLOPS_NB), *args], env=child_env(home), capture_output=True, text=True, timeout=180)


def _one_line_error(done: subprocess.CompletedProcess, *expected: str) -> None:
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    for text in expected:
        assert text in lines[0], lines[0]


# ---- unterminated quotes in magic lines ----------------------------------------------------------
def test_unterminated_quote_in_a_magic_line_is_a_usage_error_in_a_real_kernel(tmp_path, kernel_env):
    nb = new_notebook(cells=[new_code_cell(TRACKED), new_code_cell('%mlops runs --name "x')],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})  # fmt: skip
    client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(tmp_path)}})
    client.km_kwargs = {"env": kernel_env}  # the kernel writes to this test's registry
    client.execute(env=kernel_env)
    # IPython shows a UsageError as one line on stderr, with no traceback
    shown = "".join(o.get("text", "") for o in nb.cells[1].outputs if o["output_type"] == "stream")
    assert not [o for o in nb.cells[1].outputs if o["output_type"] == "error"], nb.cells[1].outputs
    assert shown.startswith("UsageError: %mlops runs: cannot read the line (No closing quotation)"), shown
    assert len(shown.strip().splitlines()) == 1


@pytest.mark.parametrize("line", [
    'runs --name "x', "show 'abc", 'lineage "run:abc', "init --project 'p", 'drift "ref cur',
    'run "nb.ipynb', "validate 'nb.ipynb", 'versions "m', 'promote "m 1 prod', "autotrack 'on",
])  # fmt: skip
def test_every_magic_sub_command_reports_an_unterminated_quote_in_one_line(shell, line):
    with pytest.raises(UsageError, match="cannot read the line .*No closing quotation.*check the quotes"):
        shell.run_line_magic("mlops", line)


def test_track_options_with_an_unterminated_quote(shell):
    with pytest.raises(UsageError, match="No closing quotation"):
        shell.run_cell_magic("mlops", 'track --name "x', "a = 1")


def test_quoted_values_reach_the_command_without_their_quotes(shell):
    from mlops_nb.store import get_store

    shell.run_cell_magic("mlops", 'track --name "two words"', "accuracy = 0.5")
    assert [r["name"] for r in get_store().list_runs()] == ["two words"]
    shell.run_line_magic("mlops", 'runs --name "two words"')  # parsed, no error


# ---- store URLs whose driver is missing ---------------------------------------------------------
@pytest.mark.parametrize("url, install", [
    ("mysql://u:secret@127.0.0.1/db", "pip install mysqlclient"),
    ("mysql+pymysql://u@127.0.0.1/db", "pip install pymysql"),
    ("postgresql+psycopg2://u@127.0.0.1/db", "pip install psycopg2-binary"),
])  # fmt: skip
def test_a_store_url_without_its_driver_names_the_pip_install(tmp_path, url, install):
    with pytest.raises(ConfigError, match=f"needs the database driver .*{install}") as caught:
        SqlStore(url, str(tmp_path / "art"))
    assert "secret" not in str(caught.value)


def test_cli_with_a_mysql_store_and_no_driver(mlops_home):
    _one_line_error(_cli(mlops_home, "--store", "mysql://u@127.0.0.1/db", "summary"), "pip install mysqlclient")


# ---- an unreachable Dask scheduler -------------------------------------------------------------------
def test_batch_on_an_unreachable_dask_scheduler_fails_fast_and_clearly(tmp_path, store, mlops_home, monkeypatch):
    nb = write_notebook(tmp_path / "grid.ipynb", TRACKED, "score = x", parameters="x = 1")
    monkeypatch.setenv("MLOPS_NB_DASK_CONNECT_TIMEOUT", "2")
    with pytest.raises(JobError, match=r"Cannot reach the Dask scheduler at tcp://127.0.0.1:1 within 2 s .*--dask"):
        batch(nb, {"x": [1, 2]}, dask="tcp://127.0.0.1:1", progress=False)
    assert store.list_batches() == []  # nothing recorded for a batch that could not start
    done = _cli(mlops_home, "batch", str(nb), "-p", "x", "1,2", "--dask", "tcp://127.0.0.1:1", "--no-progress")
    _one_line_error(done, "Cannot reach the Dask scheduler at tcp://127.0.0.1:1 within 2 s")  # default 5 s


# ---- parameter types are checked before anything starts -----------------------------------------------
PARAMS = "n_estimators = 100\nlearning_rate: float = 0.1\nname = 'forest'\nverbose = False\nmax_depth = None"


def test_run_with_a_value_of_the_wrong_type_fails_before_starting(tmp_path, store, mlops_home):
    nb = write_notebook(tmp_path / "train.ipynb", "result = n_estimators * 2", parameters=PARAMS)
    done = _cli(mlops_home, "run", str(nb), "-p", "n_estimators", "abc")
    _one_line_error(done, "Parameter n_estimators expects int", "n_estimators = 100", "got 'abc' (str)")
    assert store.list_job_runs() == []  # refused before a job run was recorded
    for name, value, expected in (("learning_rate", "fast", "float"), ("verbose", "2", "bool"), ("n_estimators", "2.5", "int")):
        with pytest.raises(JobError, match=f"Parameter {name} expects {expected}"):
            from mlops_nb.jobs.notebook import check_parameter_names, parse_value

            check_parameter_names(nb, {name: parse_value(value)})


def test_values_of_the_right_type_are_accepted(tmp_path, store):
    nb = write_notebook(tmp_path / "train.ipynb", "result = n_estimators * 2", parameters=PARAMS)
    job = run_notebook(nb, {"n_estimators": 3, "learning_rate": 1, "name": 7, "verbose": True, "max_depth": 4})
    assert job.ok, job.error


def test_batch_and_schedule_check_types_too(tmp_path, store, mlops_home):
    nb = write_notebook(tmp_path / "train.ipynb", "result = n_estimators * 2", parameters=PARAMS)
    with pytest.raises(JobError, match="Parameter n_estimators expects int .* got 'lots'"):
        batch(nb, {"n_estimators": [10, "lots"]}, progress=False)
    assert store.list_batches() == []
    _one_line_error(_cli(mlops_home, "batch", str(nb), "-p", "n_estimators", "10,x", "--no-progress"),
                    "Parameter n_estimators expects int")  # fmt: skip
    _one_line_error(_cli(mlops_home, "schedule", "add", str(nb), "--cron", "0 3 * * *", "-p", "learning_rate", "hi", "--force"),
                    "Parameter learning_rate expects float")  # fmt: skip
    config.reset()
