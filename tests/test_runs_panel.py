"""RunsPanel driven through its widgets, asserting what it shows from a real store."""

from __future__ import annotations

import html
import time
import uuid

import pytest
from IPython.core.error import UsageError

from mlops_nb import config
from mlops_nb.errors import SearchError
from mlops_nb.widgets.runs_panel import RunsPanel


def _record(store, name, *, params, metrics, steps=None, project="default", warnings=None, start=None) -> str:
    run_id = uuid.uuid4().hex
    store.start_run(run_id, project, name=name, start_time=start or time.time())
    rows = [(k, v, None, 0.0) for k, v in metrics.items()]
    rows += [(k, v, i, 0.0) for k, values in (steps or {}).items() for i, v in enumerate(values)]
    store.finish_run(run_id, status="finished", params=params, metrics=rows, duration=0.5, warnings=warnings)
    return run_id


@pytest.fixture
def many(store):
    """120 runs in the default project (newest has the highest i), 3 in another."""
    base = 1_700_000_000.0
    ids = [
        _record(store, f"sweep-{i}", params={"C": i % 4, "solver": "lbfgs", "seed": 0},
                metrics={"accuracy": 0.5 + i / 1000}, start=base + i)
        for i in range(120)
    ]  # fmt: skip
    for i in range(3):
        _record(store, f"elsewhere-{i}", params={"C": 1}, metrics={"accuracy": 0.99}, project="other", start=base + 500 + i)
    return ids


def test_pages_come_from_sql(store, many):
    panel = RunsPanel(page_size=25, store=store)
    assert panel.shown_ids == many[::-1][:25]  # newest first, only this project
    assert "runs 1–25 of 120" in panel.status.value
    assert panel.prev_button.disabled and not panel.next_button.disabled
    panel.next_button.click()
    assert panel.shown_ids == many[::-1][25:50] and "runs 26–50 of 120" in panel.status.value
    for _ in range(4):
        panel.next_button.click()
    assert panel.shown_ids == many[::-1][100:] and panel.next_button.disabled
    panel.prev_button.click()
    assert panel.shown_ids == many[::-1][75:100]
    assert len(panel.df) == 25 and list(panel.df["run_id"]) == panel.shown_ids


def test_compact_columns_show_only_params_that_differ(store, many):
    panel = RunsPanel(page_size=10, store=store)
    table = panel.table.value
    assert "<th>accuracy</th>" in table and "<th>C</th>" in table  # C differs among the shown runs
    assert "<th>solver</th>" not in table and "<th>seed</th>" not in table  # the same in every run
    assert many[-1][:8] in table and many[-1] not in table  # short ids
    assert table.index("<th>duration</th>") < table.index("<th>accuracy</th>") < table.index("<th>C</th>")


def test_filter_box_and_sort(store, many):
    panel = RunsPanel(page_size=10, store=store)
    panel.filter.value = "params.C = 3 and metrics.accuracy > 0.55"
    expected = [many[i] for i in range(119, -1, -1) if i % 4 == 3 and 0.5 + i / 1000 > 0.55]
    assert panel.shown_ids == expected[:10] and f"of {len(expected)}" in panel.status.value
    assert "metrics.accuracy asc" in panel.sort.options
    panel.sort.value = "metrics.accuracy asc"
    assert panel.shown_ids == expected[::-1][:10]
    panel.filter.value = ""
    panel.apply_button.click()
    assert panel.shown_ids == many[:10]  # ascending accuracy = oldest first here


def test_bad_filter_is_shown_in_the_panel(store, many):
    panel = RunsPanel(page_size=10, store=store)
    before = panel.shown_ids
    panel.filter.value = "metrics.accuracy >> 3"
    shown = html.unescape(panel.status.value)
    assert "✗ Expected a value after metrics.accuracy >, got '>'" in shown
    assert panel.error and panel.shown_ids == before  # the last good page stays
    panel.filter.value = "status = 'finished'"
    assert panel.error is None and "runs 1–10 of 120" in panel.status.value
    with pytest.raises(SearchError, match="Unknown run attribute"):
        RunsPanel(filter="colour = 'red'", store=store, strict=True)


def test_compare_selected_runs(store):
    a = _record(store, "a", params={"C": 1, "solver": "lbfgs"}, metrics={"accuracy": 0.9}, steps={"loss": [0.9, 0.4, 0.2]}, start=2e9)
    b = _record(store, "b", params={"C": 10, "solver": "lbfgs"}, metrics={"accuracy": 0.8}, steps={"loss": [1.0, 0.7, 0.6]})
    panel = RunsPanel(store=store)
    panel.selection.value = (a,)
    panel.compare_button.click()
    assert "Select two or more runs" in panel.comparison.value
    panel.selection.value = (a, b)
    panel.compare_button.click()
    shown = panel.comparison.value
    assert "<th>param C</th><td class='diff'>1</td><td class='diff'>10</td>" in shown
    assert "<th>param solver</th><td class=''>lbfgs</td><td class=''>lbfgs</td>" in shown
    assert "<th>metric accuracy</th><td class='diff'>0.9</td><td class='diff'>0.8</td>" in shown
    bars, lines = panel.comparison_charts
    assert bars["id"] == "compare" and bars["marks"] == 4  # accuracy and last loss of a and of b
    assert lines["marks"] == 2 and {p["step"] for p in lines["spec"]["data"]["values"]} == {0, 1, 2}
    shown = [o["data"] for o in panel.comparison_out.outputs]
    assert [d["application/vnd.mlops-nb.chart+json"]["id"] for d in shown] == ["compare", "steps"]
    assert all("application/vnd.vegalite.v5+json" in d for d in shown)


