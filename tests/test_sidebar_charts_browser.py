"""The sidebar's charts, end to end: `jupyter lab` on a real registry, driven in Debian's Chromium with Playwright.

Every chart view of the sidebar (This notebook's pipeline, the Runs section's
Charts, a run's tab, a model's charts, a drift check's charts) is drawn from
the server's chart endpoints by vega-embed; each must finish as an SVG holding
as many data marks as the server says it draws (``marks``), the same number
the endpoint answers on its own.  Clicking a scatter point opens that run;
the drift badges say what each check decided; nothing on the page is a broken
image.  Screenshots go to ``build/`` (README's come from there).  Needs
``/usr/bin/chromium``; never a browser downloaded by Playwright.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

from sidebar_support import CHROMIUM, CHROMIUM_ARGS, LAB_TOKEN, add_chart_data, build_registry, lab_api, running_lab, set_theme

SHOTS = Path(__file__).resolve().parents[1] / "build"
SIDEBAR = {"x": 0, "y": 0, "width": 560, "height": 1400}  # the widened sidebar, for the README

playwright_sync = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium: apt-get install -y chromium")

# The data marks in a chart's SVG: the items of the units the server named "counted" ("counted0", "counted1"...
# in a concatenation; Vega puts a unit's name in its marks' class), else of every mark that is not text, a
# rule or a group.  One path per point,
# bar or node; one per line.  {chart id: [marks the server announced, marks drawn]} for a scope.
COUNT = r"""scope => Object.fromEntries([...document.querySelectorAll(scope + ' figure.mlops-chart')].map(fig => {
  const svg = fig.querySelector('.mlops-chart-view svg');
  let drawn = -1;
  if (svg) {
    const marks = [...svg.querySelectorAll('g.role-mark')];
    const named = marks.filter(g => [...g.classList].some(c => /^counted\d*_marks$/.test(c)));
    const groups = named.length ? named : marks.filter(g => !/mark-(text|rule|group)/.test(g.getAttribute('class')));
    drawn = groups.reduce((n, g) => n + g.children.length, 0);
  }
  return [fig.dataset.chart, [Number(fig.dataset.marks), drawn]];
}))"""
SETTLED = """scope => {
  const figs = [...document.querySelectorAll(scope + ' figure.mlops-chart')];
  return figs.length > 0 && figs.every(f => f.dataset.state !== 'drawing');
}"""
BROKEN = """() => [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)
  .concat([...document.querySelectorAll('figure.mlops-chart[data-state=error]')].map(f => 'chart ' + f.dataset.chart + ': ' + f.innerText))"""


@pytest.fixture
def lab(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    built = build_registry(root)
    built.update(add_chart_data(root, built["store"]))
    try:
        with running_lab(tmp_path, root) as base:
            yield {"base": base, "root": root, **built}
    finally:
        built["store"].close()


@contextlib.contextmanager
def _sidebar(base: str, *, height: int = 1400):
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": height})
            _open(page, base)
            yield page, page.locator("#mlops-nb-sidebar")
        finally:
            browser.close()


def _open(page, base: str) -> None:
    page.goto(f"{base}/lab/tree/analysis.ipynb?token={LAB_TOKEN}")
    page.locator("li[data-id='mlops-nb-sidebar']").click(timeout=60_000)
    page.locator("#mlops-nb-sidebar .mlops-section-notebook .mlops-run").first.wait_for(timeout=60_000)
    # A wider sidebar (its edge dragged as a user would) before any chart takes its container's width.
    box = page.locator("#jp-left-stack").bounding_box()
    page.mouse.move(box["x"] + box["width"] + 2, box["y"] + 300)
    page.mouse.down()
    page.mouse.move(SIDEBAR["width"] - 8, box["y"] + 300, steps=5)
    page.mouse.up()


def _drawn(page, scope: str) -> dict[str, list[int]]:
    """Wait until every chart under ``scope`` is drawn (or failed); {id: [announced, drawn]}."""
    page.wait_for_function(SETTLED, arg=scope, timeout=60_000)
    return page.evaluate(COUNT, scope)


def _expect(page, scope: str, answer: dict) -> dict[str, list[int]]:
    """The charts under ``scope`` are the endpoint's, each drawn with as many marks as it announces."""
    drawn = _drawn(page, scope)
    assert list(drawn) == [c["id"] for c in answer["charts"]]
    assert {k: v[0] for k, v in drawn.items()} == {c["id"]: c["marks"] for c in answer["charts"]}
    assert all(announced == count for announced, count in drawn.values()), drawn
    return drawn


