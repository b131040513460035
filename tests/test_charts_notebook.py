"""notebooks/charts.ipynb run as a job (a real kernel through papermill): every picture is in the executed notebook.

The job's output is what nbconvert and GitHub show: each chart must be there as
static SVG beside the Vega-Lite spec and our own chart representation.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from mlops_nb.charts.display import CHART_MIME, VEGALITE_MIME
from mlops_nb.jobs import run_notebook

ROOT = Path(__file__).resolve().parents[1]


def charts_of(cell) -> list[dict]:
    found = []
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if CHART_MIME in data:
            assert data["image/svg+xml"].lstrip().startswith("<svg") and VEGALITE_MIME in data
            found.append({**data[CHART_MIME], "svg": data["image/svg+xml"]})
    return found


def test_the_charts_notebook_draws_every_view_as_a_job(store, tmp_path):
    job = run_notebook(ROOT / "notebooks" / "charts.ipynb", {}, output=str(tmp_path / "out") + "/", timeout=600)
    assert job.ok, job.error
    executed = nbformat.read(store.get_job_run(job.id)["output_url"], as_version=4)
    cells = {c.source.splitlines()[0]: c for c in executed.cells if c.cell_type == "code"}

    (pipeline,) = charts_of(cells["%mlops pipeline"])
    labels = re.findall(r'<text[^>]*>([^<]+)</text>', pipeline["svg"])
    assert {"prepare", "train", "X_train", "model"} <= set(labels)  # cells, the data they made, the model
    assert pipeline["marks"] >= 7 and not pipeline["note"]

    (lineage,) = charts_of(cells["%mlops lineage model:wine@staging"])
    assert "@staging" in lineage["svg"] and "wine v1" in lineage["svg"]
    text = cells["%mlops lineage model:wine@staging --text"].outputs[0]["data"]["text/plain"]
    assert "trained by run" in text and not charts_of(cells["%mlops lineage model:wine@staging --text"])

    runs = {c["id"]: c for c in charts_of(cells['mlops_nb.charts.show_runs("name = \'sweep\'", x="C", y="accuracy")'])}
    assert set(runs) == {"scatter", "parallel", "bars", "steps"}
    assert runs["scatter"]["marks"] == 5 and runs["steps"]["marks"] == 5  # five C values, five lines of cv folds
    drift = {c["id"]: c for c in charts_of(cells["report = mlops_nb.drift(X_train, X_test)"])}
    assert drift["histograms"]["marks"] >= 10 and drift["timeline"]["marks"] == 1
    model = {c["id"]: c for c in charts_of(cells['mlops_nb.charts.show_model("wine")'])}
    assert model["trend"]["marks"] >= 1 and model["aliases"]["marks"] == 1
