"""validate with real papermill runs in fresh kernels."""

from __future__ import annotations

from click.testing import CliRunner
from test_jobs_support import TRACKED, write_notebook

from mlops_nb.cli import main
from mlops_nb.jobs import validate
from mlops_nb.jobs.notebook import file_hash, params_hash

SEEDED = "%%mlops track --name noisy\nimport numpy as np\nscore = float(np.random.default_rng(x).random())"
UNSEEDED = "%%mlops track --name noisy\nimport numpy as np\nscore = float(np.random.rand())"


def test_passing_notebook_is_stored_against_its_hash_and_parameters(tmp_path, store):
    nb = write_notebook(tmp_path / "good.ipynb", TRACKED, SEEDED, parameters="x = 1")
    result = validate(nb, {"x": 7}, timeout=60)
    assert result.passed, result.report()
    assert [c.name for c in result.checks] == [
        "nbformat", "kernelspec", "parameters", "hidden-state", "execution-order", "clean-run", "reproducible"]  # fmt: skip
    assert "1 tracked run, 1 metric" in result.check("reproducible").reason
    assert "x: int = 1" in result.check("parameters").reason
    stored = store.find_validation(file_hash(nb), params_hash({"x": 7}), passed=True)
    assert stored is not None and stored["id"] == result.id
    # The two validation runs went to a scratch store, not the registry.
    assert store.list_runs() == [] and store.list_job_runs() == []


def test_unseeded_randomness_is_not_reproducible(tmp_path, store):
    nb = write_notebook(tmp_path / "noisy.ipynb", TRACKED, UNSEEDED)
    result = validate(nb)
    check = result.check("reproducible")
    assert check.status == "fail" and result.failed
    # cell 3 = markdown, parameters, %load_ext, then the tracked cell
    assert "cell 3 (noisy): metric score" in check.reason and "unseeded randomness" in check.reason
    assert result.check("clean-run").status == "pass"
    assert store.find_validation(file_hash(nb), passed=False)["id"] == result.id


def test_name_used_before_definition_fails_statically_and_in_the_clean_run(tmp_path, store):
    nb = write_notebook(tmp_path / "hidden.ipynb", "y = x + offset", "offset = 2")
    out = CliRunner().invoke(main, ["validate", str(nb)])
    assert out.exit_code == 1
    assert "FAIL  hidden-state     cell 2, line 1: 'offset' is used before any earlier cell defines it (cell 3" in out.output
    assert "FAIL  clean-run        cell 2 [In 2], line 1: y = x + offset: NameError" in out.output
    assert "SKIP  reproducible" in out.output and "FAILED" in out.output


def test_raising_notebook_reports_cell_line_and_error(tmp_path, store):
    nb = write_notebook(tmp_path / "raises.ipynb", "y = x * 2", "z = y + 1\nraise ValueError(f'bad value {z}')")
    result = validate(nb, {"x": 1})
    clean = result.check("clean-run")
    assert clean.status == "fail"
    assert clean.details["failed_cell"]["index"] == 3 and clean.details["failed_cell"]["lineno"] == 2
    assert "raise ValueError(f'bad value {z}')" in clean.reason and "ValueError: bad value 3" in clean.reason
    assert result.check("reproducible").status == "skip"
    assert all(result.check(n).status == "pass" for n in ("nbformat", "parameters", "hidden-state"))
