"""The drift monitoring example notebook runs in a real kernel and records its check."""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill as pm

ROOT = Path(__file__).resolve().parents[1]


def test_drift_monitoring_notebook(store, tmp_path):
    out = tmp_path / "drift_monitoring.out.ipynb"
    pm.execute_notebook(
        str(ROOT / "notebooks" / "drift_monitoring.ipynb"), str(out), cwd=str(tmp_path),
        kernel_name="python3", progress_bar=False,
    )  # fmt: skip
    checks = store.list_drift_checks()
    assert len(checks) == 1
    check = checks[0]
    assert check["reference"].startswith("run:") and check["reference_digest"] and check["current_digest"]
    drifted = {c["column"] for c in check["result"]["columns"] if c["drifted"]}
    assert drifted == {"monthly_charges"}
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the timeline plot
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)  # the panel
