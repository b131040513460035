"""Notebook jobs without kernels: hidden state, hashes, parameters, due times, exports, CLI errors."""

from __future__ import annotations

import datetime as dt
import json

import nbformat
import pytest
import yaml
from click.testing import CliRunner
from nbformat.v4 import new_code_cell, new_notebook
from test_jobs_support import ROOT, write_notebook

from mlops_nb.cli import main
from mlops_nb.errors import JobError
from mlops_nb.jobs.batches import expand_grid, load_grid, parse_grid_options
from mlops_nb.jobs.export import airflow_dag, k8s_cronjob
from mlops_nb.jobs.hidden_state import execution_order_issues, find_hidden_state
from mlops_nb.jobs.notebook import file_hash, notebook_hash, parse_value
from mlops_nb.jobs.scheduler import due_slots, latest_slot
from mlops_nb.jobs.schedules import add_schedule, check_cron


def _nb(*sources: str) -> nbformat.NotebookNode:
    return new_notebook(cells=[new_code_cell(s) for s in sources])


def _utc(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.timezone.utc).timestamp()


# ---- hidden state ------------------------------------------------------------------------
def test_hidden_state_names_the_cell_the_line_and_the_later_definition():
    nb = _nb("import numpy as np\nx = np.ones(3)", "y = x + offset", "offset = 1")
    issues, _ = find_hidden_state(nb)
    assert [(i.cell, i.line, i.name, i.defined_in) for i in issues] == [(1, 1, "offset", 2)]
    assert "cell 2 defines it" in issues[0].describe()


def test_hidden_state_understands_magics_scopes_and_builtins():
    nb = _nb(
        "%load_ext mlops_nb\n%matplotlib inline",
        "%%mlops track --name fit\nmodel = dict(a=1)\nscore = len(model)",
        "total = sum(v for v in model.values())\nfor i in range(2):\n    total += i\nprint(i, total, In, get_ipython())",
        "def f(a):\n    return a + later\nlater = 2\nf(1)",
        "%%bash\necho $undefined_in_bash",
        "with open('f') as fh:\n    pass\ntry:\n    fh\nexcept OSError as err:\n    print(err)",
        "!ls $total\nresult = %time f(3)\n[k for k in range(3) if k]",
    )
    issues, notes = find_hidden_state(nb)
    assert issues == [] and notes == []


def test_hidden_state_flags_a_name_no_cell_defines_and_is_unsure_after_star_import():
    issues, _ = find_hidden_state(_nb("%%mlops track\nfitted = estimator.fit(X)"))
    assert {i.name for i in issues if i.certain} == {"estimator", "X"}
    issues, _ = find_hidden_state(_nb("from os.path import *", "print(join('a', 'b'))"))
    assert [(i.name, i.certain) for i in issues] == [("join", False)]


def test_execution_counts_out_of_order():
    nb = _nb("a = 1", "b = 2", "c = 3")
    for cell, count in zip(nb.cells, (1, 5, 3), strict=True):
        cell.execution_count = count
    assert execution_order_issues(nb) == ["cell 2 was run as [3] after cell 1 ran as [5]"]
    for cell, count in zip(nb.cells, (1, None, 4), strict=True):
        cell.execution_count = count
    assert execution_order_issues(nb) == []


# ---- notebooks and parameters -----------------------------------------------------------------
def test_notebook_hash_ignores_outputs_but_not_code(tmp_path):
    nb = _nb("a = 1", "print(a)")
    before = notebook_hash(nb)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells[1].execution_count = 7
    assert notebook_hash(nb) == before
    nb.cells[0].source = "a = 2"
    assert notebook_hash(nb) != before
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    assert file_hash(path) == notebook_hash(nb)


def test_parameter_values_are_typed_like_papermill():
    assert [parse_value(v) for v in ("3", "0.5", "1e-05", "True", "None", "abc")] == [3, 0.5, 1e-05, True, None, "abc"]
    assert parse_grid_options([("C", "0.1,1"), ("kind", "a,b")]) == {"C": [0.1, 1], "kind": ["a", "b"]}
    assert expand_grid({"C": [1, 2], "d": [3, 4]}) == [{"C": 1, "d": 3}, {"C": 1, "d": 4}, {"C": 2, "d": 3}, {"C": 2, "d": 4}]
    assert expand_grid([{"C": 1}, {"C": 2, "d": 0}]) == [{"C": 1}, {"C": 2, "d": 0}]


