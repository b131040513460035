"""`reproduce` (issue 20): a recorded run re-executed in a fresh kernel, compared with its original.

Real kernels and real papermill jobs; the registry is a SQLite file of the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import mlops_nb
from mlops_nb.errors import ReproduceError
from mlops_nb.store import get_store


def _notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


def _by_name(store, name: str) -> dict:
    return store.get_run(next(r["id"] for r in store.list_runs() if r["name"] == name and "mlops.reproduces" not in
                              store.get_run(r["id"])["tags"]))  # fmt: skip


def test_tracked_cells_reproduce_and_an_unseeded_model_is_named(mlops_home, tmp_path, kernel_env):
    from capture_kernel import run_notebook

    nb = nbformat.read(_notebook(
        tmp_path / "explore.ipynb",
        "%load_ext mlops_nb",
        "import numpy as np\nfrom sklearn.datasets import load_digits\nfrom sklearn.linear_model import LogisticRegression\n"
        "digits = load_digits()\nC = 0.1\nsettings = {'max_iter': 300}",
        "%%mlops track --name seeded\n"
        "model = LogisticRegression(C=C, **settings).fit(digits.data, digits.target)\n"
        "accuracy = model.score(digits.data, digits.target)",
        "%%mlops track --name unseeded\nfrom sklearn.ensemble import RandomForestClassifier\n"
        "forest = RandomForestClassifier(n_estimators=5).fit(digits.data[:300], digits.target[:300])\n"
        "forest_accuracy = forest.score(digits.data[300:], digits.target[300:])",
    ), as_version=4)  # fmt: skip
    run_notebook(nb, env=kernel_env, cwd=tmp_path)
    store = get_store()
    seeded, unseeded = _by_name(store, "seeded"), _by_name(store, "unseeded")
    assert seeded["context"]["C"] == {"kind": "value", "value": 0.1}
    assert seeded["context"]["LogisticRegression"]["kind"] == "import"
    assert seeded["context"]["settings"] == {"kind": "value", "value": {"max_iter": 300}}
    assert seeded["context"]["digits"] == {"kind": "chain"}

    same = mlops_nb.reproduce(seeded["id"])
    assert same.matched, same.text()
    (old, new, checks), = same.pairs
    assert old == seeded["id"] and store.get_run(new)["tags"]["mlops.reproduces"] == seeded["id"]
    assert {c.what for c in checks.checks} == {"model model", "metric accuracy"}

    cli = subprocess.run([sys.executable, "-m", "mlops_nb.cli", "reproduce", unseeded["id"][:8]], env=kernel_env,
                         capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "DOES NOT MATCH" in cli.stdout and "RandomForestClassifier is unseeded (random_state=None)" in cli.stdout

    # the run was recorded with another scikit-learn: said, and not a match
    env = dict(seeded["environment"])
    env["packages"] = {**env["packages"], "scikit-learn": "0.24.2"}
    from sqlalchemy import update

    from mlops_nb.store import schema

    with store.engine.begin() as conn:
        conn.execute(update(schema.runs).where(schema.runs.c.id == seeded["id"]).values(environment=env))
    other = mlops_nb.reproduce(seeded["id"])
    assert not other.matched
    assert any(c.what == "env scikit-learn" and c.original == "0.24.2" for c in other.pairs[0][2].checks)


def test_a_job_run_reproduces_with_its_file_restored_and_its_stored_notebook(mlops_home, tmp_path):
    data = tmp_path / "train.csv"
    data.write_text("x,y\n" + "".join(f"{i},{i % 3}\n" for i in range(60)))
    path = _notebook(
        tmp_path / "job.ipynb",
        "%load_ext mlops_nb",
        "C = 1.0",
        "%%mlops track --name train\nimport pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
        "df = pd.read_csv('train.csv')\nmodel = LogisticRegression(C=C, max_iter=500).fit(df[['x']], df['y'])\n"
        "accuracy = model.score(df[['x']], df['y'])",
    )
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].metadata["tags"] = ["parameters"]
    nbformat.write(nb, path)
    job = mlops_nb.run_notebook(path, {"C": 0.5})
    assert job.status == "finished", job.error
    store = get_store()
    original = store.get_run(job.run_ids[0])
    assert {i["name"] for i in original["inputs"]} >= {"train.csv"} and all(i["snapshot"] for i in original["inputs"]
                                                                               if i["kind"] == "file")  # fmt: skip

    edited = "x,y\n" + "".join(f"{i},{(i * 2) % 3}\n" for i in range(60))
    data.write_text(edited)  # the data changed on disk since
    nb.cells.append(nbformat.v4.new_markdown_cell("a note added later"))
    nb.cells[0].source = "%load_ext mlops_nb  # edited"
    nbformat.write(nb, path)  # and the notebook too: the copy kept with the job is what runs
    result = mlops_nb.reproduce(job.id)
    assert result.matched, result.text()
    assert any("train.csv restored from its snapshot" in n for n in result.notes), result.notes
    assert any("its stored copy was executed" in n for n in result.notes)
    assert data.read_text() == edited  # the user's file is put back as they left it
    assert not list(tmp_path.glob(".*mlops-*"))  # no leftovers beside it (backups, notebook copies)
    new_job = store.get_job_run(result.job_run_id)
    assert new_job["parameters"] == {"C": 0.5}


def test_runs_that_cannot_be_reproduced_say_why(mlops_home):
    with mlops_nb.track(name="script") as run:
        run.log_metric("m", 1.0)
    with pytest.raises(ReproduceError, match="recorded no source code"):
        mlops_nb.reproduce(run.id)
    with pytest.raises(ReproduceError, match="neither a run nor a job run"):
        mlops_nb.reproduce("abcdef12")


def test_reproduce_on_the_team_backend_postgresql_and_s3(pg_database, s3_bucket, tmp_path, monkeypatch):
    """A tracked cell recorded into PostgreSQL + S3, its inputs rebuilt in the fresh kernel from
    the S3 snapshot, the comparison read back from PostgreSQL."""
    from mlops_nb import config
    from mlops_nb.store import clear_cache

    monkeypatch.setenv("MLOPS_NB_STORE_URL", pg_database)
    monkeypatch.setenv("MLOPS_NB_ARTIFACTS_URL", f"s3://{s3_bucket}/artifacts")
    monkeypatch.setenv("MLOPS_NB_SPOOL_DIR", str(tmp_path / "spool"))
    config.reset()
    clear_cache()
    from capture_kernel import run_notebook

    nb = nbformat.read(_notebook(
        tmp_path / "team.ipynb",
        "%load_ext mlops_nb",
        "import pandas as pd\nfrom sklearn.datasets import load_wine\ndf = load_wine(as_frame=True).frame",
        "%%mlops track --name team-fit\nfrom sklearn.tree import DecisionTreeClassifier\n"
        "tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(df.drop(columns='target'), df['target'])\n"
        "accuracy = tree.score(df.drop(columns='target'), df['target'])",
    ), as_version=4)  # fmt: skip
    run_notebook(nb, env=dict(os.environ), cwd=tmp_path)
    store = get_store()
    original = _by_name(store, "team-fit")
    assert all(i["snapshot"] for i in original["inputs"])
    result = mlops_nb.reproduce(original["id"])
    assert result.matched, result.text()
    assert store.get_job_run(result.job_run_id)["status"] == "finished"


def test_a_job_that_writes_into_its_folder_reproduces_in_a_copy_of_it(mlops_home, tmp_path):
    # The notebook writes a batch into incoming/ and trains on whatever the glob finds: re-run in place it would
    # also read the batch its first run left there.
    work = tmp_path / "work"
    work.mkdir()
    (work / "seed.txt").write_text("3")
    path = _notebook(
        work / "batches.ipynb",
        "%load_ext mlops_nb",
        "import glob, pathlib\nimport numpy as np, pandas as pd\npathlib.Path('incoming').mkdir(exist_ok=True)\n"
        "seed = int(open('seed.txt').read())\nn = len(glob.glob('incoming/*.csv'))\n"
        "pd.DataFrame({'x': np.random.default_rng(seed + n).normal(size=50)}).to_csv(f'incoming/{n}.csv', index=False)",
        "%%mlops track --name count\nframes = [pd.read_csv(p) for p in sorted(glob.glob('incoming/*.csv'))]\n"
        "import mlops_nb\nmlops_nb.log_metric('batches', len(frames))\nmlops_nb.log_metric('total', float(sum(f.x.sum() for f in frames)))",
    )
    job = mlops_nb.run_notebook(path, {}, cwd=work)
    assert job.status == "finished", job.error
    assert get_store().get_run(job.run_ids[0])["metrics"]["batches"] == 1
    result = mlops_nb.reproduce(job.id)
    assert result.matched, result.text()  # in place it would have counted 2 batches
    (note,) = [n for n in result.notes if "as it was when the job started" in n]
    assert f"ran in a copy of {work}" in note and "incoming/0.csv" in note
    assert sorted(p.name for p in (work / "incoming").iterdir()) == ["0.csv"]  # the user's folder is untouched