def test_every_sidebar_chart_draws_its_marks_and_a_point_opens_its_run(lab):
    SHOTS.mkdir(exist_ok=True)
    base, store, runs = lab["base"], lab["store"], lab["runs"]
    with _sidebar(base) as (page, sidebar):
        # This notebook: the pipeline its tracked cells form, above its runs.
        pipeline = lab_api(base, "charts/pipeline", notebook="analysis.ipynb")
        drawn = _expect(page, "#mlops-nb-sidebar .mlops-section-notebook", pipeline)
        assert drawn["pipeline"][1] == len(pipeline["nodes"]) > 3

        # Runs as charts: scatter, parallel coordinates, bars and the stepped cv, for every run.
        sidebar.locator(".mlops-view-charts").click()
        scope = "#mlops-nb-sidebar .mlops-section-runs"
        everything = lab_api(base, "charts/runs")
        drawn = _expect(page, scope, everything)
        assert set(drawn) == {"scatter", "parallel", "bars", "steps"}
        assert drawn["steps"][1] == 2  # the two cv runs, one line each
        pickers = {axis: sidebar.locator(f".mlops-axis-{axis} option").all_inner_texts() for axis in ("x", "y", "metric")}
        assert pickers["x"] == everything["axes"]["params"] and "C" in pickers["x"] and "folds" in pickers["x"]
        assert pickers["y"] == everything["axes"]["metrics"] and "accuracy" in pickers["y"]
        assert sidebar.locator(".mlops-axis-y").input_value() == everything["y"]
        page.screenshot(path=str(SHOTS / "sidebar-runs-charts.png"), clip=SIDEBAR)

        # The charts follow the filter: fewer points, the same number the endpoint draws for it.
        sidebar.locator(".mlops-filter").fill("params.C > 0.5")
        sidebar.locator(".mlops-filter").press("Enter")
        filtered = lab_api(base, "charts/runs", filter="params.C > 0.5", x=everything["x"], y=everything["y"], metric=everything["metric"])
        page.wait_for_function(
            "n => document.querySelector('#mlops-nb-sidebar .mlops-section-runs figure[data-chart=scatter]')?.dataset.marks === String(n)",
            arg=filtered["charts"][0]["marks"], timeout=30_000,
        )  # fmt: skip
        drawn = _expect(page, scope, filtered)
        assert 0 < drawn["scatter"][1] < everything["charts"][0]["marks"]
        assert filtered["total"] == 3  # train-C1.0, cv-0 (C=10), cv-1 (C=20)

        # Clicking a point opens that run's tab.
        point = sidebar.locator("figure[data-chart=scatter] g.counted_marks > *").first
        label = point.get_attribute("aria-label") or ""
        short = re.search(r"\b([0-9a-f]{8})\b", label)
        assert short, label
        point.click()
        tab = page.locator(f".mlops-run-details[id^='mlops-run-{short.group(1)}']")
        tab.locator("h3", has_text="Lineage").wait_for(timeout=30_000)
        run_id = tab.get_attribute("id").removeprefix("mlops-run-")
        assert run_id in {runs["train-C1.0"], *lab["cv_runs"]}
        page.locator(".lm-TabBar-tab.lm-mod-current .lm-TabBar-tabCloseIcon").click()
        tab.wait_for(state="detached")
        sidebar.locator(".mlops-filter").fill("")
        sidebar.locator(".mlops-filter").press("Enter")
        sidebar.locator(".mlops-view-list").click()

        # A run's tab: its lineage as a graph, compared with the run it was derived from.
        trained = runs["train-C1.0"]
        sidebar.locator(f".mlops-section-notebook .mlops-run[data-run-id='{trained}']").click()
        details = f".mlops-run-details[id='mlops-run-{trained}']"
        lineage = lab_api(base, "charts/lineage", ref=trained)
        drawn = _expect(page, f"{details} .mlops-lineage-graph", lineage)
        assert drawn["lineage"][1] == len(lineage["nodes"]) >= 3  # features -> train-C1.0 -> its model at least
        parent = page.locator(f"{details} .mlops-compare", has_text="the run it was derived from")
        parent.wait_for(timeout=30_000)
        assert runs["prepare"][:8] in parent.inner_text()
        page.locator(f"{details} h3", has_text="Lineage").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "sidebar-run-lineage.png"))
        # Nodes are clickable: a registered version shows its model in the sidebar, a run opens its tab.
        page.locator(f"{details} .mlops-lineage-graph g.counted_marks > [aria-label*='iris v2']").click()
        sidebar.locator(".mlops-model[data-model='iris'] .mlops-version[data-version='2'].mlops-flash").wait_for(timeout=10_000)
        page.locator(f"{details} .mlops-lineage-graph g.counted_marks > [aria-label*='label: prepare']").click()
        page.locator(f".mlops-run-details[id='mlops-run-{runs['prepare']}'] h3", has_text="Lineage").wait_for(timeout=30_000)

        # The metric history of a stepped run, compared with a chosen baseline.
        cv_run = lab["cv_runs"][1]
        sidebar.locator(f".mlops-section-notebook .mlops-run[data-run-id='{cv_run}']").click()
        details = f".mlops-run-details[id='mlops-run-{cv_run}']"
        history = lab_api(base, f"charts/runs/{cv_run}")
        _expect(page, f"{details} .mlops-run-history", history)
        assert [c["id"] for c in history["charts"]] == ["history"]
        page.locator(f"{details} .mlops-baseline-input").fill(lab["cv_runs"][0])
        page.locator(f"{details} .mlops-baseline-input").press("Enter")
        page.locator(f"{details} .mlops-compare", has_text="chosen baseline").wait_for(timeout=30_000)
        changed = page.locator(f"{details} .mlops-compare-table tr.mlops-row-changed th").all_inner_texts()
        assert "C" in changed and "folds" not in changed
        page.screenshot(path=str(SHOTS / "sidebar-run-charts.png"))

        # Models: a model's trend and alias history.
        model = sidebar.locator(".mlops-model[data-model='iris']")
        model.locator(".mlops-model-charts-toggle").click()
        answer = lab_api(base, "charts/models/iris")
        drawn = _expect(page, "#mlops-nb-sidebar .mlops-model[data-model='iris'] .mlops-model-charts", answer)
        assert {"trend", "aliases"} <= set(drawn)
        model.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "sidebar-model-charts.png"), clip=SIDEBAR)

        # Drift: each badge says what its check decided; the shifted check's histograms and history.
        checks = {c["id"]: c for c in lab_api(base, "drift", limit="10")["checks"]}
        shown = {int(k): v for k, v in (
            (li.get_attribute("data-check"), li.locator(".mlops-drift-badge").inner_text())
            for li in sidebar.locator(".mlops-section-drift .mlops-check").all())}  # fmt: skip
        assert shown == {i: c["badge"]["text"] for i, c in checks.items()}
        shifted, same = lab["checks"]
        assert shown[shifted] == "1 of 3 columns drifted" and shown[same] == "no drift"
        assert "1 of 2 columns drifted" in shown[lab["drift_id"]]
        for i, c in checks.items():  # never a green badge beside drifted columns
            level = sidebar.locator(f".mlops-check[data-check='{i}'] .mlops-drift-badge").get_attribute("class")
            assert ("mlops-level-ok" in level) == (c["n_drifted"] == 0)
        sidebar.locator(f".mlops-check[data-check='{shifted}'] .mlops-row").click()
        answer = lab_api(base, "charts/drift", check=str(shifted))
        drawn = _expect(page, f"#mlops-nb-sidebar .mlops-check[data-check='{shifted}']", answer)
        assert list(drawn) == ["histograms", "timeline"] and drawn["timeline"][1] == 2
        sidebar.locator(f".mlops-check[data-check='{shifted}']").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "sidebar-drift-charts.png"), clip=SIDEBAR)

        assert page.evaluate(BROKEN) == []
        assert sidebar.locator(".mlops-error").count() == 0

        # Dark theme: the charts' axes take the theme's text colours (read when they are drawn).
        set_theme(base, "JupyterLab Dark")
        _open(page, base)
        page.wait_for_function("document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
        sidebar.locator(".mlops-view-charts").click()
        _expect(page, scope, everything)
        label = page.evaluate("""() => [document.querySelector('#mlops-nb-sidebar figure[data-chart=scatter] g.role-axis-label text')
                                        .getAttribute('fill'), getComputedStyle(document.body).getPropertyValue('--jp-ui-font-color2').trim()]""")
        assert label[0] == label[1] and label[0]
        ink = page.evaluate("""() => [...document.querySelectorAll('#mlops-nb-sidebar figure[data-chart=pipeline] g.mark-text.role-mark text')]
                                 .map(t => t.getAttribute('fill')).concat([getComputedStyle(document.body).getPropertyValue('--jp-ui-font-color1').trim()])""")
        assert len(ink) > 1 and set(ink) == {ink[-1]}  # the graph's node labels too, not the light theme's grey
        page.screenshot(path=str(SHOTS / "sidebar-runs-charts-dark.png"), clip=SIDEBAR)
        assert page.evaluate(BROKEN) == []


def _executed_notebook(root: Path) -> Path:
    """``root/charts.ipynb`` run in a real kernel: it displays the runs charts and a run's lineage (mlops_nb.charts)."""
    import nbformat
    from nbclient import NotebookClient

    from sidebar_support import KERNEL

    code = (f"import os\nos.environ['MLOPS_NB_HOME'] = {str(root / '.mlops')!r}\n"
            "from mlops_nb import charts\ncharts.show_runs()")  # fmt: skip
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)], metadata=KERNEL)
    NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(root)}}).execute()
    path = root / "charts.ipynb"
    nbformat.write(nb, path)
    return path