def test_grid_file(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("C: [0.1, 1.0]\nmax_depth: [2, 4]\nkind: linear\n")
    assert len(expand_grid(load_grid(grid))) == 4
    grid.write_text("grid:\n  - {C: 0.1}\n  - {C: 1.0, max_depth: 3}\n")
    assert expand_grid(load_grid(grid)) == [{"C": 0.1}, {"C": 1.0, "max_depth": 3}]


def test_grid_file_errors_are_one_line(tmp_path):
    bad = tmp_path / "grid.yaml"
    bad.write_text("C: [1, 2\n")
    with pytest.raises(JobError, match="not valid YAML"):
        load_grid(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(JobError, match="A grid is a mapping"):
        load_grid(bad)


# ---- due times -------------------------------------------------------------------------------
def test_due_slots_follow_cron_and_catchup_policy():
    created = _utc(2026, 1, 1, 12, 0)
    daily = "0 3 * * *"
    assert due_slots(daily, created, _utc(2026, 1, 2, 2, 59)) == ([], [])
    assert due_slots(daily, created, _utc(2026, 1, 2, 3, 0)) == ([_utc(2026, 1, 2, 3, 0)], [])
    three_days = _utc(2026, 1, 4, 10, 0)
    assert due_slots(daily, created, three_days, catchup="one") == ([_utc(2026, 1, 4, 3, 0)], [])
    assert due_slots(daily, created, three_days, catchup="all") == (
        [_utc(2026, 1, 2, 3), _utc(2026, 1, 3, 3), _utc(2026, 1, 4, 3)], [])  # fmt: skip
    assert due_slots(daily, created, three_days, catchup="skip") == ([], [_utc(2026, 1, 4, 3, 0)])
    assert due_slots(daily, created, _utc(2026, 1, 4, 3, 0, 30), catchup="skip") == ([_utc(2026, 1, 4, 3, 0)], [])
    # After the slot fired, the cursor is that slot: nothing more until the next one.
    assert due_slots(daily, _utc(2026, 1, 4, 3, 0), three_days) == ([], [])
    assert latest_slot("0 3 * * *", _utc(2026, 1, 4, 3, 0), "Europe/Paris") == _utc(2026, 1, 4, 2, 0)


def test_invalid_cron_and_time_zone():
    with pytest.raises(JobError, match="Invalid cron expression"):
        check_cron("every day")
    with pytest.raises(JobError, match="Unknown time zone"):
        check_cron("0 3 * * *", "Mars/Olympus")


# ---- schedules: refusal, force, export ---------------------------------------------------------
def test_schedule_add_requires_a_passing_validation_unless_forced(tmp_path, store):
    nb = write_notebook(tmp_path / "job.ipynb", "y = x * 2")
    with pytest.raises(JobError, match="was never validated.*--force"):
        add_schedule(nb, "0 3 * * *", store=store)
    with pytest.raises(JobError, match="not declared"):
        add_schedule(nb, "0 3 * * *", {"nope": 1}, force=True, store=store)
    saved = add_schedule(nb, "0 3 * * *", force=True, reason="demo", store=store)
    assert saved["forced"] and saved["notebook_hash"] == file_hash(nb)
    event = store.audit_log("schedule:job")[-1]
    assert event["action"] == "schedule.add.forced" and event["reason"] == "demo"
    assert store.verify_audit_log() == []
    with pytest.raises(JobError, match="already exists"):
        add_schedule(nb, "0 4 * * *", force=True, store=store)


def test_schedule_commands_and_exports(tmp_path, store):
    nb = write_notebook(tmp_path / "train.ipynb", "y = C * 2", parameters="C = 1.0\nkind = 'a'\nsteps = 3")
    runner = CliRunner()
    out = runner.invoke(main, ["schedule", "add", str(nb), "--cron", "30 2 * * 1", "-p", "C", "0.5", "-p", "kind", "b",
                               "--retries", "2", "--timeout", "600", "--name", "nightly", "--force"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "FORCED" in out.output
    listing = runner.invoke(main, ["schedule", "list"]).output
    assert "nightly" in listing and "30 2 * * 1" in listing and "active" in listing
    assert "paused" in runner.invoke(main, ["schedule", "pause", "nightly"]).output
    assert store.get_schedule("nightly")["paused"] is True
    runner.invoke(main, ["schedule", "resume", "nightly"])

    dag_file, job_file = tmp_path / "dag.py", tmp_path / "cron.yaml"
    assert runner.invoke(main, ["schedule", "export", "nightly", "--to", "airflow", "--out", str(dag_file)]).exit_code == 0
    assert runner.invoke(main, ["schedule", "export", "nightly", "--to", "k8s", "--out", str(job_file),
                                "--image", "registry.example/train:1"]).exit_code == 0  # fmt: skip
    source = dag_file.read_text()
    compile(source, str(dag_file), "exec")
    assert "from airflow.sdk import DAG, task" in source and "from airflow.decorators import task" in source
    for expected in ("schedule='30 2 * * 1'", f"'run', {str(nb)!r}", "'--schedule', 'nightly'", "'--timeout', '600.0'",
                     "retries=2", "execution_timeout=timedelta(seconds=660.0)", "'{\"C\": 0.5, \"kind\": \"b\"}'"):  # fmt: skip
        assert expected in source, expected
    manifest = yaml.safe_load(job_file.read_text())
    assert manifest["kind"] == "CronJob" and manifest["apiVersion"] == "batch/v1"
    assert manifest["spec"]["schedule"] == "30 2 * * 1" and manifest["spec"]["timeZone"] == "UTC"
    job = manifest["spec"]["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 2
    container = job["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/train:1"
    command = container["command"]
    assert command[:3] == ["mlops-nb", "run", str(nb)] and command[command.index("--timeout") + 1] == "600.0"
    assert command[command.index("--params-json") + 1] == '{"C": 0.5, "kind": "b"}'

    assert "removed" in runner.invoke(main, ["schedule", "remove", "nightly"]).output
    gone = runner.invoke(main, ["schedule", "history", "nightly"])
    assert "has not fired" in gone.output


def test_exports_keep_parameter_types():
    schedule = {"name": "x y", "notebook_path": "/nb/a.ipynb", "notebook_hash": "0" * 64, "cron": "0 * * * *",
                "timezone": "UTC", "parameters": {"lr": 1e-05, "layers": [1, 2]}, "timeout": None, "retries": 0,
                "kernel": None, "catchup": "all", "created_at": 0.0}  # fmt: skip
    compile(airflow_dag(schedule), "dag.py", "exec")
    assert "catchup=True" in airflow_dag(schedule)
    command = yaml.safe_load(k8s_cronjob(schedule))["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert json.loads(command[command.index("--params-json") + 1]) == {"lr": 1e-05, "layers": [1, 2]}


# ---- CLI errors are one line ---------------------------------------------------------------------
def test_cli_errors_are_one_clear_line(tmp_path, store):
    runner = CliRunner()
    missing = runner.invoke(main, ["run", str(tmp_path / "missing.ipynb")])
    assert missing.exit_code == 1 and missing.output.strip().startswith("Error: Notebook")
    assert "Traceback" not in missing.output
    nb = write_notebook(tmp_path / "n.ipynb", "y = x")
    unknown = runner.invoke(main, ["run", str(nb), "-p", "z", "1"])
    assert unknown.exit_code == 1 and "Error: Parameter z not declared" in unknown.output
    no_grid = runner.invoke(main, ["batch", str(nb)])
    assert no_grid.exit_code == 1 and "Error: Give the combinations" in no_grid.output
    bad_cron = runner.invoke(main, ["schedule", "add", str(nb), "--cron", "daily", "--force"])
    assert bad_cron.exit_code == 1 and "Error: Invalid cron expression" in bad_cron.output
    nothing = runner.invoke(main, ["schedule", "pause", "ghost"])
    assert nothing.exit_code == 1 and "Error: No schedule named 'ghost'" in nothing.output


def test_validate_static_reports_missing_parameters_cell_and_kernelspec(tmp_path, store):
    nb = write_notebook(tmp_path / "bare.ipynb", "y = 1", "z = y", parameters=None, kernel=None, counts=[3, 1])
    junit = tmp_path / "checks.xml"
    out = CliRunner().invoke(main, ["validate", str(nb), "--static", "--junit", str(junit)])
    assert out.exit_code == 1
    lines = {line.split()[1]: line for line in out.output.splitlines() if line.startswith("  ")}
    assert lines["parameters"].lstrip().startswith("FAIL") and "no cell is tagged 'parameters'" in lines["parameters"]
    assert lines["kernelspec"].lstrip().startswith("FAIL") and "no kernelspec" in lines["kernelspec"]
    assert lines["execution-order"].lstrip().startswith("FAIL")
    assert lines["clean-run"].lstrip().startswith("SKIP")
    import xml.etree.ElementTree as ET

    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == "7" and suite.get("failures") == "3" and suite.get("skipped") == "2"
    assert len(suite.findall("testcase/failure")) == 3


def test_parameters_are_read_as_papermill_reads_them_without_importing_it(tmp_path):
    """declared_parameters (ast) agrees with papermill.inspect_notebook on every example notebook and
    on annotated, commented cells; a multi-line default it keeps whole (papermill's regex mangles it)."""
    from papermill import inspect_notebook

    from mlops_nb.jobs.notebook import _type_name, declared_parameters

    cell = "%matplotlib inline\nalpha = 0.6  # the learning rate\nn: int = 3\nname = 'abc'\nflag = True\nx = None\n"
    made = write_notebook(tmp_path / "p.ipynb", "y = 1", parameters=cell)
    for path in [made, *sorted((ROOT / "notebooks").glob("*.ipynb"))]:
        theirs = {n: {"type": _type_name(i), "default": i.get("default"), "help": i.get("help") or ""}
                  for n, i in inspect_notebook(str(path)).items()}  # fmt: skip
        assert declared_parameters(path) == theirs, path
    assert declared_parameters(made)["alpha"] == {"type": "float", "default": "0.6", "help": "the learning rate"}
    nested = write_notebook(tmp_path / "n.ipynb", "y = 1", parameters="cfg = {\n  'a': 1,\n}  # nested\nk = 2")
    assert declared_parameters(nested)["cfg"] == {"type": "dict", "default": "{\n  'a': 1,\n}", "help": "nested"}
    broken = write_notebook(tmp_path / "b.ipynb", "y = 1", parameters="alpha = (")
    with pytest.raises(JobError, match="cannot read the parameters .* line 1"):
        declared_parameters(broken)
