"""The `mlops-nb` command on a real registry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

import mlops_nb
from mlops_nb.cli import main


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_summary_runs_show_lineage(store):
    rng = np.random.default_rng(0)
    raw = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    with mlops_nb.track(name="prep", inputs={"raw": raw}) as prep:
        X = raw.assign(c=raw.a * raw.b)
        prep.log_output("X", X)
    with mlops_nb.track(name="train", inputs={"X": X}) as train:
        model = LogisticRegression().fit(X, (X.a > 0).astype(int))
        train.log_metric("accuracy", model.score(X, (X.a > 0).astype(int)))
        version = train.log_model(model, "clf")

    summary = _invoke("summary").output
    assert "2 runs" in summary and "1 model versions" in summary
    assert f"← run {prep.id[:8]}" in summary  # the training input came from the prep run

    listing = _invoke("runs").output.splitlines()
    assert listing[0].split()[:5] == ["run_id", "name", "status", "start_time", "duration_s"]
    assert "accuracy" in listing[0] and "params." not in listing[0]
    assert listing[1].startswith(train.id[:8]) and listing[2].startswith(prep.id[:8])
    assert "params.clf.C" in _invoke("runs", "--params", "--last", "1").output

    shown = _invoke("show", train.id[:6]).output
    assert f"run {train.id}" in shown and "accuracy = " in shown and version in shown

    traced = _invoke("lineage", f"model:{version[:8]}").output
    assert f"trained by run {train.id[:8]}" in traced and f"made by run {prep.id[:8]}" in traced


def test_errors_are_one_line_and_exit_1(store):
    for args, message in ((["show", "ffffffff"], "No run"), (["lineage", "what:1"], "use run:ID")):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1
        assert result.output.startswith("Error: ") and message in result.output and "Traceback" not in result.output
    assert "no runs recorded yet" in _invoke("runs").output


#: What no read-only command may import: a listing answers before pandas or the notebook stack could load.
_HEAVY = {"nbformat", "pandas", "numpy", "sklearn", "jsonschema", "sqlalchemy.orm"}


def _imported(args: list[str]) -> tuple[set[str], str]:
    """The modules ``mlops-nb ARGS`` imports (from ``-X importtime``), and what it printed."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "mlops_nb.cli", *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, f"{args}: {done.stderr[-2000:]}"
    return {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}, done.stdout


def test_help_starts_without_importing_any_feature():
    """``mlops-nb --help`` lists every command from the CLI's table: no heavy import before a command runs."""
    imported, printed = _imported(["--help"])
    assert not _HEAVY & imported, f"--help imported {sorted(_HEAVY & imported)}"
    assert "mlops_nb.jobs" not in imported and "summary" in printed and "validate" in printed


@pytest.fixture
def filled(store, mlops_home, monkeypatch):
    """Runs, a registered model with an alias and its audit trail, a promotion request, a job run and an alert."""
    import uuid

    X = np.arange(40.0).reshape(20, 2)
    with mlops_nb.track(name="listed", inputs={"X": X}) as run:
        run.log_metric("accuracy", 0.93)
        run.log_param("C", 0.5)
        digest = run.log_model(LogisticRegression().fit(X, X[:, 0] > 20), "clf")
    mlops_nb.register(digest, name="iris", alias="staging", reason="first")
    (mlops_home / "policy.toml").write_text('[aliases.production]\napprovers = ["li"]\n')
    monkeypatch.setenv("MLOPS_NB_USER", "maria")
    assert mlops_nb.promote("iris", 1, "production").status == "pending_approval"
    job_id = uuid.uuid4().hex
    store.start_job_run(job_id, notebook_path="/nb/train.ipynb", notebook_hash="0" * 64, parameters={"C": 0.5},
                        kernel="python3")  # fmt: skip
    store.finish_job_run(job_id, status="finished", duration=1.25, run_ids=[run.id])
    store.add_alert({"monitor": "iris-watch", "severity": "warning", "kind": "drift", "model": "iris", "version": 1,
                     "decision": "retrain", "message": "40% of the columns drifted"})  # fmt: skip
    return run, job_id


