"""%mlops / %%mlops in a real IPython shell."""

from __future__ import annotations

import re

import pytest
from IPython.core.error import UsageError

import mlops_nb

SETUP = """
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
df = load_iris(as_frame=True).frame
"""

TRAIN = """%%mlops track --name train-logreg --tag owner=ana --tag team=ml
X_train, X_test, y_train, y_test = train_test_split(df.drop(columns="target"), df["target"], random_state=0)
clf = LogisticRegression(max_iter=500).fit(X_train, y_train)
accuracy = clf.score(X_test, y_test)
"""


def _only_run(store):
    runs = store.list_runs()
    assert len(runs) == 1
    return store.get_run(runs[0]["id"])


def test_track_cell_captures_data_models_metrics(shell, store, capsys):
    shell.run_cell(SETUP)
    number = shell.execution_count
    result = shell.run_cell(TRAIN, store_history=True)
    assert result.success
    run = _only_run(store)
    assert run["name"] == "train-logreg" and run["status"] == "finished"
    assert run["tags"] == {"owner": "ana", "team": "ml"}
    assert [d["name"] for d in run["inputs"]] == ["df"]
    assert run["inputs"][0]["digest"] == mlops_nb.fingerprint(shell.user_ns["df"])
    assert {d["name"] for d in run["outputs"]} == {"X_train", "X_test", "y_train", "y_test"}
    assert [m["name"] for m in run["models"]] == ["clf"]
    assert run["models"][0]["digest"] == mlops_nb.fingerprint(shell.user_ns["clf"])
    assert run["metrics"]["accuracy"] == pytest.approx(shell.user_ns["accuracy"])
    assert run["params"]["clf.max_iter"] == 500
    assert run["source"] == TRAIN.split("\n", 1)[1]
    assert run["execution_count"] == number == result.execution_count
    out = capsys.readouterr().out
    assert f"mlops run {run['id'][:8]} train-logreg" in out and "df(150×5," in out
    assert "clf LogisticRegression" in out and f"accuracy={shell.user_ns['accuracy']:.4g}" in out


def test_track_cell_second_run_reads_produced_data(shell, store):
    shell.run_cell(SETUP)
    shell.run_cell(TRAIN)
    shell.run_cell("%%mlops track --name again\nscore_acc = clf.score(X_test, y_test)\n")
    again = store.get_run(mlops_nb.runs(name="again")["run_id"].iloc[0])
    assert {d["name"] for d in again["inputs"]} == {"X_test", "y_test"}
    assert again["models"] == [] and again["outputs"] == []  # clf was only read
    assert "score_acc" in again["metrics"]


def test_raising_cell_behaves_as_without_tracking(shell, store, capsys):
    shell.run_cell("x = 1")
    result = shell.run_cell("%%mlops track --name boom\ny = x + 1\nloss = 0.5\nraise ValueError('bad input')\n")
    assert not result.success and isinstance(result.error_in_exec, ValueError)
    assert shell.user_ns["y"] == 2  # the lines before the error ran
    run = _only_run(store)
    assert run["status"] == "failed" and "ValueError: bad input" in run["error"]
    captured = capsys.readouterr()
    assert "FAILED" in captured.err
    traceback = re.sub(r"\x1b\[[0-9;]*m", "", captured.out + captured.err)
    assert "raise ValueError('bad input')" in traceback  # the user's line, as without tracking
    assert "ValueError: bad input" in traceback and "mlops_nb" not in traceback  # our frames hidden


def test_last_expression_is_displayed(shell, store):
    result = shell.run_cell("%%mlops track\nvalue = 21\nvalue * 2\n")
    assert result.result == 42


def test_in_place_mutation_is_input_and_output(shell, store):
    shell.run_cell("import pandas as pd\nframe = pd.DataFrame({'a': [1.0, 2.0]})")
    before = mlops_nb.fingerprint(shell.user_ns["frame"])
    shell.run_cell("%%mlops track\nframe['b'] = frame['a'] * 2\n")
    run = _only_run(store)
    assert run["inputs"][0]["digest"] == before
    assert run["outputs"][0]["digest"] == mlops_nb.fingerprint(shell.user_ns["frame"]) != before


def test_files_read_and_written(shell, store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "raw.csv").write_text("a,b\n1,2\n3,4\n")
    shell.run_cell("%%mlops track --name etl\nimport pandas as pd\nraw = pd.read_csv('raw.csv')\nraw.to_csv('clean.csv', index=False)\n")
    run = _only_run(store)
    inputs = {d["name"]: d for d in run["inputs"]}
    outputs = {d["name"]: d for d in run["outputs"]}
    assert inputs["raw.csv"]["kind"] == "file"
    assert inputs["raw.csv"]["digest"] == mlops_nb.fingerprint(tmp_path / "raw.csv")
    assert outputs["clean.csv"]["digest"] == mlops_nb.fingerprint(tmp_path / "clean.csv")
    assert "raw" in outputs  # the DataFrame it bound


