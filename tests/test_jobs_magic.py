"""%mlops run / %mlops validate from inside a running kernel."""

from __future__ import annotations

import nbformat
import pytest
from IPython.core.error import UsageError
from test_jobs_support import TRACKED, write_notebook

from mlops_nb.jobs import run_notebook
from mlops_nb.jobs.magic import run_command, validate_command


def test_mlops_run_inside_a_kernel_runs_the_notebook_in_a_separate_process(tmp_path, store):
    child = write_notebook(tmp_path / "child.ipynb", TRACKED, "%%mlops track --name child\nscore = x * 3", parameters="x = 1")
    driver = write_notebook(tmp_path / "driver.ipynb", TRACKED, f"%mlops run {child} -p x 5", parameters=None)
    outer = run_notebook(driver)
    assert outer.ok, outer.error
    executed = nbformat.reads(store.artifacts.get_bytes(outer.output_digest).decode(), as_version=4)
    text = "".join(
        o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in executed.cells[-1].outputs
    )
    assert "finished" in text and "child" in text and "score=15" in text
    inner = [j for j in store.list_job_runs() if j["notebook_path"] == str(child)]
    assert len(inner) == 1 and inner[0]["status"] == "finished" and inner[0]["parameters"] == {"x": 5}
    assert store.get_run(inner[0]["run_ids"][0])["metrics"] == {"score": 15.0}


def test_magic_input_errors_are_one_line(tmp_path, store):
    nb = write_notebook(tmp_path / "n.ipynb", "y = x")
    with pytest.raises(UsageError, match="arguments are required: notebook"):
        run_command(None, "")
    with pytest.raises(UsageError, match="positive number of seconds"):
        run_command(None, f"{nb} --timeout 0")
    with pytest.raises(UsageError, match="not a Python identifier"):
        validate_command(None, f"{nb} -p 1x 2 --static")
