"""Time to first render of the sidebar's runs charts on a 10,000-run registry, in Chromium.

JupyterLab (this checkout's sidebar) runs over a registry of 10,000 runs (10 params and 5
metrics each, 200 of them with a 5-step ``cv``, written in bulk into our tables as
bench_search does, cached in ``build/bench-sidebar-charts/``).  In Debian's Chromium the
MLOps sidebar is opened, then the clock runs in the page from the click on the Runs
section's "Charts" until every chart (scatter, parallel coordinates, bars, steps) is an
SVG: the server's answer (sampled and ranked in SQL), vega-embed (fetched and warmed up
in the background when the sidebar opened), compiling and drawing; median of three fresh
pages.  Then a change of the y axis (a new answer to draw), median of six.  Target: <= 1 s both.

There is no anchor tool here: MLflow's UI draws its charts from runs its browser page has
already loaded (100 at a time), so the figures are absolute, against the target.

Run: ``python benchmarks/bench_sidebar_charts.py`` (``--runs N`` for another size).
Needs ``/usr/bin/chromium`` and Playwright for Python (as the browser tests).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _results
from _anchor_env import ROOT, ensure_ours

ensure_ours()
sys.path.insert(0, str(ROOT / "tests"))

CACHE = ROOT / "build" / "bench-sidebar-charts"
TARGET_S = 1.0
AXIS_CHANGES = 6
FIRST_RENDERS = 3
STEPPED = 200  # runs with a stepped cv metric: the steps chart draws the newest of them

# In the page: click, then wait for every runs chart to be drawn; milliseconds from the click.
MEASURE = """async ([selector, prev]) => {
  const scope = '#mlops-nb-sidebar .mlops-section-runs';
  const t0 = performance.now();
  const el = document.querySelector(selector);
  if (el.tagName === 'SELECT') {
    el.value = [...el.options].map(o => o.value).find(v => v && v !== el.value);
    el.dispatchEvent(new Event('change'));
  } else {
    el.click();
  }
  return await new Promise((resolve, reject) => {
    const check = () => {
      const figs = [...document.querySelectorAll(scope + ' figure.mlops-chart')];
      const fresh = figs.length && figs[0] !== prev && !figs.some(f => f.dataset.state === 'drawing');
      if (fresh && figs.every(f => f.querySelector('svg'))) {
        window.__lastFirst = figs[0];
        const answer = performance.getEntriesByType('resource').filter(e => e.name.includes('/mlops-nb/api/charts/runs')).pop();
        resolve({ms: performance.now() - t0, fetch: answer ? answer.responseEnd - answer.startTime : null,
                 charts: figs.map(f => [f.dataset.chart, Number(f.dataset.marks)]),
                 errors: figs.filter(f => f.dataset.state === 'error').length});
      } else if (performance.now() - t0 > 60000) {
        reject(new Error('charts not drawn in 60 s'));
      } else {
        requestAnimationFrame(check);
      }
    };
    check();
  });
}"""


def registry(root: Path, n: int) -> None:
    """``root/.mlops/registry.db`` with ``n`` runs (cached), 200 of them with a stepped ``cv``."""
    from bench_search import synthetic_runs

    from mlops_nb.store import SqlStore
    from mlops_nb.store import schema as t
    from mlops_nb.store.engine import write_transaction
    from mlops_nb.store.params import PARAM_FIELDS, param_columns

    home = root / ".mlops"
    path = home / "registry.db"
    if path.exists():
        return
    home.mkdir(parents=True)
    runs = synthetic_runs(n)
    print(f"[bench] writing {n:,} runs into {path} (first run only)", flush=True)
    store = SqlStore(f"sqlite:///{path}", str(home / "artifacts"))
    project = store.project_id("default")
    with write_transaction(store.engine) as conn:
        conn.execute(t.runs.insert(), [
            {"id": r["id"], "project_id": project, "name": f"run-{i}", "status": r["status"], "start_time": r["start"],
             "end_time": r["start"] + 1, "duration": 1.0, "user": "bench"} for i, r in enumerate(runs)
        ])  # fmt: skip
        conn.execute(t.params.insert(), [{"run_id": r["id"], "key": k, **dict(zip(PARAM_FIELDS, param_columns(v)))} for r in runs for k, v in r["params"].items()])
        latest = [{"run_id": r["id"], "key": k, "value": v, "step": None} for r in runs for k, v in r["metrics"].items()]
        steps = [{"run_id": r["id"], "key": "cv", "value": r["metrics"]["accuracy"] - 0.01 * s, "step": s}
                 for r in runs[-STEPPED:] for s in range(1, 6)]  # fmt: skip
        conn.execute(t.metrics.insert(), [{**m, "timestamp": 1.7e9} for m in latest + steps])
        conn.execute(t.latest_metrics.insert(), latest + [{**s, "step": 5} for s in steps if s["step"] == 5])
    with store.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    store.close()


def server_ms(base: str, repeats: int = 5) -> float:
    """Median time of the bare ``charts/runs`` answer (no browser), for the detail column."""
    from sidebar_support import lab_api

    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        lab_api(base, "charts/runs")
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from sidebar_support import CHROMIUM, CHROMIUM_ARGS, LAB_TOKEN, running_lab

    if not Path(CHROMIUM).exists():
        raise SystemExit(f"bench_sidebar_charts needs Debian's chromium at {CHROMIUM}: apt-get install -y chromium")
    root = CACHE / f"root-{args.runs}"
    registry(root, args.runs)
    with tempfile.TemporaryDirectory() as tmp, running_lab(Path(tmp), root) as base:
        server = server_ms(base)
        firsts, again = [], []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for visit in range(FIRST_RENDERS):  # a fresh page each time: each is a first render
                    context = browser.new_context(viewport={"width": 1400, "height": 1000})
                    page = context.new_page()
                    page.goto(f"{base}/lab?token={LAB_TOKEN}")
                    page.locator("li[data-id='mlops-nb-sidebar']").click(timeout=60_000)
                    page.locator("#mlops-nb-sidebar .mlops-section-runs .mlops-run").first.wait_for(timeout=60_000)
                    # As a user would click: once the page has settled (vega fetched in the background by then).
                    page.wait_for_load_state("networkidle")
                    firsts.append(page.evaluate(MEASURE, ["#mlops-nb-sidebar .mlops-view-charts", None]))
                    if visit == FIRST_RENDERS - 1:
                        for _ in range(AXIS_CHANGES):
                            prev = page.evaluate_handle("() => window.__lastFirst")
                            again.append(page.evaluate(MEASURE, ["#mlops-nb-sidebar .mlops-axis-y", prev]))
                    context.close()
            finally:
                browser.close()
    if any(r["errors"] for r in firsts + again):
        raise SystemExit(f"a chart failed to draw: {firsts + again}")
    first_s = statistics.median(r["ms"] for r in firsts) / 1000
    again_s = statistics.median(a["ms"] for a in again) / 1000
    fetch_first = statistics.median(r["fetch"] or 0 for r in firsts)
    fetch_again = statistics.median(a["fetch"] or 0 for a in again)
    drawn = ", ".join(f"{c} {m}" for c, m in firsts[0]["charts"])
    print(f"runs charts over {args.runs:,} runs in Chromium: first render {first_s * 1000:.0f} ms "
          f"(median of {FIRST_RENDERS} fresh pages: {', '.join(str(round(r['ms'])) for r in firsts)}; of which the charts/runs "
          f"request {fetch_first:.0f} ms), after a y-axis change {again_s * 1000:.0f} ms (request {fetch_again:.0f} ms; "
          f"median of {AXIS_CHANGES}); bare answer outside the browser {server:.0f} ms; marks: {drawn}")  # fmt: skip
    size = f"{args.runs // 1000}k" if args.runs % 1000 == 0 else f"{args.runs:,}"
    _results.record(f"sidebar runs charts, {size} runs: first render in Chromium", first_s, unit="s", target=TARGET_S,
                    better="lower", detail=f"click to 4 SVG charts ({drawn} marks), median of {FIRST_RENDERS} fresh pages; "
                                           f"of which the server's answer {fetch_first:.0f} ms")  # fmt: skip
    _results.record(f"sidebar runs charts, {size} runs: redraw on a new y axis", again_s, unit="s", target=TARGET_S,
                    better="lower", detail=f"median of {AXIS_CHANGES}; of which the server's answer {fetch_again:.0f} ms")  # fmt: skip
    print(json.dumps({"first_s": first_s, "again_s": again_s, "fetch_first_ms": fetch_first, "fetch_again_ms": fetch_again,
                      "server_ms": server, "runs": args.runs}))


if __name__ == "__main__":
    main()