#: Every read-only command (``{run}``/``{job}`` stand for the ids of the ``filled`` registry).
READ_ONLY = [
    ["summary"], ["show", "{run}"], ["status"], ["runs", "--params"], ["lineage", "run:{run}"],
    ["models", "list"], ["models", "versions", "iris"], ["models", "show", "iris@staging"],
    ["models", "requests", "--all"], ["audit", "list"], ["audit", "verify"], ["audit", "head"],
    ["data", "show", "run:{run}/X"], ["jobs", "list"], ["jobs", "show", "{job}"], ["alerts"],
]  # fmt: skip


def test_read_only_commands_import_neither_pandas_nor_the_notebook_stack(filled):
    """Each read-only command reads the registry with SQLAlchemy core and prints plain rows (report.table_text)."""
    run, job_id = filled
    printed = {}
    for args in READ_ONLY:
        args = [a.format(run=run.id[:8], job=job_id[:8]) for a in args]
        imported, printed[" ".join(args[:2])] = _imported(args)
        assert not _HEAVY & imported, f"{args} imported {sorted(_HEAVY & imported)}"
    assert "train.ipynb" in printed["jobs list"] and "train.ipynb" in printed["jobs show"]
    assert "40% of the columns drifted" in printed["alerts"]
    requests = printed["models requests"].splitlines()
    assert requests[0].split()[:4] == ["id", "model", "version", "alias"] and "maria" in requests[1]
    assert printed["models list"].splitlines()[1].split()[:3] == ["iris", "1", "staging→v1"]
    assert "@staging → v1" in printed["audit list"] and "promotion_requested" in printed["audit list"]
    header, row = (line.split() for line in _imported(["runs", "--params"])[1].splitlines()[:2])
    assert header[:6] == ["run_id", "name", "status", "start_time", "duration_s", "accuracy"] and row[0] == run.id[:8]
    # (start_time is two words)
    assert row[header.index("accuracy") + 1] == "0.93" and row[header.index("params.C") + 1] == "0.5"


def test_the_cli_table_matches_the_commands_of_every_feature():
    import importlib

    from mlops_nb.cli import COMMANDS

    for module in {module for module, _ in COMMANDS.values()}:
        commands = {c.name: c for c in importlib.import_module(module).COMMANDS}
        assert set(commands) == {name for name, (m, _) in COMMANDS.items() if m == module}, module
        for name, command in commands.items():
            assert command.get_short_help_str(limit=300) == COMMANDS[name][1], name


def test_our_processes_skip_the_iri_grammar_and_nbformat_validates_the_same():
    """lean_imports: no rfc3987_syntax import in the CLI or papermill's child, same validation errors."""
    import subprocess
    import sys

    probe = (
        "import sys, nbformat\n"
        "from nbformat.v4 import new_notebook, new_code_cell\n"
        "nb = new_notebook(cells=[new_code_cell('x = 1')])\n"
        "nb.cells[0]['outputs'] = 'not a list'\n"
        "nb.metadata['kernelspec'] = {'name': 3}\n"
        "try:\n    nbformat.validate(nb)\nexcept nbformat.ValidationError as exc:\n    print(exc.message)\n"
        "print('rfc3987_syntax' in sys.modules)\n"
    )
    plain = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    lean = subprocess.run([sys.executable, "-c", "from mlops_nb.lean_imports import skip_unused_format_checkers as s; s()\n" + probe],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert plain.returncode == 0 and lean.returncode == 0, plain.stderr + lean.stderr
    *plain_errors, plain_loaded = plain.stdout.splitlines()
    *lean_errors, lean_loaded = lean.stdout.splitlines()
    assert lean_errors == plain_errors and lean_errors  # the invalid notebook is refused, with the same message
    assert lean_loaded == "False"
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "from mlops_nb.lean_imports import papermill_main; papermill_main()", "--help"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    # (importtime lists the refused attempt too; lark is what rfc3987_syntax would have built its grammar with)
    assert done.returncode == 0 and "nbformat" in imported and "lark" not in imported
