"""DriftPanel widget, static HTML, and the %mlops drift magic in a real IPython shell."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from mlops_nb.drift import drift
from mlops_nb.drift.magic import drift_command
from mlops_nb.widgets.drift_panel import DriftPanel


@pytest.fixture(scope="module")
def report():
    rng = np.random.default_rng(21)
    n = 3000
    ref = pd.DataFrame({
        "age": rng.normal(40, 10, n), "city": rng.choice(["Paris", "Lyon", "Nice"], n),
        "score": rng.uniform(size=n), "when": pd.date_range("2024-01-01", periods=n, freq="h"),
        "vip": rng.random(n) < 0.1,
    })  # fmt: skip
    cur = ref.copy()
    cur["age"] = rng.normal(45, 10, n)
    cur["city"] = rng.choice(["Paris", "Lyon", "Nice", "Lille"], n)
    cur["when"] = cur["when"] + pd.Timedelta(days=60)
    return drift(ref, cur)


def test_panel_builds_filters_sorts_and_plots(report):
    panel = DriftPanel(report)
    assert "3 of 5 columns drifted" in panel.header.value
    assert panel.visible_columns[:3] == sorted(panel.visible_columns[:3], key=lambda c: not report[c]["drifted"])
    panel.set_drifted_only(True)
    assert sorted(panel.visible_columns) == ["age", "city", "when"]
    assert "<b>score</b>" not in panel.table.value and "<b>age</b>" in panel.table.value
    panel.sort_by("name")
    assert panel.visible_columns == ["age", "city", "when"]
    panel.sort_by("name", descending=True)
    assert panel.visible_columns == ["when", "city", "age"]
    assert panel.descending.button_style == "info" and panel.drifted_only.button_style == "info"  # look pressed
    panel.sort_by("column", descending=True)  # former option name still accepted
    assert panel.visible_columns == ["when", "city", "age"] and panel.sort_key.value == "name"
    panel.select("city")
    city = panel.chart
    assert city["title"] == "city: reference vs current" and city["marks"] >= 4  # reference and current per value
    (shown,) = panel.chart_out.outputs
    assert shown["data"]["application/vnd.mlops-nb.chart+json"] is city and "application/vnd.vegalite.v5+json" in shown["data"]
    panel.select("age")
    assert panel.chart["title"].startswith("age") and panel.chart["spec"]["encoding"]["x2"] == {"field": "hi"}
    from mlops_nb.charts.display import svg

    drawn = svg(panel.chart["spec"])  # Vega draws it: one rect per bin and side
    assert drawn.count("<path") >= panel.chart["marks"] and 'class="mark-rect role-mark counted_marks"' in drawn
    panel.set_drifted_only(False)
    assert len(panel.visible_columns) == 5 and panel.drifted_only.button_style == ""
    panel.sort_by("column order")
    assert panel.visible_columns == ["age", "city", "score", "when", "vip"]
    with pytest.raises(ValueError, match="Unknown sort key"):
        panel.sort_by("nonsense")


def test_most_drifted_first_is_one_order_across_tests(report):
    from mlops_nb.drift.render import strength

    panel = DriftPanel(report)
    assert panel.sort_key.value == "most drifted first"
    rows = [report[c] for c in panel.visible_columns]
    flags = [r["drifted"] for r in rows]
    assert flags == sorted(flags, reverse=True)
    drifted = [strength(r) for r in rows if r["drifted"]]
    assert drifted == sorted(drifted, reverse=True) and all(s >= 1 for s in drifted)
    # p-values and distances on one scale: past the threshold means strength >= 1
    assert strength({"score": 0.01, "threshold": 0.05, "test": "ks"}) > 1 > strength(
        {"score": 0.2, "threshold": 0.05, "test": "ks"})  # fmt: skip
    assert strength({"score": 0.3, "threshold": 0.1, "test": "wasserstein"}) == pytest.approx(3.0)
    assert [c for _, c in panel.column.options] == panel.visible_columns  # the plot list follows the table


def test_panel_layout_legend_and_chart_near_the_top(report):
    panel = DriftPanel(report)
    assert "reference" in panel.header.value and "#4c72b0" in panel.header.value and "#dd8452" in panel.header.value
    header, controls, plot_row, table = panel.widget.children
    assert table is panel.table and panel.chart_out in plot_row.children[1].children
    assert panel.column in plot_row.children[0].children  # the column chooser sits beside the chart, above the table
    assert panel.table.layout.overflow == "auto"
    assert "max-height:420px" in panel.table.value and "overflow:auto" in panel.table.value
    assert "line-height:1.35" in panel.table.value and "white-space:nowrap" in panel.table.value
    assert "Save Widget State Automatically" in DriftPanel.__doc__


def test_wording_of_scores_and_types():
    from mlops_nb.drift.render import fmt_p, score_text, threshold_text

    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(size=400), "target": rng.integers(0, 2, 400)})
    cur = pd.DataFrame({"x": rng.normal(3, size=400), "target": np.ones(400, dtype=int)})
    rep = drift(ref, cur)
    assert rep["x"]["p_value"] < 1e-16  # the full value stays in the data
    html = DriftPanel(rep).table.value
    assert "p-value / distance" in html and "p &lt; 1e-16" in html and "≤ 0.05" in html
    assert rep["target"]["type"] == "numerical" and rep["target"]["test"] == "ztest"
    assert "numerical (2 values)" in html  # tested and drawn as two values
    assert fmt_p(0.0123) == "0.0123" and fmt_p(3e-5) == "3.0e-05"
    assert score_text({"score": 0.234, "test": "wasserstein"}) == "dist = 0.234"
    assert threshold_text({"threshold": 0.1, "test": "wasserstein"}) == "≥ 0.1"
    title = rep.plot("x").axes[0].get_title()
    assert title.startswith("x: DRIFT") and "KS p-value = " in title and "drift if ≤ 0.05" in title
    assert rep.plot("target").axes[0].get_xlabel() == "numerical (2 values)"
    # empty columns are left out: no missing values, no unseen categories, no notes
    assert "missing ref → cur" not in html and ">unseen<" not in html and ">note<" not in html
    cur.loc[:9, "x"] = np.nan
    html = drift(ref, cur)._repr_html_()
    assert "missing ref → cur" in html and "0.0% → 2.5%" in html


def test_table_shows_coloured_status(report):
    html = DriftPanel(report).table.value
    assert html.count("#c0392b") >= 3  # red badges for drifted columns
    assert "#2e7d32" in html  # green for ok
    assert "<svg" in html  # aggregated mini histograms


def test_histograms_are_aggregated_only(report):
    for name, hist in report.histograms.items():
        assert len(hist["ref"]) <= 31 and len(hist["cur"]) <= 31, name
    assert report.histograms["city"]["kind"] == "values" and "Lille" in report.histograms["city"]["labels"]
    assert report.histograms["age"]["kind"] == "bins" and len(report.histograms["age"]["edges"]) == 31
    assert report.histograms["when"]["datetime"] is True
    fig = report.plot("when")
    assert fig.axes and fig.axes[0].get_title().startswith("when: DRIFT")


def test_static_html_and_mimebundle(report):
    html = report._repr_html_()
    assert html.startswith('<div class="mlops-drift-report">') and "<script" not in html
    assert "Dataset drift detected" in html and len(html) < 60_000
    bundle = DriftPanel(report)._repr_mimebundle_()
    assert bundle["text/html"] == html
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "DriftReport" in bundle["text/plain"]


def test_panel_with_skipped_column():
    rep = drift(pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0]}),
                pd.DataFrame({"a": [np.nan] * 3, "b": [1.0, 2.0, 2.0]}))  # fmt: skip
    panel = DriftPanel(rep).select("a")
    assert panel.chart is None and panel.chart_out.outputs == () and "no current values" in panel.message.value


# ----------------------------------------------------------------- the magic


@pytest.fixture
def drift_shell(mlops_home):
    sh = InteractiveShell.instance()
    rng = np.random.default_rng(22)
    sh.user_ns["ref_df"] = pd.DataFrame({"a": rng.normal(size=500), "b": rng.choice(list("xy"), 500)})
    sh.user_ns["cur_df"] = pd.DataFrame({"a": rng.normal(1, size=500), "b": rng.choice(list("xy"), 500)})
    yield sh
    for name in ("ref_df", "cur_df"):
        sh.user_ns.pop(name, None)


def test_drift_command_returns_panel(drift_shell):
    shell = drift_shell
    panel = drift_command(shell, "ref_df cur_df")
    assert isinstance(panel, DriftPanel)
    assert panel.report["a"]["drifted"] is True and panel.report.reference_label == "ref_df"
    panel = drift_command(shell, "ref_df cur_df --columns a --method a=psi --threshold 0.2")
    assert [r["column"] for r in panel.report.rows] == ["a"]
    assert panel.report["a"]["test"] == "psi" and panel.report["a"]["threshold"] == 0.2
    panel = drift_command(shell, "ref_df cur_df[cur_df.a>0]")
    assert panel.report.current_rows < 500


@pytest.mark.parametrize(
    "line,message",
    [
        ("ref_df", "the following arguments are required"),
        ("ref_df missing_df", "'missing_df' is not a variable"),
        ("nothere cur_df", "or run:RUN_ID"),
        ("ref_df cur_df --threshold abc", "invalid float value"),
        ("ref_df cur_df --method nope", "Unknown drift test 'nope'"),
        ("ref_df cur_df --columns a,zz", "not in the reference: ['zz']"),
        ("ref_df cur_df --method a=", "--method expects"),
    ],
)
def test_drift_command_usage_errors_are_one_line(drift_shell, line, message):
    shell = drift_shell
    with pytest.raises(UsageError) as err:
        drift_command(shell, line)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_mlops_drift_through_the_extension(drift_shell):
    """%mlops drift via the %mlops dispatcher of the loaded extension."""
    shell = drift_shell
    shell.run_line_magic("load_ext", "mlops_nb")
    panel = shell.run_line_magic("mlops", "drift ref_df cur_df --columns a")
    assert isinstance(panel, DriftPanel) and panel.report["a"]["drifted"] is True
    with pytest.raises(UsageError, match="not a variable"):
        shell.run_line_magic("mlops", "drift ref_df nothing")
    shell.run_line_magic("unload_ext", "mlops_nb")
