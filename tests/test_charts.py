"""The charts (mlops_nb.charts) on real registries made through the Python API, drawn by a real Vega-Lite renderer.

Every spec is rendered to SVG by vl-convert (Vega itself, no browser): a spec
Vega cannot draw fails here, and the marks in the SVG are counted against the
chart's ``marks``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sidebar_support import build_registry, recorded_from
from sklearn.linear_model import LogisticRegression

import mlops_nb
from mlops_nb import charts
from mlops_nb.charts import display, runs as runs_module
from mlops_nb.store import SqlStore


def drawn(chart: dict) -> str:
    svg = display.svg(chart["spec"])
    assert svg and svg.startswith("<svg"), chart["id"]
    return svg


def symbols(svg: str, mark: str | None = None) -> int:
    """How many items the chart's counted units drew (``counted_marks`` groups; ``mark``: only that Vega mark type)."""
    count = 0
    for group in re.finditer(r'<g class="mark-([a-z]+) role-mark (counted\d*)_marks"[^>]*>(.*?)</g>', svg, re.S):
        if mark is None or group.group(1) == mark:
            count += len(re.findall(r"<path", group.group(3)))
    return count


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    root = tmp_path_factory.mktemp("charts")
    built = build_registry(root)
    yield built
    built["store"].close()


def test_runs_charts_follow_the_filter_and_draw_one_mark_per_run(reg):
    store = reg["store"]
    answer = charts.runs_charts(store)
    assert answer["total"] == 4 and answer["x"] == "C" and answer["y"] == "accuracy"  # the user's param before clf.C
    assert {"C", "clf.C"} <= set(answer["axes"]["params"]) and answer["axes"]["metrics"] == ["accuracy"]
    scatter, parallel, bars = (charts_by_id(answer)[k] for k in ("scatter", "parallel", "bars"))
    rows = scatter["spec"]["data"]["values"]
    assert scatter["marks"] == len(rows) == 2 and {r["run_id"] for r in rows} == {reg["runs"]["train-C0.05"], reg["runs"]["train-C1.0"]}
    assert symbols(drawn(scatter), "symbol") == 2
    best = max(rows, key=lambda r: r["y"])
    assert best["best"] and sum(r["best"] for r in rows) == 1
    assert bars["marks"] == 3 and symbols(drawn(bars), "rect") == 3  # every run with accuracy, best first
    first = bars["spec"]["data"]["values"][0]
    assert first["best"] and first["value"] == best["y"]
    assert parallel["marks"] == 2 and symbols(drawn(parallel), "line") == 2  # the runs where a param varies
    only = charts.runs_charts(store, filter="metrics.accuracy > 0.95")
    assert only["total"] == 1 and charts_by_id(only)["scatter"]["marks"] == 1
    none = charts.runs_charts(store, filter="metrics.accuracy > 2")
    assert none["total"] == 0 and none["charts"][0]["marks"] == 0 and "no runs match" in none["charts"][0]["note"]


def charts_by_id(answer: dict) -> dict[str, dict]:
    return {c["id"]: c for c in answer["charts"]}


def test_many_runs_are_sampled_in_sql_and_keep_the_best(tmp_path, monkeypatch):
    store = SqlStore(f"sqlite:///{tmp_path / 'r.db'}", str(tmp_path / "a"))
    rng = np.random.default_rng(1)
    scores = {}
    for i in range(240):
        with mlops_nb.track(name="sweep", store=store) as run:
            mlops_nb.log_param("C", float(10 ** rng.uniform(-3, 2)))
            mlops_nb.log_param("kernel", ["rbf", "linear"][i % 2])
            scores[run.id] = float(rng.uniform(0.5, 0.99))
            mlops_nb.log_metric("accuracy", scores[run.id])
            for step in range(3):
                mlops_nb.log_metric("cv", scores[run.id] - 0.01 * step, step=step)
    monkeypatch.setattr(runs_module, "SAMPLE", 60)
    monkeypatch.setattr(runs_module, "LINES", 40)
    answer = charts.runs_charts(store)
    by_id = charts_by_id(answer)
    assert answer["total"] == 240 and answer["shown"] <= 60 + runs_module.BARS
    best = max(scores, key=scores.get)
    scatter = by_id["scatter"]
    assert "of 240 runs" in scatter["note"] and any(r["best"] and r["run_id"] == best for r in scatter["spec"]["data"]["values"])
    assert scatter["spec"]["encoding"]["x"]["scale"] == {"type": "log"}  # C spans five decades
    top = sorted(scores.values(), reverse=True)[: runs_module.BARS]
    assert [r["value"] for r in by_id["bars"]["spec"]["data"]["values"]] == top  # the true best, ranked in SQL
    assert by_id["parallel"]["marks"] == 40 and symbols(drawn(by_id["parallel"]), "line") == 40
    steps = by_id["steps"]
    assert steps["marks"] == runs_module.STEP_RUNS and symbols(drawn(steps), "line") == runs_module.STEP_RUNS
    picked = charts.runs_charts(store, x="kernel", y="cv")
    assert charts_by_id(picked)["scatter"]["spec"]["encoding"]["x"]["type"] == "nominal"