def test_search_cv_best_estimator_is_a_model(shell, store):
    shell.run_cell(SETUP)
    shell.run_cell(
        "%%mlops track\nX, y = df.drop(columns='target'), df['target']\n"
        "search = GridSearchCV(LogisticRegression(max_iter=300), {'C': [0.1, 1.0]}, cv=3).fit(X, y)\n"
        "best_score = search.best_score_\n"
    )
    run = _only_run(store)
    assert {m["name"] for m in run["models"]} == {"search", "search.best_estimator_"}
    assert run["metrics"]["best_score"] == pytest.approx(shell.user_ns["search"].best_score_)


def test_log_calls_inside_tracked_cell_and_switches(shell, store):
    shell.run_cell(SETUP)
    shell.run_cell(
        "%%mlops track --no-data --no-models\nimport mlops_nb\n"
        "clf = LogisticRegression(max_iter=300).fit(df.drop(columns='target'), df['target'])\n"
        "mlops_nb.log_metric('custom_kpi', 7)\nmlops_nb.log_param('note', 'hello')\n"
    )
    run = _only_run(store)
    assert run["inputs"] == [] and run["outputs"] == [] and run["models"] == []
    assert run["metrics"] == {"custom_kpi": 7.0} and run["params"] == {"note": "hello"}


def test_autotrack_records_only_cells_with_results(shell, store):
    shell.run_cell(SETUP)
    shell.run_cell("%mlops autotrack on")
    shell.run_cell("z = 5")
    shell.run_cell("X, y = df.drop(columns='target'), df['target']")
    shell.run_cell("model = LogisticRegression(max_iter=300).fit(X, y)\ntrain_acc = model.score(X, y)")
    shell.run_cell("1/0")
    shell.run_cell("%mlops autotrack off")
    shell.run_cell("other = LogisticRegression(max_iter=300).fit(X, y)")
    runs = store.list_runs()
    assert len(runs) == 1
    run = store.get_run(runs[0]["id"])
    assert [m["name"] for m in run["models"]] == ["model"] and "train_acc" in run["metrics"]
    assert {d["name"] for d in run["inputs"]} == {"X", "y"}


def test_cells_handed_to_another_cell_magic_are_tracked_whole(shell, store, capsys):
    # %%time and %%capture take the cell as a string; %%capture runs it with run_cell, which
    # fires the cell events again inside the cell: one run per cell, read from the body.
    shell.run_cell(SETUP)
    shell.run_cell("X, y = df.drop(columns='target'), df['target']")
    timed = shell.run_cell("%%mlops track --name timed\n%%time\nclf = LogisticRegression(max_iter=300).fit(X, y)\n"
                           "clf.score(X, y)", store_history=True)  # fmt: skip
    assert timed.success and 0.9 < timed.result <= 1 and "Wall time" in capsys.readouterr().out
    shell.run_cell("%%mlops track --name quiet\n%%capture shown\nprint('inside')\nquiet = LogisticRegression(max_iter=200).fit(X, y)")
    assert shell.user_ns["shown"].stdout == "inside\n"
    shell.run_cell("%mlops autotrack on")
    shell.run_cell("%%capture auto_shown\nauto = LogisticRegression(max_iter=300).fit(X, y)\nauto_acc = auto.score(X, y)")
    shell.run_cell("%mlops autotrack off")
    again = shell.run_cell("%%mlops track --name again\nagain_loss = 0.5", store_history=True)
    shell.run_cell(f"%rerun {again.execution_count}")  # a tracked cell run from an untracked one: tracked
    assert [r["name"] for r in store.list_runs()].count("again") == 2
    runs = {r["name"] or "auto": store.get_run(r["id"]) for r in store.list_runs() if r["name"] != "again"}
    assert set(runs) == {"timed", "quiet", "auto"} and all(r["status"] == "finished" for r in runs.values())
    assert runs["timed"]["metrics"] == {"clf.score": timed.result}
    assert [m["name"] for m in runs["quiet"]["models"]] == ["quiet"] and "auto_acc" in runs["auto"]["metrics"]
    assert all({d["name"] for d in r["inputs"]} == {"X", "y"} for r in runs.values())
    assert all(not r["warnings"] for r in runs.values())


PROXY = """
class LazyProxy:  # a proxy whose target fails to load: even isinstance() on it raises
    @property
    def __class__(self):
        raise ConnectionError("the proxied object could not be loaded")
"""


