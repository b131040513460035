"""The Python tracking API used by scripts and jobs."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import mlops_nb
from mlops_nb.tracking.capture import analyze_source, is_metric_name
from mlops_nb.errors import ModelFormatError, TrackingError


@pytest.fixture
def iris():
    return load_iris(as_frame=True).frame


def test_track_block_records_everything(store, iris):
    X, y = iris.drop(columns="target"), iris["target"]
    with mlops_nb.track(name="train", inputs={"train": iris}, tags={"owner": "ana"}) as run:
        model = LogisticRegression(max_iter=300).fit(X, y)
        mlops_nb.log_param("solver", "lbfgs")
        mlops_nb.log_params({"max_iter": 300, "features": ["a", "b"]})
        for step, loss in enumerate([0.9, 0.5, 0.3]):
            mlops_nb.log_metric("loss", loss, step=step)
        mlops_nb.log_metric("accuracy", model.score(X, y))
        version = mlops_nb.log_model(model, "clf")
    saved = store.get_run(run.id)
    assert saved["status"] == "finished" and saved["name"] == "train"
    assert saved["tags"] == {"owner": "ana"}
    explicit = {k: v for k, v in saved["params"].items() if not k.startswith("clf.")}
    assert explicit == {"solver": "lbfgs", "max_iter": 300, "features": ["a", "b"]}  # types kept
    assert saved["params"]["clf.max_iter"] == 300  # the logged model's params, as for captured ones
    assert [m["value"] for m in saved["metric_history"] if m["key"] == "loss"] == [0.9, 0.5, 0.3]
    assert saved["metrics"]["accuracy"] == pytest.approx(model.score(X, y))
    assert saved["inputs"][0]["digest"] == mlops_nb.fingerprint(iris)
    assert saved["inputs"][0]["shape"] == [150, 5]
    assert saved["models"][0]["digest"] == version == mlops_nb.fingerprint(model)
    assert saved["environment"]["packages"]["scikit-learn"]
    loaded = mlops_nb.load_model(version[:10])
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_failed_block_is_recorded_and_exception_propagates(store):
    with pytest.raises(ZeroDivisionError):
        with mlops_nb.track(name="boom") as run:
            mlops_nb.log_metric("loss", 1.0)
            1 / 0
    saved = store.get_run(run.id)
    assert saved["status"] == "failed"
    assert "ZeroDivisionError: division by zero" in saved["error"]
    assert saved["metrics"] == {"loss": 1.0}  # what was logged before the error is kept


def test_input_version_is_taken_before_the_block_mutates_it(store):
    df = pd.DataFrame({"a": [1, 2, 3]})
    before = mlops_nb.fingerprint(df)
    with mlops_nb.track(inputs={"df": df}) as run:
        df.loc[0, "a"] = 100
    assert store.get_run(run.id)["inputs"][0]["digest"] == before != mlops_nb.fingerprint(df)


def test_logging_outside_a_run_is_a_clear_error(store):
    with pytest.raises(TrackingError, match="outside a tracked run"):
        mlops_nb.log_metric("accuracy", 0.5)


@pytest.mark.parametrize("bad", ["high", None, [1, 2]])
def test_non_numeric_metric_is_refused(store, bad):
    with mlops_nb.track() as run:
        with pytest.raises(TrackingError, match="must be a real number"):
            run.log_metric("accuracy", bad)


def test_runs_dataframe(store):
    for c in (0.1, 1.0):
        with mlops_nb.track(name="sweep") as run:
            run.log_param("C", c)
            run.log_metric("accuracy", c / 2)
    with mlops_nb.track(name="other"):
        pass
    frame = mlops_nb.runs(name="sweep")
    assert list(frame["name"]) == ["sweep", "sweep"]
    assert sorted(frame["metrics.accuracy"]) == [0.05, 0.5]
    assert len(mlops_nb.runs(last=1)) == 1 and mlops_nb.runs(last=1)["name"].iloc[0] == "other"


class Scaler:
    """A non-scikit-learn model object (module level, so pickle can find it)."""

    def __init__(self):
        self.factor_ = 3.0


def test_models_of_unknown_types_need_explicit_trust(store):
    with mlops_nb.track() as run:
        version = run.log_model(Scaler(), "custom")
    assert run.models["custom"]["flavor"] == "skops"
    with pytest.raises(ModelFormatError, match="not trusted by default.*Scaler"):
        mlops_nb.load_model(version)
    assert mlops_nb.load_model(version, trust=True).factor_ == 3.0


def test_pickle_flavor_needs_trust_true():
    import io

    import joblib

    from mlops_nb.tracking.model_io import deserialize

    buffer = io.BytesIO()
    joblib.dump(Scaler(), buffer)
    with pytest.raises(ModelFormatError, match="arbitrary code"):
        deserialize(buffer.getvalue(), "joblib", trust=["anything"])
    assert deserialize(buffer.getvalue(), "joblib", trust=True).factor_ == 3.0
    with pytest.raises(ModelFormatError, match="Unknown model flavor"):
        deserialize(b"", "onnx")


def test_source_analysis():
    names = analyze_source(
        "import numpy as np\nX = df[cols]\ndef f():\n    return model\nout.to_csv('out.csv')\nx += 1\n"
    )
    assert {"df", "cols", "model", "out", "x"} <= names.loads
    assert {"np", "X", "f", "x"} <= names.stores
    assert "out.csv" in names.literals


@pytest.mark.parametrize(
    "name,expected",
    [("accuracy", True), ("test_accuracy", True), ("val_loss", True), ("roc_auc", True), ("rmse", True),
     ("f1", True), ("r2_score", True), ("mean_squared_error", True), ("train_acc", True),
     ("X_train", False), ("n_estimators", False), ("scores_df", False), ("accurate", False)],
)  # fmt: skip
def test_metric_names(name, expected):
    assert is_metric_name(name) is expected


def test_metric_pattern_is_configurable(store):
    mlops_nb.configure(metric_pattern=r"^kpi_")
    assert is_metric_name("kpi_revenue") and not is_metric_name("accuracy")
    with pytest.raises(mlops_nb.MlopsError, match="not a valid regular expression"):
        mlops_nb.configure(metric_pattern="(")


def test_git_commit_and_dirty_flag(store, tmp_path, monkeypatch):
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()  # noqa: E731
    git("init", "-q")
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "init")
    (repo / "train.py").write_text("x = 1\n")
    git("add", "train.py")
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "-m", "code")
    monkeypatch.chdir(repo)
    with mlops_nb.track() as clean:
        pass
    (repo / "train.py").write_text("x = 2\n")
    with mlops_nb.track() as dirty:
        pass
    head = git("rev-parse", "HEAD")
    assert (store.get_run(clean.id)["git_commit"], store.get_run(clean.id)["git_dirty"]) == (head, False)
    assert (store.get_run(dirty.id)["git_commit"], store.get_run(dirty.id)["git_dirty"]) == (head, True)
    monkeypatch.chdir(tmp_path)
    with mlops_nb.track() as outside:
        pass
    assert store.get_run(outside.id)["git_commit"] is None


def test_reads_are_names_read_before_the_cell_binds_them():
    names = analyze_source("X = df.drop(columns='t')\nmodel.fit(X, y)\ny = 2\nz = z + 1\n")
    assert names.reads == {"df", "model", "y", "z"}  # X is bound first; y and z are read first
    assert names.fitted == {"model"}


def test_a_short_run_is_one_transaction_and_a_long_one_is_seen_while_it_runs(store, kernel_env):
    """A run's start row waits DELAY_S: short runs are written whole, long ones show as running."""
    import subprocess
    import sys
    import time

    from sqlalchemy import event

    from mlops_nb.tracking import starts

    commits: list[int] = []
    event.listen(store.engine, "commit", lambda conn: commits.append(1))
    with mlops_nb.track(name="short") as run:
        run.log_metric("accuracy", 0.9)
    assert len(commits) == 1  # start row and record in one transaction
    assert store.get_run(run.id)["status"] == "finished"

    def seen_elsewhere() -> str:
        listing = subprocess.run([sys.executable, "-m", "mlops_nb.cli", "runs", "--status", "running"],
                                 capture_output=True, text=True, env=kernel_env, timeout=60)  # fmt: skip
        return listing.stdout

    with mlops_nb.track(name="long") as run:
        begun = time.monotonic()
        while run.id[:8] not in seen_elsewhere():
            assert time.monotonic() - begun < starts.DELAY_S + 5, "a running run stayed unseen by other processes"
        assert store.get_run(run.id)["status"] == "running"  # and this process sees it at once, too
    assert store.get_run(run.id)["status"] == "finished" and store.get_run(run.id)["metrics"] == {}


