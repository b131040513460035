"""End to end: `jupyter lab` on a registry made by the Python API, driven in Debian's Chromium with Playwright.

Opens the MLOps sidebar beside a notebook, checks that its runs and the
registered model are shown, promotes a version through the confirmation
dialog and checks that the alias moved in the database; shows the banner
while a record waits in the local spool; screenshots (light and dark theme)
go to ``build/``.  Needs ``/usr/bin/chromium`` (``apt-get
install -y chromium``); never a browser downloaded by Playwright.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sidebar_support import build_registry, spooled_run

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip
SHOTS = Path(__file__).resolve().parents[1] / "build"
TOKEN = "mlops-sidebar-test"

playwright_sync = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium: apt-get install -y chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """`jupyter lab` on 127.0.0.1 whose root holds a registry (found as the kernel finds it: root/.mlops)."""
    root = tmp_path / "root"
    root.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_NB_")}
    env["MLOPS_NB_SPOOL_DIR"] = str(tmp_path / "spool")  # the lab's and its kernels' spool: never the user's own
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"), JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"))  # fmt: skip
    # The one-time "receive Jupyter news?" toast would cover part of the screenshots.
    labconfig = tmp_path / "config" / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    built = build_registry(root)
    port = _free_port()
    log = open(tmp_path / "lab.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--allow-root"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):  # readiness: the server answers its status API
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {(tmp_path / 'lab.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        else:
            raise RuntimeError(f"jupyter lab did not start: {(tmp_path / 'lab.log').read_text()[-2000:]}")
        yield {"base": base, "root": root, "spool_dir": env["MLOPS_NB_SPOOL_DIR"], **built}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        built["store"].close()


def _set_theme(base: str, theme: str) -> None:
    request = urllib.request.Request(
        f"{base}/lab/api/settings/@jupyterlab/apputils-extension:themes",
        data=json.dumps({"raw": json.dumps({"theme": theme})}).encode(), method="PUT",
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )  # fmt: skip
    urllib.request.urlopen(request, timeout=10)


@contextlib.contextmanager
def _sidebar_page(base: str, *, height: int):
    """Chromium on the lab with the MLOps sidebar open: (page, sidebar locator)."""
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": height})
            _open_sidebar(page, base)
            yield page, page.locator("#mlops-nb-sidebar")
        finally:
            browser.close()


def _open_sidebar(page, base: str) -> None:
    page.goto(f"{base}/lab/tree/analysis.ipynb?token={TOKEN}")
    page.locator("li[data-id='mlops-nb-sidebar']").click(timeout=60_000)
    page.locator("#mlops-nb-sidebar .mlops-section-notebook .mlops-run").first.wait_for(timeout=60_000)
    page.locator("#mlops-nb-sidebar .mlops-model[data-model='iris']").wait_for(timeout=60_000)


def test_sidebar_shows_runs_and_models_and_promotes_through_the_dialog(lab):
    SHOTS.mkdir(exist_ok=True)
    store, base = lab["store"], lab["base"]
    assert store.get_alias("iris", "production") == 1
    with _sidebar_page(base, height=1400) as (page, sidebar):

        # This notebook: its own runs, newest first, with the warning; not the other notebook's run.
        notebook_runs = sidebar.locator(".mlops-section-notebook .mlops-run .mlops-name").all_inner_texts()
        assert notebook_runs == ["train-C1.0", "train-C0.05", "prepare"]
        assert "features changed after this run read it" in sidebar.locator(".mlops-section-notebook").inner_text()
        # Runs: every run; Models: iris with its aliases and versions; Drift and Jobs filled in.
        sidebar.locator(".mlops-section-runs .mlops-run").first.wait_for()
        runs_text = sidebar.locator(".mlops-section-runs").inner_text()
        assert all(name in runs_text for name in ("train-C1.0", "train-C0.05", "prepare", "elsewhere"))
        model = sidebar.locator(".mlops-model[data-model='iris']")
        assert "@production → v1" in model.locator(".mlops-aliases").inner_text()
        assert model.locator("[data-version]").count() == 2
        assert sidebar.locator(".mlops-section-drift .mlops-chip-drifted").all_inner_texts() == ["amount"]
        assert "nightly" in sidebar.locator(".mlops-section-jobs").inner_text()
        alerts = sidebar.locator(".mlops-section-alerts")
        alerts.locator(".mlops-alert").first.wait_for()
        assert "iris-watch" in alerts.inner_text() and "No .parquet or .csv file matches" in alerts.inner_text()
        page.screenshot(path=str(SHOTS / "sidebar-light.png"))
        page.screenshot(path=str(SHOTS / "sidebar-readme.png"), clip={"x": 0, "y": 0, "width": 560, "height": 1030})

        # The filter box takes the run search grammar.
        sidebar.locator(".mlops-filter").fill("metrics.accuracy > 0.9 and status = 'finished'")
        sidebar.locator(".mlops-filter").press("Enter")
        page.wait_for_function(
            "document.querySelectorAll('#mlops-nb-sidebar .mlops-section-runs .mlops-run').length === 2", timeout=30_000
        )
        names = sidebar.locator(".mlops-section-runs .mlops-run .mlops-name").all_inner_texts()
        assert names == ["train-C1.0", "train-C0.05"]
        sidebar.locator(".mlops-filter").fill("metrics.accuracy >>> 1")
        sidebar.locator(".mlops-filter").press("Enter")
        sidebar.locator(".mlops-section-runs .mlops-error").wait_for(timeout=30_000)
        sidebar.locator(".mlops-filter").fill("")
        sidebar.locator(".mlops-filter").press("Enter")

        # Promote v2 to production through the confirmation dialog.
        model.locator("[data-version='2'] .mlops-promote").click()
        dialog = page.locator(".jp-Dialog")
        dialog.locator(".mlops-alias-input").fill("production")
        dialog.locator(".mlops-reason-input").fill("promoted from the browser test")
        page.screenshot(path=str(SHOTS / "sidebar-promote-dialog.png"))
        dialog.locator("button.jp-mod-accept").click()
        model.locator(".mlops-alias[data-alias='production']", has_text="v2").wait_for(timeout=30_000)
        assert store.get_alias("iris", "production") == 2
        event = [e for e in store.audit_log("model:iris") if e["action"] == "promote"][-1]
        assert event["reason"] == "promoted from the browser test" and event["payload"]["version"] == 2

        # A run's details open in the main area: params, metrics, inputs with lineage, source.
        sidebar.locator(".mlops-section-notebook .mlops-run").first.click()
        details = page.locator(".mlops-run-details")
        details.locator("h3", has_text="Lineage").wait_for(timeout=30_000)
        text = details.inner_text()
        assert "train-C1.0" in text and "accuracy" in text and "features" in text and "prepare" in text
        page.screenshot(path=str(SHOTS / "sidebar-run-details.png"))

        # Jobs: "Run now" (confirmed) requests a firing, shown in the schedule's history.
        job = sidebar.locator(".mlops-job[data-schedule='nightly']")
        job.locator(".mlops-trigger").click()
        page.locator(".jp-Dialog button.jp-mod-accept").click()
        job.locator(".mlops-history .mlops-status-requested").wait_for(timeout=30_000)
        assert [f["status"] for f in store.list_firings("nightly")] == ["requested"]

        # Dark theme: the same sidebar with JupyterLab's dark variables.
        _set_theme(base, "JupyterLab Dark")
        _open_sidebar(page, base)
        page.wait_for_function("document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
        page.locator("#mlops-nb-sidebar .mlops-alias[data-alias='production']", has_text="v2").wait_for(timeout=30_000)
        page.screenshot(path=str(SHOTS / "sidebar-dark.png"))

        # A cell tracked in the open notebook, in its real kernel, shows up under "This notebook".
        page.locator(".lm-TabBar-tab", has_text="analysis.ipynb").click()
        editor = page.locator(".jp-NotebookPanel .jp-Cell .cm-content").first
        editor.click()
        page.keyboard.press("Control+A")
        page.keyboard.type("%load_ext mlops_nb")
        page.keyboard.press("Shift+Enter")
        page.locator(".jp-NotebookPanel .jp-Cell").nth(1).locator(".cm-content").wait_for(timeout=30_000)
        page.keyboard.type("%%mlops track --name from-lab\naccuracy = 0.91")
        page.keyboard.press("Shift+Enter")
        # The run row appears when the cell starts; its metric when the run is written at the end.
        sidebar.locator(".mlops-section-notebook .mlops-run", has_text="from-lab").filter(has_text="accuracy=0.91").wait_for(timeout=60_000)
        assert sidebar.locator(".mlops-section-notebook .mlops-run .mlops-name").first.inner_text() == "from-lab"
        recorded = store.list_runs(name="from-lab")[0]
        assert recorded["notebook_path"].endswith("analysis.ipynb") and recorded["metrics"] == {"accuracy": 0.91}


def test_sidebar_shows_a_banner_while_records_wait_in_the_local_spool(lab, monkeypatch):
    from mlops_nb.tracking import spool

    SHOTS.mkdir(exist_ok=True)
    store, base = lab["store"], lab["base"]
    monkeypatch.setenv("MLOPS_NB_SPOOL_DIR", lab["spool_dir"])  # the lab's spool, as its kernels see it
    with _sidebar_page(base, height=900) as (page, sidebar):
        banner = sidebar.locator(".mlops-spool-banner")
        assert banner.is_hidden()  # nothing waits

        # A run recorded while the registry did not answer waits in the spool: the next refresh says so.
        run_id = spooled_run(store, "offline", reason="connection refused (test)")
        sidebar.locator(".mlops-refresh").click()
        banner.wait_for(state="visible", timeout=30_000)
        assert banner.inner_text() == (
            "⚠ 1 run is waiting in the local spool: registry unreachable: connection refused (test). "
            "They are written when it answers (mlops-nb status)."
        )
        assert banner.get_attribute("title").startswith(f"{store.url}: 1 record(s) of 1 run(s)")
        page.screenshot(path=str(SHOTS / "sidebar-spool-light.png"), clip={"x": 0, "y": 0, "width": 560, "height": 600})
        _set_theme(base, "JupyterLab Dark")
        _open_sidebar(page, base)
        page.wait_for_function("document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
        banner.wait_for(state="visible", timeout=30_000)
        page.screenshot(path=str(SHOTS / "sidebar-spool-dark.png"), clip={"x": 0, "y": 0, "width": 560, "height": 600})

        # Written once the registry answers: the banner goes at the next refresh, the run is listed.
        assert spool.replay(store.url) == (1, None)
        sidebar.locator(".mlops-refresh").click()
        banner.wait_for(state="hidden", timeout=30_000)
        sidebar.locator(".mlops-section-runs .mlops-run", has_text="offline").wait_for(timeout=30_000)
        assert store.get_run(run_id)["name"] == "offline"
