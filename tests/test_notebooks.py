"""Notebooks executed in a real kernel by papermill record into the store."""

from __future__ import annotations

import nbformat
import papermill as pm
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import mlops_nb

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


def test_quickstart_records_lineage(store, tmp_path):
    out = tmp_path / "quickstart.out.ipynb"
    pm.execute_notebook(
        str(ROOT / "notebooks" / "quickstart.ipynb"), str(out), cwd=str(tmp_path),
        parameters={"C": 0.5}, kernel_name="python3", progress_bar=False,
    )  # fmt: skip
    runs = {r["name"]: store.get_run(r["id"]) for r in store.list_runs()}
    assert set(runs) == {"prepare-data", "train-logreg", "train-forest", "retrain-logreg"}
    assert all(r["status"] == "finished" and r["project"] == "quickstart" for r in runs.values())
    prep, logreg, forest = runs["prepare-data"], runs["train-logreg"], runs["train-forest"]
    produced = {d["name"]: d["digest"] for d in prep["outputs"]}
    assert set(produced) == {"X_train", "X_test", "y_train", "y_test"}
    for train in (logreg, forest):
        assert {d["name"]: d["digest"] for d in train["inputs"]} == produced  # data → model lineage
        assert len(train["models"]) == 1 and 0.85 < train["metrics"]["accuracy"] <= 1
    assert logreg["params"]["clf.steps"]  # pipeline params captured
    assert {"f1", "accuracy"} <= set(logreg["metrics"]) and "roc_auc" in forest["metrics"]
    assert store.summary()["model_versions"] == 3
    # the kernel's fingerprint of the bundled dataset equals this process's
    from sklearn.datasets import load_breast_cancer

    assert prep["inputs"][0]["digest"] == mlops_nb.fingerprint(load_breast_cancer(as_frame=True).frame)
    nb = nbformat.read(out, as_version=4)
    train_cell = next(c for c in nb.cells if c.source.startswith("%%mlops track --name train-logreg"))
    assert logreg["execution_count"] == train_cell.execution_count
    assert f"mlops run {logreg['id'][:8]} train-logreg" in train_cell.outputs[0]["text"]
    # the closing cells: lineage of the forest, and a drift check kept in the registry
    lineage_cell = next(c for c in nb.cells if "mlops_nb.lineage" in c.source)
    text = lineage_cell.outputs[0]["data"]["text/plain"]
    assert f"trained by run {forest['id'][:8]}" in text and f"made by run {prep['id'][:8]}" in text
    (check,) = store.list_drift_checks()
    assert check["n_columns"] == 30 and check["current_digest"] == produced["X_test"]
    # the model stored in the kernel loads here and predicts like the kernel's
    model = mlops_nb.load_model(logreg["models"][0]["digest"])
    assert model.get_params()["logisticregression__C"] == 0.5
    # the registry story: the forest refused by the gate, the logreg promoted, a retrain promoted, rolled back
    versions = {v.version: v for v in mlops_nb.versions("cancer")}
    assert versions[1].run_id == forest["id"] and versions[2].run_id == logreg["id"]
    assert versions[3].run_id == runs["retrain-logreg"]["id"] and versions[2].aliases == ["production"]
    assert store.get_alias("cancer", "production") == 2
    actions = [e["action"] for e in mlops_nb.audit("cancer")]
    assert actions == ["register", "register", "promotion_refused", "promote", "register", "promote", "rollback"]
    refusal = next(c for c in nb.cells if "except mlops_nb.errors.PromotionRefused" in c.source)
    assert "is below the minimum 0.95" in refusal.outputs[0]["text"]
    panel_cell = next(c for c in nb.cells if c.source == "%mlops registry cancer")
    bundle = panel_cell.outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in bundle  # a live widget view…
    assert "cancer" in bundle["text/html"] and "@production" in bundle["text/html"]  # …with its static fallback
    runs_cell = next(c for c in nb.cells if c.source == "%mlops runs")
    bundle = runs_cell.outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in bundle and "retrain-logreg" in bundle["text/html"]
    verify_cell = next(c for c in nb.cells if c.source == "%mlops audit --verify")
    assert "audit trail intact" in verify_cell.outputs[0]["text"]


