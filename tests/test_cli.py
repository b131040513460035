"""The `mlops-nb` command on a real registry."""

from __future__ import annotations

import numpy as np
import pandas as pd
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


def test_help_starts_without_importing_any_feature():
    """``mlops-nb --help`` lists every command from the CLI's table: no heavy import before a command runs."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mlops_nb.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    heavy = {"nbformat", "pandas", "sqlalchemy.orm", "sklearn", "jsonschema"} & imported
    assert not heavy, f"--help imported {sorted(heavy)}"
    assert "mlops_nb.jobs" not in imported and "summary" in done.stdout and "validate" in done.stdout


def test_read_only_commands_import_neither_pandas_nor_the_notebook_stack(store):
    """``summary``, ``runs`` and ``status`` read the registry with SQLAlchemy core and print plain text."""
    import subprocess
    import sys

    import mlops_nb

    with mlops_nb.track(name="listed") as run:
        run.log_metric("accuracy", 0.93)
        run.log_param("C", 0.5)
    for args in (["summary"], ["runs", "--params"], ["status"]):
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "mlops_nb.cli", *args],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
        heavy = {"nbformat", "pandas", "numpy", "sklearn", "jsonschema", "sqlalchemy.orm"} & imported
        assert not heavy, f"{args} imported {sorted(heavy)}"
    listing = subprocess.run([sys.executable, "-m", "mlops_nb.cli", "runs", "--params"], capture_output=True, text=True)
    header, row = listing.stdout.splitlines()[:2]
    assert header.split() == ["run_id", "name", "status", "start_time", "duration_s", "accuracy", "params.C"]
    assert row.startswith(run.id[:8]) and row.split()[-2:] == ["0.93", "0.5"]


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
