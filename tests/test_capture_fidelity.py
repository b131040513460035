"""A tracked notebook shows exactly what the same notebook shows untracked; shown metrics are recorded.

Each notebook runs twice in a real kernel (cell ids sent as JupyterLab sends
them): as written, and with every ``%%mlops track`` line commented out (how a
user turns tracking off; the line numbers stay the same).  Every output of
every compared cell must be identical, apart from the one summary line a
tracked cell adds.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from capture_kernel import ANSI, comparable_outputs, run_notebook

ROOT = Path(__file__).resolve().parents[1]
KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}

# The shapes the issue found broken, one per cell.
SHAPES = [
    "%load_ext mlops_nb",
    "import matplotlib.pyplot as plt\nfrom sklearn.datasets import load_iris\n"
    "from sklearn.linear_model import LogisticRegression\nfrom sklearn.metrics import accuracy_score\n"
    "from sklearn.model_selection import GridSearchCV, cross_val_score\n"
    "df = load_iris(as_frame=True).frame\nX, y = df.drop(columns='target'), df['target']",
    "import random\nimport numpy as np\nrandom.seed(7)\nnp.random.seed(7)",  # tracking must not draw from these
    "%%mlops track --name semicolon\nfit_loss = 0.25\n(fit_loss, 'hidden by the semicolon');",
    "%%mlops track --name shown\nclf = LogisticRegression(max_iter=300).fit(X, y)\ny_model = clf.predict(X)\naccuracy_score(y, y_model)",
    "%%mlops track --name cv\nscores = cross_val_score(LogisticRegression(max_iter=300), X, y, cv=3)\nscores",
    "%%mlops track --name cv-mean\nscores.mean()",
    "%%mlops track --name search\nsearch = GridSearchCV(LogisticRegression(max_iter=300), {'C': [0.1, 1.0]}, cv=3)\nsearch.fit(X, y);",
    # (explicit flushes: otherwise ipykernel's flush timer alone decides stdout/stderr order, tracked or not)
    "%%mlops track --name streams\nimport sys\nprint('one', flush=True)\nprint('two', file=sys.stderr, flush=True)\n"
    "display(df.head(2))\nprint('three')\nclf.score(X, y)",
    "%%mlops track --name plot\nplt.plot(scores, label='fold score')\nplt.legend();",
    "%%mlops track --name boom\nhalf = len(X) // 2\nraise ValueError(f'bad split at {half}')",
    "%%mlops track --name nested\ndef check(v):\n    if v > 1:\n        raise ZeroDivisionError('too big')\n    return v\n\ncheck(2)",
    "%%mlops track --name awaits\nimport asyncio\nawait asyncio.sleep(0)\nfit_loss * 2",
    "%%mlops track --name plain-last\nvalue = 21\nvalue * 2",
    "%%mlops track --name captured\n%%capture captured\nprint('inside')\ncaptured_clf = LogisticRegression(max_iter=300).fit(X, y)",
    "%%mlops track --name draws\n(random.random(), np.random.rand())",  # the same draws after all of the above
]

def _untracked(nb):
    plain = copy.deepcopy(nb)
    for cell in plain.cells:
        if cell.cell_type == "code" and cell.source.startswith("%%mlops track"):
            first, body = cell.source.split("\n", 1)
            cell.source = body if body.startswith("%%") else f"# {first}\n{body}"  # a cell magic must lead
    return plain


def _summary(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o["output_type"] == "stream")


def _compare(nb, tmp_path, env, *, compare=lambda tracked, plain: True):
    tracked = copy.deepcopy(nb)
    plain = _untracked(nb)
    nbformat.write(tracked, tmp_path / "tracked.ipynb")
    run_notebook(tracked, env={**env, "MLOPS_NB_NOTEBOOK": str(tmp_path / "tracked.ipynb")}, cwd=tmp_path)
    run_notebook(plain, env={**env, "MLOPS_NB_HOME": str(tmp_path / "untracked-home")}, cwd=tmp_path)
    compared = 0
    for t_cell, p_cell in zip(tracked.cells, plain.cells):
        if t_cell.cell_type != "code" or not compare(t_cell, p_cell):
            continue
        assert t_cell.execution_count == p_cell.execution_count, t_cell.source
        assert comparable_outputs(t_cell) == comparable_outputs(p_cell), t_cell.source
        compared += 1
    return tracked, compared


def test_tracked_cells_show_what_untracked_cells_show(store, tmp_path, kernel_env):
    nb = new_notebook(cells=[new_code_cell(s) for s in SHAPES], metadata=KERNEL)
    tracked, compared = _compare(nb, tmp_path, kernel_env)
    assert compared == len(SHAPES)
    cells = {c.source.split("\n", 1)[0]: c for c in tracked.cells}
    assert "hidden by the semicolon" not in str(cells["%%mlops track --name semicolon"].outputs)
    boom = next(o for o in cells["%%mlops track --name boom"].outputs if o["output_type"] == "error")
    text = ANSI.sub("", "\n".join(boom["traceback"]))
    number = cells["%%mlops track --name boom"].execution_count
    assert f"Cell In[{number}], line 3" in text and "run_cell_magic" not in text and "hidden" not in text
    assert "FAILED" in _summary(cells["%%mlops track --name boom"])
    for source, cell in cells.items():
        if source.startswith("%%mlops track"):
            assert re.search(r"mlops run [0-9a-f]{8} ", _summary(cell)), source  # the one addition

    runs = {r["name"]: store.get_run(r["id"]) for r in store.list_runs()}
    assert runs["semicolon"]["metrics"] == {"fit_loss": 0.25}
    shown = runs["shown"]["metrics"]["accuracy_score"]
    assert 0.9 < shown <= 1 and f"{shown!r}"[:6] in str(cells["%%mlops track --name shown"].outputs)
    cv = runs["cv"]
    folds = [m["value"] for m in cv["metric_history"] if m["key"] == "scores"]
    assert [m["step"] for m in cv["metric_history"] if m["key"] == "scores"] == [0, 1, 2]
    assert cv["metrics"]["scores.mean"] == pytest.approx(sum(folds) / 3) and cv["metrics"]["scores.std"] > 0
    assert runs["cv-mean"]["metrics"]["scores.mean"] == pytest.approx(cv["metrics"]["scores.mean"])
    search = runs["search"]
    assert search["params"]["search.best_params.C"] in (0.1, 1.0) and 0.9 < search["metrics"]["search.best_score"] <= 1
    table = [(m["step"], m["value"]) for m in search["metric_history"] if m["key"] == "search.mean_test_score"]
    assert [s for s, _ in table] == [0, 1] and max(v for _, v in table) == pytest.approx(search["metrics"]["search.best_score"])
    assert "clf.score" in runs["streams"]["metrics"]
    assert runs["boom"]["status"] == "failed" and "ValueError: bad split at 75" in runs["boom"]["error"]
    assert runs["awaits"]["status"] == "finished"  # top-level await runs as in any cell
    assert [m["name"] for m in runs["captured"]["models"]] == ["captured_clf"]  # %%capture's body, tracked
    assert all(not r["warnings"] for r in runs.values())  # a straight run: nothing stale


def test_autotracked_cells_show_what_untracked_cells_show(store, tmp_path, kernel_env):
    # The same shapes with no track lines: autotrack watches every cell of one kernel.
    bodies = [s.split("\n", 1)[1] if s.startswith("%%mlops track") else s for s in SHAPES]
    auto = new_notebook(cells=[new_code_cell(b) for b in bodies], metadata=KERNEL)
    auto.cells[0].source = "%load_ext mlops_nb\n%mlops autotrack on"
    plain = copy.deepcopy(auto)
    plain.cells[0].source = "%load_ext mlops_nb"
    run_notebook(auto, env=kernel_env, cwd=tmp_path)
    run_notebook(plain, env={**kernel_env, "MLOPS_NB_HOME": str(tmp_path / "untracked-home")}, cwd=tmp_path)
    for a_cell, p_cell in zip(auto.cells[1:], plain.cells[1:]):
        assert a_cell.execution_count == p_cell.execution_count, a_cell.source
        assert comparable_outputs(a_cell) == comparable_outputs(p_cell), a_cell.source
    runs = [store.get_run(r["id"]) for r in store.list_runs()]
    metrics = {k for r in runs for k in r["metrics"]}
    assert {"fit_loss", "accuracy_score", "scores.mean", "search.best_score", "clf.score"} <= metrics
    models = {m["name"] for r in runs for m in r["models"]}
    assert {"clf", "search", "captured_clf"} <= models  # %%capture's body too
    assert all(not r["warnings"] for r in runs) and all(r["status"] in ("finished", "failed") for r in runs)


@pytest.mark.parametrize("name", ["quickstart", "drift_monitoring", "scheduled_retraining"])
def test_example_notebooks_show_the_same_tracked_and_untracked(store, tmp_path, kernel_env, name):
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)

    def comparable(tracked, plain) -> bool:
        # Cells that call mlops_nb read the registry the tracked run filled; the rest must match.
        if tracked.source.startswith("%%mlops track"):
            return True
        return "mlops" not in tracked.source and not any(o["output_type"] == "error" for o in plain.outputs)

    tracked, compared = _compare(nb, tmp_path, kernel_env, compare=comparable)
    assert compared >= 2  # every tracked cell, and the plain cells around them
    runs = [store.get_run(r["id"]) for r in store.list_runs()]
    assert runs and all(r["status"] == "finished" for r in runs)
    assert all(not r["warnings"] for r in runs), [r["warnings"] for r in runs]  # no false warnings
