"""A failing tracked cell in a job: the failure summary quotes the user's line, not the magic call."""

from __future__ import annotations

import nbformat
import papermill as pm
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from mlops_nb.jobs.execute import failing_cell

KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


def test_failure_summary_quotes_the_failing_line(store, tmp_path):
    nb = new_notebook(
        cells=[
            new_code_cell("%load_ext mlops_nb"),
            new_code_cell("%%mlops track --name flaky\nloss = 0.25\nraise RuntimeError('feature store unreachable')\nafter = 1"),
        ],
        metadata=KERNEL,
    )
    nbformat.write(nb, tmp_path / "flaky.ipynb")
    with pytest.raises(pm.PapermillExecutionError):
        pm.execute_notebook(str(tmp_path / "flaky.ipynb"), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False)
    failed = failing_cell(tmp_path / "out.ipynb")
    assert failed["lineno"] == 3 and failed["line"] == "raise RuntimeError('feature store unreachable')"
    assert failed["ename"] == "RuntimeError" and failed["index"] == 1
    (run,) = store.list_runs()  # written by the kernel before it exited
    assert store.get_run(run["id"])["status"] == "failed"