def test_run_detail_history_and_baseline(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path / 'r.db'}", str(tmp_path / "a"))
    ids = []
    for C in (0.1, 1.0):
        with mlops_nb.track(name="train", store=store) as run:
            mlops_nb.log_param("C", C)
            mlops_nb.log_param("penalty", "l2")
            for step, loss in enumerate([0.9, 0.5, 0.3 * C]):
                mlops_nb.log_metric("loss", loss, step=step)
            mlops_nb.log_metric("accuracy", 0.8 + C / 10)
        ids.append(run.id)
    answer = charts.run_charts(store, ids[1])
    assert answer["baseline"] == {"run_id": ids[0], "name": "train", "why": "previous"}
    history = answer["charts"][0]
    assert history["marks"] == 1 and symbols(drawn(history), "line") == 1  # loss has three steps; accuracy one value
    params = {p["name"]: p for p in answer["compare"]["params"]}
    assert params["C"]["changed"] and not params["penalty"]["changed"]
    (accuracy,) = [m for m in answer["compare"]["metrics"] if m["name"] == "accuracy"]
    assert accuracy["delta"] == pytest.approx(0.09)
    chosen = charts.run_charts(store, ids[0], baseline=ids[1])
    assert chosen["baseline"]["why"] == "chosen" and chosen["baseline"]["run_id"] == ids[1]
    with mlops_nb.track(name="prepare", store=store) as prep:
        mlops_nb.log_metric("rows", 60)
    beside = {p["name"]: p for p in charts.run_charts(store, ids[0], baseline=prep.id)["compare"]["params"]}
    assert beside["C"]["only"] == "run" and not any(p["changed"] for p in beside.values())  # absent is not changed


def test_model_trend_alias_timeline_and_badges(reg):
    store = reg["store"]
    mlops_nb.promote("iris", 2, "production", store=store)
    mlops_nb.rollback("iris", "production", store=store)
    answer = charts_by_id(charts.model_charts(store, "iris"))
    assert answer["trend"]["marks"] == 2 and symbols(drawn(answer["trend"]), "symbol") == 2
    spans = answer["aliases"]["spec"]["data"]["values"]
    assert [(s["version"], s["current"]) for s in spans] == [("v1", False), ("v2", False), ("v1", True)]
    assert symbols(drawn(answer["aliases"]), "rect") == 3
    assert charts.badge(2, 6, False) == {"text": "2 of 6 columns drifted", "level": "warn"}
    assert charts.badge(0, 6, False)["text"] == "no drift"
    assert charts.badge(4, 6, True) == {"text": "drift detected (4 of 6 columns drifted)", "level": "bad"}


def test_drift_histograms_and_drift_over_time(reg):
    store = reg["store"]
    answer = charts.drift_charts(store, check=reg["drift_id"])
    assert answer["badge"] == {"text": "drift detected (1 of 2 columns drifted)", "level": "bad"}
    hist, timeline = answer["charts"]
    assert hist["spec"]["vconcat"][0]["hconcat"][0]["title"]["text"] == "amount: DRIFT"
    assert symbols(drawn(hist)) == hist["marks"] > 20  # shared bins of both sides, and a bar per category and side
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"amount": rng.normal(0, 1, 500), "channel": rng.choice(["web", "shop"], 500)})
    mlops_nb.drift(frame, frame.sample(frac=1.0, random_state=1)).save(store)
    newest = charts.drift_charts(store)
    assert newest["badge"]["text"] == "no drift" and newest["charts"][1]["marks"] >= 1
    with pytest.raises(mlops_nb.errors.NotFoundError, match="No drift check 999"):
        charts.drift_charts(store, check=999)


def test_lineage_graph_marks_stale_inputs_and_reaches_aliases(reg):
    store = reg["store"]
    answer = charts.lineage_chart(store, reg["runs"]["train-C0.05"])
    kinds = {n["kind"] for n in answer["nodes"]}
    assert {"data", "run", "model", "registered", "alias"} <= kinds
    features = next(n for n in answer["nodes"] if n["kind"] == "data" and n["label"] == "features")
    assert features["stale"]  # the run's lineage warning names that input
    ids = {n["id"] for n in answer["nodes"]}
    assert all(e["source"] in ids and e["target"] in ids for e in answer["edges"])
    chart = answer["charts"][0]
    assert chart["marks"] == len(answer["nodes"]) and symbols(drawn(chart), "symbol") == len(answer["nodes"])
    by_model = charts.lineage_chart(store, "model:iris/1")
    assert any(n["kind"] == "run" and n["run_id"] == reg["runs"]["train-C0.05"] for n in by_model["nodes"])