def test_charts_displayed_in_a_notebook_are_drawn_by_the_sidebar_renderer_and_open_runs(lab):
    base, runs = lab["base"], lab["runs"]
    path = _executed_notebook(lab["root"])
    import nbformat

    outputs = [o for o in nbformat.read(path, as_version=4).cells[0].outputs if o.get("output_type") == "display_data"]
    charts = [o["data"]["application/vnd.mlops-nb.chart+json"] for o in outputs]
    assert [c["id"] for c in charts] == ["scatter", "parallel", "bars", "steps"]
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.goto(f"{base}/lab/tree/charts.ipynb?token={LAB_TOKEN}")
            scope = ".jp-NotebookPanel .jp-OutputArea"
            page.locator(f"{scope} figure.mlops-chart").first.wait_for(timeout=60_000)
            drawn = _expect(page, scope, {"charts": charts})  # an untrusted notebook too: the renderer is safe
            assert all(count > 0 for _, count in drawn.values())
            # The chart renderer was chosen over JupyterLab's Vega-Lite and the static SVG.
            assert page.locator(f"{scope} .jp-RenderedVegaCommon5, {scope} .jp-RenderedSVG").count() == 0
            page.screenshot(path=str(SHOTS / "notebook-runs-charts.png"))
            assert page.evaluate(BROKEN) == []

            # A click on a point of the output opens that run's tab, as in the sidebar.
            point = page.locator(f"{scope} figure[data-chart=scatter] g.counted_marks > *").first
            short = re.search(r"\b([0-9a-f]{8})\b", point.get_attribute("aria-label") or "")
            assert short
            point.click()
            tab = page.locator(f".mlops-run-details[id^='mlops-run-{short.group(1)}']")
            tab.locator("h3", has_text="Lineage").wait_for(timeout=30_000)
            assert tab.get_attribute("id").removeprefix("mlops-run-") in {runs["train-C0.05"], runs["train-C1.0"], *lab["cv_runs"]}
        finally:
            browser.close()