def test_charts_follow_the_filter_and_the_axes(store):
    for C, acc in ((0.1, 0.7), (1.0, 0.9), (10.0, 0.8)):
        _record(store, f"C{C}", params={"C": C, "kernel": "rbf" if C < 5 else "linear"}, metrics={"accuracy": acc, "f1": acc - 0.1})
    panel = RunsPanel(store=store)
    ids = [c["id"] for c in panel.charts]
    assert ids == ["scatter", "parallel", "bars"] and panel.x_axis.value == "C" and panel.y_axis.value == "accuracy"
    assert len(panel.charts_out.outputs) == 3 and "image/png" not in str(panel.charts_out.outputs)  # no broken picture
    assert panel.charts[0]["marks"] == 3
    panel.filter.value = "metrics.accuracy >= 0.8"
    assert panel.charts[0]["marks"] == 2
    panel.x_axis.value = "kernel"
    panel.y_axis.value = "f1"
    assert panel.charts[0]["title"] == "f1 vs kernel" and panel.charts[0]["spec"]["encoding"]["x"]["type"] == "nominal"


def test_warning_marker(store):
    warned = _record(store, "stale", params={}, metrics={"accuracy": 0.7},
                     warnings=[{"kind": "stale", "name": "df", "message": "df changed after it was read"}])  # fmt: skip
    _record(store, "clean", params={}, metrics={"accuracy": 0.8})
    panel = RunsPanel(store=store)
    assert "⚠" in panel.table.value and "df changed after it was read" in panel.table.value
    labels = dict((value, label) for label, value in panel.selection.options)
    assert labels[warned].endswith("⚠") and sum("⚠" in label for label in labels.values()) == 1


def test_html_fallback_in_the_mimebundle(store, many):
    panel = RunsPanel(page_size=5, store=store)
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "<table>" in bundle["text/html"] and many[-1][:8] in bundle["text/html"]
    assert bundle["text/plain"].startswith("RunsPanel(5 of 120 runs shown")


def test_runs_magic_shows_the_panel(shell, store, many):
    panel = shell.run_line_magic("mlops", "runs --last 7 --order-by 'metrics.accuracy desc'")
    assert isinstance(panel, RunsPanel) and panel.shown_ids == many[::-1][:7]
    assert len(panel.df) == 7
    only = shell.run_line_magic("mlops", "runs --name sweep-3")
    assert [r["name"] for r in only.page] == ["sweep-3"]
    filtered = shell.run_line_magic("mlops", "runs --filter \"params.C = 2\" --last 100")
    assert filtered.total == 30
    everything = shell.run_line_magic("mlops", "runs --all --last 200")
    assert everything.total == 123
    config.init(project="other")
    assert shell.run_line_magic("mlops", "runs").total == 3  # the current project by default
    with pytest.raises(UsageError, match="Unknown operator"):
        shell.run_line_magic("mlops", "runs --filter 'metrics.accuracy between 1'")


def test_runs_panel_in_a_real_kernel(tmp_path, kernel_env, store):
    """%mlops runs in a notebook: a widget view with the static HTML beside it; a bad filter is one line."""
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    cells = [
        "%load_ext mlops_nb\n%mlops init --project nb",
        "%%mlops track --name first --tag owner=ana\naccuracy = 0.91",
        "%%mlops track --name second --tag owner=bob\naccuracy = 0.72",
        "%mlops runs --filter \"tags.owner = 'ana'\"",
        "%mlops runs --filter 'metrics.accuracy >'",
    ]
    nb = new_notebook(cells=[new_code_cell(c) for c in cells],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})  # fmt: skip
    client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(tmp_path)}})
    client.km_kwargs = {"env": kernel_env}
    client.execute(env=kernel_env)
    (shown,) = [o for o in nb.cells[3].outputs if o["output_type"] == "execute_result"]
    assert "application/vnd.jupyter.widget-view+json" in shown["data"]
    static = shown["data"]["text/html"]
    assert "first" in static and "second" not in static and "runs 1–1 of 1" in static
    (first,) = [r for r in store.list_runs() if r["name"] == "first"]
    assert first["id"][:8] in static and first["project"] == "nb"
    error = "".join(o.get("text", "") for o in nb.cells[4].outputs if o["output_type"] == "stream")
    assert error.startswith("UsageError: The filter ends too early") and not [o for o in nb.cells[4].outputs if o["output_type"] == "error"]


def test_panel_says_when_local_records_are_not_in_the_registry_yet(store):
    from mlops_nb.tracking import spool

    from sidebar_support import spooled_run

    _record(store, "written", params={}, metrics={"accuracy": 0.8})
    run_id = spooled_run(store, "offline", reason="connection refused (test)")
    panel = RunsPanel(store=store)
    note = html.unescape(panel.spool_note.value)
    assert "1 local record(s) of 1 run(s) are not in the registry yet (registry unreachable: connection refused (test))" in note
    assert panel.spool_note.layout.display is None and note in html.unescape(panel.static_html())
    assert run_id not in panel.shown_ids
    assert spool.replay(store.url) == (1, None)
    panel.apply_button.click()  # any reload asks again
    assert panel.spool_note.value == "" and panel.spool_note.layout.display == "none"
    assert run_id in panel.shown_ids and "not in the registry" not in panel.static_html()