def test_inputs_that_are_not_frames_are_recorded_and_a_path_string_is_its_file(store, tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("x,y\n1,2\n")
    with mlops_nb.track(name="mixed", inputs={"train": str(csv), "labels": ["a", "b"], "opts": {"k": 1}}, store=store) as run:
        mlops_nb.log_metric("accuracy", 0.5)
    mlops_nb.sync()
    kinds = {i["name"]: i["kind"] for i in store.get_run(run.id)["inputs"]}
    assert kinds == {"train": "file", "labels": "object", "opts": "object"}  # the run is written, none lost
    assert run.inputs["train"]["digest"] == mlops_nb.fingerprint(csv)


def test_a_forest_is_saved_as_skops_with_a_compact_schema_and_loads_the_same():
    """skops' own writer indents its schema (no C encoder: a third of a forest's save); ours does not."""
    import json
    import zipfile

    import numpy as np
    import skops.io
    import skops.io._persist
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier

    from mlops_nb.tracking.model_io import deserialize, serialize

    digits = load_digits()
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(digits.data, digits.target)
    data, flavor = serialize(forest)
    assert flavor == "skops"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        schema = archive.read("schema.json").decode()
    with zipfile.ZipFile(io.BytesIO(skops.io.dumps(forest))) as archive:
        indented = archive.read("schema.json").decode()
    assert "\n" not in schema and "\n" in indented
    assert json.loads(schema)["__class__"] == json.loads(indented)["__class__"] == "RandomForestClassifier"
    assert skops.io._persist.json is json  # skops' writer is left as it was found
    again = deserialize(data, flavor)
    np.testing.assert_array_equal(again.predict_proba(digits.data), forest.predict_proba(digits.data))