def test_objects_that_break_isinstance_do_not_break_tracking(shell, store, capsys):
    shell.run_cell(PROXY)
    tracked = shell.run_cell("%%mlops track --name proxied\nproxy = LazyProxy()\nproxy_score = LazyProxy()\nval_loss = 0.5")
    shell.run_cell("%mlops autotrack on")
    shell.run_cell("more = [proxy, 1]\ntest_acc = 0.75")
    shell.run_cell("proxy = LazyProxy()\nre_acc = 0.25")  # rebinding a name that others were made from
    shell.run_cell("%mlops autotrack off")
    out = capsys.readouterr()
    assert tracked.success and "Error in callback" not in out.out + out.err and "not recorded" not in out.err
    runs = [store.get_run(r["id"]) for r in reversed(store.list_runs())]
    assert [r["metrics"] for r in runs] == [{"val_loss": 0.5}, {"test_acc": 0.75}, {"re_acc": 0.25}]
    assert all(r["status"] == "finished" for r in runs) and mlops_nb.active_run() is None


def test_a_bad_metric_pattern_is_refused_at_load(shell, store, monkeypatch):
    monkeypatch.setenv("MLOPS_NB_METRIC_PATTERN", "(val_loss")
    from mlops_nb import config

    config.reset()
    shell.run_line_magic("unload_ext", "mlops_nb")
    try:
        with pytest.raises(UsageError, match=r"MLOPS_NB_METRIC_PATTERN is not a valid regular expression .*'\(val_loss'"):
            shell.run_line_magic("load_ext", "mlops_nb")
        assert "mlops" not in shell.magics_manager.magics["cell"]
    finally:
        monkeypatch.delenv("MLOPS_NB_METRIC_PATTERN")
        config.reset()
        shell.run_line_magic("load_ext", "mlops_nb")  # for the fixture's unload


def test_reload_ext_does_not_double_callbacks(shell, store):
    shell.run_cell("%mlops autotrack on")
    callbacks = len(shell.events.callbacks["post_run_cell"])
    shell.run_line_magic("reload_ext", "mlops_nb")
    assert len(shell.events.callbacks["post_run_cell"]) == callbacks - 1  # unload removed ours
    shell.run_cell("%mlops autotrack on")
    shell.run_line_magic("reload_ext", "mlops_nb")
    shell.run_cell("%mlops autotrack on")
    assert len(shell.events.callbacks["post_run_cell"]) == callbacks
    shell.run_cell("accuracy = 0.5")
    assert len(store.list_runs()) == 1


@pytest.mark.parametrize(
    "line,message",
    [("bogus", "Unknown %mlops command"), ("runs --last 0", "positive"), ("runs --last x", "invalid int"),
     ("show", "arguments are required"), ("show nosuchrun", "not a run id"), ("show ffff", "No run"), ("autotrack maybe", "invalid choice"),
     ("track", "cell magic"), ("init --store not-a-url", "not a URL")],
)  # fmt: skip
def test_bad_arguments_are_usage_errors(shell, store, line, message):
    with pytest.raises(UsageError, match=message):
        shell.run_line_magic("mlops", line)


def test_bad_cell_magic_usage(shell, store):
    with pytest.raises(UsageError, match="KEY=VALUE"):
        shell.run_cell_magic("mlops", "track --tag oops", "x = 1")
    with pytest.raises(UsageError, match="only 'track'"):
        shell.run_cell_magic("mlops", "runs", "x = 1")
    with pytest.raises(UsageError, match="needs code"):
        shell.run_cell_magic("mlops", "track", "   ")


