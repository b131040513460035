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
        parameters={"retrain_notebook": str(ROOT / "notebooks" / "scheduled_retraining.ipynb")},
        kernel_name="python3", progress_bar=False,
    )  # fmt: skip
    # the drift story's own check (the scoring runs at the end keep theirs, against model:churn:N)
    checks = [c for c in store.list_drift_checks() if c["reference"].startswith("run:")]
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

    # from drift to action: scored with churn@production, a monitor retrained and promoted the challenger
    assert store.get_alias("churn", "production") == 2 and store.get_alias("churn", "challenger") == 2
    (first, second) = store.list_monitor_checks("churn-weekly")[::-1]
    assert first["decision"] == "ok" and second["decision"] == "promoted" and second["triggered"]
    assert second["metric_value"] < 0.8 and second["drift_share"] >= 0.3
    (alert,) = store.list_alerts()
    assert alert["decision"] == "promoted" and "passed the policy" in alert["message"]
    decision = [e for e in store.audit_log("model:churn") if e["action"] == "monitor_decision"]
    assert len(decision) == 1 and decision[0]["payload"]["challenger_version"] == 2
    retrained = store.get_run(store.get_job_run(second["job_run_id"])["run_ids"][0])
    assert retrained["name"] == "retrain-churn" and retrained["status"] == "finished"
    scored = [store.get_run(r["id"]) for r in store.list_runs() if r["name"] == "score-churn"]
    assert sorted(r["params"]["model_version"] for r in scored) == [1, 1, 1, 2]  # week 1, two checks, the winner
    assert "with churn:2" in nb.cells[-1].outputs[0]["text"]
