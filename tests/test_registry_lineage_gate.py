"""The clean-lineage gate with real jobs: a validated, committed notebook passes; an edited one does not."""

from __future__ import annotations

import subprocess

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import mlops_nb
from mlops_nb.errors import PromotionRefused
from mlops_nb.store import get_store

POLICY = {"aliases": {"production": {"clean_lineage": True, "metrics": [{"name": "accuracy", "min": 0.8}]}}}


def _notebook(path, extra: str = "") -> None:
    nb = new_notebook(
        cells=[
            new_code_cell("C = 1.0", metadata={"tags": ["parameters"]}),
            new_code_cell("%load_ext mlops_nb"),
            new_code_cell("from sklearn.datasets import load_iris\nfrom sklearn.linear_model import LogisticRegression\nX, y = load_iris(return_X_y=True)"),
            new_code_cell("%%mlops track --name fit\nclf = LogisticRegression(C=C, max_iter=300).fit(X, y)\naccuracy = clf.score(X, y)" + extra),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(nb, path)


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@example.org", "-c", "user.name=t", *args],
                   check=True, capture_output=True)  # fmt: skip


def test_validated_committed_notebook_passes_and_an_edit_is_refused(mlops_home, tmp_path, kernel_env, monkeypatch):
    repo = tmp_path / "project"
    repo.mkdir()
    notebook = repo / "train.ipynb"
    _notebook(notebook)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitignore").write_text(".mlops/\n*.out.ipynb\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "train notebook")
    monkeypatch.chdir(repo)
    store = get_store()

    assert mlops_nb.validate(str(notebook), store=store).passed
    job = mlops_nb.run_notebook(str(notebook), cwd=str(repo), store=store)
    (run,) = store.list_runs(job_run_id=job.id)
    digest = store.get_run(run["id"])["models"][0]["digest"]
    mlops_nb.register(digest, name="iris")
    result = mlops_nb.promote("iris", 1, "production", policy=POLICY)
    gates = {g["gate"]: g["passed"] for g in result.gates}
    assert result.status == "promoted" and gates == {
        "metric accuracy": True, "training run finished": True, "git clean": True,
        "notebook validated": True, "no stale inputs": True,
    }  # fmt: skip

    _notebook(notebook, extra="\nprint('changed')")  # edited, neither committed nor validated
    job2 = mlops_nb.run_notebook(str(notebook), {"C": 0.5}, cwd=str(repo), store=store)
    (run2,) = store.list_runs(job_run_id=job2.id)
    mlops_nb.register(store.get_run(run2["id"])["models"][0]["digest"], name="iris")
    with pytest.raises(PromotionRefused) as refused:
        mlops_nb.promote("iris", 2, "production", policy=POLICY)
    failed = {g["gate"] for g in refused.value.gates if not g["passed"]}
    assert failed == {"git clean", "notebook validated"}
    assert "dirty git tree" in str(refused.value) and "no passing validation" in str(refused.value)
    assert store.get_alias("iris", "production") == 1


def test_job_parameters_pin_aliases_to_a_version(mlops_home, tmp_path):
    from registry_support import train

    store = get_store()
    mlops_nb.register(train(store, 1.0)[0], name="iris", alias="production")
    nb = new_notebook(
        cells=[
            new_code_cell('model = "none"\ncontact = "ops@example"', metadata={"tags": ["parameters"]}),
            new_code_cell("import mlops_nb\nclf = mlops_nb.load_model(model)\nprint('using', model, type(clf).__name__)"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    path = tmp_path / "score.ipynb"
    nbformat.write(nb, path)
    job = mlops_nb.run_notebook(str(path), {"model": "iris@production", "contact": "ops@example"}, store=store)
    assert job.ok and job.parameters == {"model": "iris:1", "contact": "ops@example"}
    record = store.get_job_run(job.id)
    assert record["environment"]["models"] == {"model": "iris@production → iris:1"}
    executed = nbformat.reads(store.artifacts.get_bytes(record["output_digest"]).decode(), as_version=4)
    assert any("using iris:1 LogisticRegression" in o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