def test_pipeline_is_inferred_from_the_notebooks_tracked_cells(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path / 'r.db'}", str(tmp_path / "a"))
    notebook = tmp_path / "flow.ipynb"
    raw = pd.DataFrame({"x": np.arange(60.0), "y": np.arange(60) % 2})
    with recorded_from(notebook):
        with mlops_nb.track(name="clean", inputs={"raw": raw}, store=store) as run:
            clean = raw.assign(x=raw.x / 60)
            run.log_output("clean", clean)
        with mlops_nb.track(name="train", inputs={"clean": clean}, store=store) as run:
            model = LogisticRegression().fit(clean[["x"]], clean.y)
            mlops_nb.log_model(model, "model")
            mlops_nb.log_metric("accuracy", float(model.score(clean[["x"]], clean.y)))
        # the cleaning cell changed and ran again: the training run read the version it replaced
        with mlops_nb.track(name="clean", inputs={"raw": raw}, store=store) as run:
            run.log_output("clean", raw.assign(x=raw.x / 30))
    answer = charts.pipeline_chart(store, [str(notebook)])
    assert answer["cells"] == 2
    label = {n["id"]: (n["kind"], n["label"]) for n in answer["nodes"]}
    edges = {(label[e["source"]], label[e["target"]]) for e in answer["edges"]}
    assert (("data", "raw"), ("cell", "clean")) in edges and (("cell", "clean"), ("data", "clean")) in edges
    assert (("data", "clean"), ("cell", "train")) in edges and (("cell", "train"), ("model", "model")) in edges
    assert any(target[0] == "metric" and target[1].startswith("accuracy=") for _s, target in edges)
    read = [n for n in answer["nodes"] if n["kind"] == "data" and n["label"] == "clean" and n["stale"]]
    assert len(read) == 1  # the old version the training cell read, not the new one
    chart = answer["charts"][0]
    assert symbols(drawn(chart), "symbol") == chart["marks"] == len(answer["nodes"])
    assert charts.pipeline_chart(store, [str(tmp_path / "other.ipynb")])["cells"] == 0


def test_a_chart_displays_with_a_static_fallback(reg):
    chart = charts.runs_charts(reg["store"])["charts"][0]
    bundle = charts.Chart(chart)._repr_mimebundle_()
    assert bundle[display.CHART_MIME] is chart
    assert bundle[display.VEGALITE_MIME]["width"] == display.STATIC_WIDTH
    assert bundle["image/svg+xml"].startswith("<svg") and bundle[display.VEGALITE_MIME]["title"]["text"] == chart["title"]
    assert "image/svg+xml" not in charts.Chart(chart, static=False)._repr_mimebundle_()


def test_every_chart_draws_exactly_the_marks_it_announces(reg):
    store = reg["store"]
    answers = [charts.runs_charts(store), charts.run_charts(store, reg["runs"]["train-C1.0"]), charts.model_charts(store, "iris"),
               charts.drift_charts(store, check=reg["drift_id"]), charts.lineage_chart(store, reg["runs"]["train-C0.05"]),
               charts.pipeline_chart(store, [str(reg["notebook"])])]  # fmt: skip
    seen = 0
    for answer in answers:
        for chart in answer["charts"]:
            if chart["marks"]:
                assert symbols(drawn(chart)) == chart["marks"], chart["id"]
                seen += 1
    assert seen >= 9


def test_a_monitors_drift_is_its_champions_check_on_its_newest_data(reg):
    store = reg["store"]
    rng = np.random.default_rng(5)
    week = pd.DataFrame({"amount": rng.normal(2, 1, 300), "channel": rng.choice(["web", "shop"], 300)})
    base = pd.DataFrame({"amount": rng.normal(0, 1, 300), "channel": rng.choice(["web", "shop"], 300)})
    # what a monitor's check leaves: its champion's drift check on the batch (saved by scoring), and its own row
    report = mlops_nb.drift(base, week)
    report.reference_label = "model:iris:1"
    champion_check = report.save(store)
    mlops_nb.drift(week, week).save(store)  # a later check of the same batch by someone else
    check = store.add_monitor_check({"monitor": "iris-watch", "model": "iris", "version": 1})
    store.update_monitor_check(check, data_digest=report.current_digest, drift_share=0.5, n_drifted=1, decision="ok")
    answer = charts.drift_charts(store, monitor="iris-watch")
    assert answer["check"]["id"] == champion_check and answer["badge"]["text"].startswith("drift detected")
    timeline = answer["charts"][1]
    assert timeline["title"] == "drift over time: monitor iris-watch" and timeline["marks"] == 1
    assert symbols(drawn(timeline)) == 1