def test_failing_tracked_cell_stops_papermill_and_is_recorded(store, tmp_path):
    nb = new_notebook(
        cells=[
            new_code_cell("%load_ext mlops_nb"),
            new_code_cell("%%mlops track --name flaky\nloss = 0.25\nraise RuntimeError('feature store unreachable')"),
            new_code_cell("never = True"),
        ],
        metadata=KERNEL,
    )
    src = tmp_path / "flaky.ipynb"
    nbformat.write(nb, src)
    with pytest.raises(pm.PapermillExecutionError) as info:
        pm.execute_notebook(str(src), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False)
    assert info.value.ename == "RuntimeError" and "feature store unreachable" in info.value.evalue
    (run,) = store.list_runs()
    saved = store.get_run(run["id"])
    assert saved["status"] == "failed" and "RuntimeError: feature store unreachable" in saved["error"]
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    last = next(c for c in executed.cells if c.source == "never = True")
    assert last.get("execution_count") is None  # papermill stopped at the failure


def test_autotrack_in_a_real_kernel(store, tmp_path):
    nb = new_notebook(
        cells=[
            new_code_cell("%load_ext mlops_nb\n%mlops autotrack on"),
            new_code_cell("from sklearn.datasets import load_iris\nfrom sklearn.tree import DecisionTreeClassifier\n"
                          "df = load_iris(as_frame=True).frame"),
            new_code_cell("X, y = df.drop(columns='target'), df['target']"),
            new_code_cell("tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)\ntrain_acc = tree.score(X, y)"),
            new_code_cell("%mlops autotrack off\nother = DecisionTreeClassifier().fit(X, y)"),
        ],
        metadata=KERNEL,
    )
    nbformat.write(nb, tmp_path / "auto.ipynb")
    pm.execute_notebook(str(tmp_path / "auto.ipynb"), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False)
    (row,) = store.list_runs()  # only the cell that produced a model and a metric
    run = store.get_run(row["id"])
    assert [m["name"] for m in run["models"]] == ["tree"] and "train_acc" in run["metrics"]
    assert {d["name"] for d in run["inputs"]} == {"X", "y"}
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    fit_cell = next(c for c in executed.cells if c.source.startswith("tree ="))
    assert run["execution_count"] == fit_cell.execution_count
    assert run["source"] == fit_cell.source


def test_data_versions_notebook_gets_back_diffs_and_reproduces(store, tmp_path):
    out = tmp_path / "data_versions.out.ipynb"
    pm.execute_notebook(str(ROOT / "notebooks" / "data_versions.ipynb"), str(out), cwd=str(tmp_path),
                        kernel_name="python3", progress_bar=False)  # fmt: skip
    runs = {r["name"]: store.get_run(r["id"]) for r in store.list_runs() if not r["name"].startswith("reproduce")}
    v1 = runs["train-v1"]
    (df_v1,) = [i for i in v1["inputs"] if i["name"] == "df"]
    assert df_v1["snapshot"] and mlops_nb.fingerprint(mlops_nb.load_data(f"run:{v1['id']}/df")) == df_v1["digest"]
    nb = nbformat.read(out, as_version=4)
    text = {i: "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in c.get("outputs", []))
            for i, c in enumerate(nb.cells) if c.cell_type == "code"}  # fmt: skip
    diff = next(t for t in text.values() if t.startswith("data diff"))
    assert "178 -> 198 rows" in diff and "+21 added, -1 removed, 177 unchanged" in diff
    assert any("MATCHES" in t and "model model" in t for t in text.values())
    reproduced = [r for r in store.list_runs() if store.get_run(r["id"])["tags"].get("mlops.reproduces") == v1["id"]]
    assert len(reproduced) == 1
