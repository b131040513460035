"""run: papermill in a child process, recorded as a job run with the runs it produced."""

from __future__ import annotations

import re

import nbformat
from click.testing import CliRunner
from test_jobs_support import TRACKED, write_notebook

from mlops_nb.cli import main
from mlops_nb.jobs import run_notebook
from mlops_nb.jobs.notebook import file_hash


def test_run_with_parameters_joins_the_registry(tmp_path, store):
    nb = write_notebook(tmp_path / "calc.ipynb", TRACKED, "%%mlops track --name calc\nscore = x * 2", parameters="x = 1")
    seen = []
    job = run_notebook(nb, {"x": 21}, progress=seen.append, output=str(tmp_path / "out") + "/")
    assert job.ok, job.error
    record = store.get_job_run(job.id)
    assert record["status"] == "finished" and record["parameters"] == {"x": 21}
    assert record["notebook_hash"] == file_hash(nb) and record["kernel"] == "python3"
    assert record["environment"]["python"] and record["end_time"] >= record["start_time"]
    assert len(record["run_ids"]) == 1
    run = store.get_run(record["run_ids"][0])
    assert run["metrics"] == {"score": 42.0} and run["job_run_id"] == job.id
    assert run["notebook_path"] == str(nb)
    executed = nbformat.reads(store.artifacts.get_bytes(record["output_digest"]).decode(), as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    assert record["output_url"].startswith(str(tmp_path / "out")) and nbformat.read(record["output_url"], 4)
    total = len(nbformat.read(nb, 4).cells) + 1  # papermill adds the injected-parameters cell
    assert [(e["cell"], e["state"]) for e in seen] == [(i // 2 + 1, ("start", "end")[i % 2]) for i in range(2 * total)]
    assert {e["total"] for e in seen} == {total} and {e["job_run_id"] for e in seen} == {job.id}


def test_failing_notebook_keeps_its_output_and_names_the_cell(tmp_path, store):
    nb = write_notebook(tmp_path / "boom.ipynb", "y = x + 1", "import math\nmath.sqrt(-y)")
    out = CliRunner().invoke(main, ["run", str(nb), "-p", "x", "3", "--no-progress"])
    assert out.exit_code == 1
    assert "failed: cell 3 [In 4], line 2: math.sqrt(-y): ValueError: math domain error" in out.output
    job = store.list_job_runs()[0]
    assert job["status"] == "failed" and job["failed_cell"]["index"] == 3 and job["failed_cell"]["ename"] == "ValueError"
    executed = nbformat.reads(store.artifacts.get_bytes(job["output_digest"]).decode(), as_version=4)
    assert any(o.get("output_type") == "error" for c in executed.cells for o in c.get("outputs", []))
    saved = tmp_path / "saved.ipynb"
    shown = CliRunner().invoke(main, ["jobs", "show", job["id"][:8], "--notebook", str(saved)])
    assert shown.exit_code == 0 and nbformat.read(saved, 4)


def test_per_cell_timeout_names_the_slow_cell(tmp_path, store):
    nb = write_notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(60)")
    job = run_notebook(nb, cell_timeout=2)
    assert job.status == "failed" and job.failed_cell["index"] == 2
    assert job.describe_failure() == "cell 2 [In 2], line 2: time.sleep(60): CellTimeoutError: the cell ran longer than 2 s"


def test_kernel_that_dies_in_a_cell_names_the_cell(tmp_path, store):
    nb = write_notebook(tmp_path / "dies.ipynb", "y = x + 1", "print('before')\nimport os\nos._exit(1)", "z = 3")
    job = run_notebook(nb)
    assert job.status == "failed" and job.failed_cell["index"] == 3 and job.failed_cell["ename"] == "DeadKernelError"
    # "[In 3]" only if the kernel announced the cell's number before it died
    assert re.match(r"cell 3( \[In 3\])?: DeadKernelError: the kernel died while running this cell", job.describe_failure())
    assert store.get_job_run(job.id)["failed_cell"]["source"].endswith("os._exit(1)")


def test_a_magic_usage_error_names_the_cell_and_the_message(tmp_path, store):
    # IPython prints a magic's UsageError instead of raising it: the cell has no error output.
    nb = write_notebook(tmp_path / "usage.ipynb", "%load_ext mlops_nb", "%mlops rollback nosuch production", "z = 3")
    job = run_notebook(nb)
    assert job.status == "failed" and job.failed_cell["ename"] == "UsageError"
    assert job.describe_failure() == f"cell 3 [In 3]: UsageError: {job.failed_cell['evalue']}"
    assert job.failed_cell["evalue"].startswith("No registered model 'nosuch'")


def test_kernel_that_dies_at_start_is_retried_then_reported(tmp_path, store, caplog):
    import json
    import logging
    import sys

    spec = tmp_path / "jupyter" / "kernels" / "dies"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": [sys.executable, "-c", "import sys; sys.exit(3)", "-f", "{connection_file}"],
         "display_name": "dies at start", "language": "python"}))  # fmt: skip
    nb = write_notebook(tmp_path / "calc.ipynb", "y = x + 1", parameters="x = 1")
    with caplog.at_level(logging.WARNING, logger="mlops_nb.jobs"):
        job = run_notebook(nb, kernel="dies", env={"JUPYTER_PATH": str(tmp_path / "jupyter")})
    assert job.status == "failed" and "Kernel died before replying to kernel_info" in job.error
    retries = [r for r in caplog.records if "died while starting" in r.getMessage()]
    assert len(retries) == 2  # three starts in all; no cell ever ran
    assert store.get_job_run(job.id)["status"] == "failed"