def test_init_runs_show(shell, tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/team/registry.db"
    shell.run_line_magic("mlops", f"init --project churn --store {url}")
    shell.run_cell("%%mlops track --name t\nrmse = 1.5\n")
    frame = shell.run_line_magic("mlops", "runs --last 5").df  # the RunsPanel's page as a DataFrame
    assert list(frame["project"]) == ["churn"] and frame["metrics.rmse"].iloc[0] == 1.5
    assert (tmp_path / "team" / "registry.db").exists()
    capsys.readouterr()
    shell.run_line_magic("mlops", f"show {frame['run_id'].iloc[0][:8]}")
    out = capsys.readouterr().out
    assert "rmse = 1.5" in out and "project churn" in out
    shell.run_line_magic("mlops", "help")
    assert "%%mlops track" in capsys.readouterr().out


def test_rerunning_a_cell_records_the_same_run_again(shell, store):
    """A re-run must not mistake the cell's own earlier results for inputs, nor drop outputs."""
    shell.run_cell(SETUP)
    cell = (
        "%%mlops track --name train\nX = df.drop(columns='target')\ny = df['target']\n"
        "clf = LogisticRegression(max_iter=500).fit(X, y)\nfit_acc = clf.score(X, y)\n"
    )
    shell.run_cell(cell)
    shell.run_cell(cell)
    first, second = (store.get_run(r["id"]) for r in reversed(store.list_runs()))
    for run in (first, second):
        assert [d["name"] for d in run["inputs"]] == ["df"]
        assert {d["name"] for d in run["outputs"]} == {"X", "y"}
        assert [m["name"] for m in run["models"]] == ["clf"] and run["params"]["clf.max_iter"] == 500
    assert first["models"][0]["digest"] == second["models"][0]["digest"]  # same content, same version


def test_refitting_an_existing_estimator_is_a_model_output(shell, store):
    shell.run_cell(SETUP)
    shell.run_cell("X, y = df.drop(columns='target'), df['target']\nclf = LogisticRegression(max_iter=500).fit(X, y)")
    shell.run_cell("%%mlops track --name refit\nclf.fit(X, y)\n")  # same data: identical fitted state
    run = _only_run(store)
    assert [m["name"] for m in run["models"]] == ["clf"]
    assert {d["name"] for d in run["inputs"]} == {"X", "y"}
    shell.run_cell("%%mlops track --name score-only\nscore_acc = clf.score(X, y)\n")
    scored = store.get_run(mlops_nb.runs(name="score-only")["run_id"].iloc[0])
    assert scored["models"] == []  # only read: not produced by this run


def test_registry_lost_during_a_cell_is_one_clear_error(shell, store, mlops_home):
    """The cell's code still runs; the user is told the run was not recorded."""
    cell = "import os\nfrom mlops_nb.store import get_store\nget_store().engine.dispose()\nos.replace(r'{db}', r'{db}.moved')\nhere = 1\n"
    with pytest.raises(UsageError, match="The code ran, but run .* could not be recorded"):
        shell.run_cell_magic("mlops", "track", cell.format(db=mlops_home / "registry.db"))
    assert shell.user_ns["here"] == 1


@pytest.mark.parametrize(
    "variable,value,expected",
    [("__session__", "/work/churn/analysis.ipynb", "/work/churn/analysis.ipynb"),  # JupyterLab's ipykernel
     ("__vsc_ipynb_file__", "/home/ana/eda.ipynb", "/home/ana/eda.ipynb"),       # VS Code
     ("__session__", "ipykernel_launcher.py", None)],                             # never a wrong name
)  # fmt: skip
def test_notebook_path_is_recorded_or_unknown(shell, store, monkeypatch, variable, value, expected):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delenv("MLOPS_NB_NOTEBOOK", raising=False)
    shell.user_ns[variable] = value
    shell.run_cell("%%mlops track\nloss = 0.1\n")
    assert _only_run(store)["notebook_path"] == expected


def test_top_level_await_is_refused_before_anything_runs(shell, store):
    with pytest.raises(UsageError, match="top-level `await`"):
        shell.run_cell_magic("mlops", "track", "import asyncio\nstarted = True\nawait asyncio.sleep(0)\n")
    assert "started" not in shell.user_ns and store.list_runs() == []
    shell.run_cell("%%mlops track\nasync def fetch():\n    return await other()\nloss = 0.5\n")  # await inside a def is fine
    assert _only_run(store)["metrics"] == {"loss": 0.5}


def test_autotrack_profiles_only_kept_runs_and_only_unchanged_inputs(shell, store):
    shell.run_cell(SETUP)
    shell.run_cell("%mlops autotrack on")
    shell.run_cell("summary = df.describe()")  # EDA: nothing kept, so nothing profiled
    assert store.list_runs() == [] and not store.has_profile(mlops_nb.fingerprint(shell.user_ns["df"]))
    shell.run_cell("X, y = df.drop(columns='target'), df['target']")
    shell.run_cell("model = LogisticRegression(max_iter=300).fit(X, y)\nfit_acc = model.score(X, y)")
    x_digest = mlops_nb.fingerprint(shell.user_ns["X"])
    before = mlops_nb.fingerprint(shell.user_ns["df"])
    shell.run_cell("df['ratio'] = df['sepal length (cm)'] / df['sepal width (cm)']\nratio_score = df['ratio'].mean()")
    shell.run_cell("%mlops autotrack off")
    train, mutate = (store.get_run(r["id"]) for r in reversed(store.list_runs()))
    assert [d["name"] for d in train["inputs"]] == ["X", "y"]
    assert store.has_profile(x_digest)  # a kept run's unchanged input is profiled
    assert mutate["inputs"][0]["digest"] == before and not store.has_profile(before)  # changed in place
    assert store.has_profile(mutate["outputs"][0]["digest"])  # the new version is profiled


def test_failed_init_keeps_the_working_registry(shell, store):
    with pytest.raises(UsageError, match="Install the fsspec backend"):
        shell.run_line_magic("mlops", "init --project other --artifacts nosuchprotocol://bucket/x")
    shell.run_cell("%%mlops track --name still-works\nloss = 0.2\n")
    (run,) = store.list_runs()  # recorded in the registry that was working before
    assert run["name"] == "still-works" and run["project"] == "default"
