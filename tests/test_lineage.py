"""Lineage across tracked cells, in a real IPython shell."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

import mlops_nb


@pytest.fixture
def pipeline(shell, store):
    shell.run_cell(
        "import pandas as pd\nfrom sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression\nraw = load_iris(as_frame=True).frame"
    )
    shell.run_cell("%%mlops track --name prep\nclean = raw.dropna()\nX, y = clean.drop(columns='target'), clean['target']\n")
    shell.run_cell("%%mlops track --name train\nclf = LogisticRegression(max_iter=500).fit(X, y)\naccuracy = clf.score(X, y)\n")
    runs = {r["name"]: r["id"] for r in store.list_runs()}
    return runs, store.get_run(runs["train"])["models"][0]["digest"]


def test_model_traces_back_to_the_raw_data(pipeline, store):
    runs, model = pipeline
    tree = mlops_nb.lineage(f"model:{model[:10]}")
    assert (tree.root.kind, tree.root.id) == ("model", model)
    (train,) = tree.root.children
    assert (train.kind, train.id) == ("run", runs["train"]) and "accuracy=" in train.label
    assert {c.label.split()[0] for c in train.children} == {"X", "y"}
    prep = train.children[0].children[0]
    assert (prep.kind, prep.id) == ("run", runs["prep"])
    assert [c.label.split()[0] for c in prep.children] == ["raw"]
    assert prep.children[0].id == mlops_nb.fingerprint(pipeline_raw(store, runs["prep"]))
    text = repr(tree)
    assert "trained by run" in text and "made by run" in text and "(shown above)" in text


def pipeline_raw(store, prep_id):
    from sklearn.datasets import load_iris

    assert store.get_run(prep_id)["inputs"][0]["name"] == "raw"
    return load_iris(as_frame=True).frame


def test_run_lists_downstream_readers_and_data_is_traced(pipeline, store):
    runs, _ = pipeline
    assert mlops_nb.lineage(f"run:{runs['prep'][:8]}").read_by == [runs["train"]]
    x_digest = next(d["digest"] for d in store.get_run(runs["prep"])["outputs"] if d["name"] == "X")
    data = mlops_nb.lineage(f"data:{x_digest}")
    assert data.read_by == [runs["train"]] and data.root.children[0].id == runs["prep"]


def test_lineage_magic_and_errors(pipeline, shell):
    runs, _ = pipeline
    assert shell.run_line_magic("mlops", f"lineage {runs['train'][:8]}").root.id == runs["train"]
    with pytest.raises(UsageError, match="use run:ID, data:DIGEST or model:DIGEST"):
        shell.run_line_magic("mlops", "lineage thing:1234")
    with pytest.raises(UsageError, match="No model version"):
        shell.run_line_magic("mlops", "lineage model:ffffffff")
