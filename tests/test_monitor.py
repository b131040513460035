"""Monitors: drift- and metric-triggered retraining with the real retrain notebook (papermill in a
subprocess), champion vs challenger, the policy gate passing and failing, the scheduler firing them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from scoring_support import train_churn

import mlops_nb
from mlops_nb.cli import main
from mlops_nb.errors import MonitorError
from mlops_nb.jobs.scheduler import Scheduler
from mlops_nb.monitoring.datasets import churn_frame

ROOT = Path(__file__).resolve().parents[1]
RETRAIN = ROOT / "notebooks" / "scheduled_retraining.ipynb"


def _policy(store, text: str) -> None:
    from mlops_nb.registry import policy_path

    policy_path(store).write_text(text)


@pytest.fixture
def incoming(tmp_path) -> Path:
    folder = tmp_path / "incoming"
    folder.mkdir()
    return folder


def _add(name, incoming, **kw):
    defaults = {"model": "churn@production", "data": str(incoming / "*.parquet"), "cron": "0 6 * * *", "retrain": RETRAIN}
    return mlops_nb.monitor(name, **{**defaults, **kw})


def test_metric_drop_retrains_and_promotes_a_better_challenger(store, incoming):
    _policy(store, '[aliases.production]\nmetrics = [{name = "accuracy", min = 0.8}]\n')
    champion = train_churn(store)
    _add("churn-acc", incoming, metric="accuracy", min=0.8, label_column="churned")
    churn_frame(3000, seed=21, price_increase=20, start="2024-03-01").to_parquet(incoming / "2024-03.parquet")
    result = mlops_nb.check_monitor("churn-acc")
    assert result.triggered and result.metric_value < 0.8 and result.crossed[0].startswith("metric: accuracy=")
    assert result.decision == "promoted", result.reason
    assert result.challenger_version == 2
    assert store.get_alias("churn", "production") == 2 and store.get_alias("churn", "challenger") == 2
    # both scored on the same 900 held-out new rows (30 % of 3000), and the challenger won
    assert result.scores["churn:2"] > result.scores["churn:1"]
    assert "900 held-out new rows" in result.reason
    # the retrain notebook ran as a job with the training part of the new data as data_path
    job = store.get_job_run(result.job_run_id)
    assert job["status"] == "finished" and job["parameters"]["data_path"].endswith(f"train-{result.check_id}.parquet")
    retrain_run = store.get_run(mlops_nb.get_model_version("churn:2").run_id)
    assert retrain_run["job_run_id"] == job["id"] and retrain_run["inputs"][0]["shape"][0] == 2100
    # the decision with its reason and numbers: in the audit trail and as an alert
    events = mlops_nb.audit("churn")
    actions = [e["action"] for e in events]
    assert actions[-3:] == ["promote", "promote", "monitor_decision"]  # challenger, production, decision
    decision = events[-1]
    assert decision["payload"]["decision"] == "promoted" and decision["payload"]["scores"] == result.scores
    assert decision["reason"] == result.reason and "passed the policy" in decision["reason"]
    assert events[-2]["payload"]["alias"] == "production" and "monitor churn-acc" in events[-2]["reason"]
    alerts = mlops_nb.alerts()
    assert alerts["decision"].tolist() == ["promoted"] and alerts["kind"].tolist() == ["metric"]
    assert alerts["version"].tolist() == [champion.version]
    # the champion's scoring run on the new data was recorded too
    scoring = [r for r in store.list_runs() if r["name"] == "score-churn"]
    assert scoring and store.get_run(scoring[0]["id"])["params"]["model_version"] == 1


def test_gate_failure_keeps_the_challenger(store, incoming):
    _policy(store, '[aliases.production]\nmetrics = [{name = "accuracy", min = 0.99}]\n')
    train_churn(store, alias=None)
    mlops_nb.promote("churn", 1, "production", policy={"aliases": {}}, store=store)  # the first one, before the policy
    _add("churn-acc", incoming, metric="accuracy", min=0.8, label_column="churned")
    churn_frame(3000, seed=21, price_increase=20, start="2024-03-01").to_parquet(incoming / "2024-03.parquet")
    result = mlops_nb.check_monitor("churn-acc")
    assert result.decision == "kept_challenger", result.reason
    assert "policy refused" in result.reason and "below the minimum 0.99" in result.reason
    assert store.get_alias("churn", "production") == 1 and store.get_alias("churn", "challenger") == 2
    actions = [e["action"] for e in mlops_nb.audit("churn")]
    assert actions[-2:] == ["promotion_refused", "monitor_decision"]
    (alert,) = store.list_alerts()
    assert alert["decision"] == "kept_challenger" and alert["severity"] == "warning"


def test_drift_triggers_retraining_without_a_metric(store, incoming):
    _policy(store, '[aliases.production]\nmetrics = [{name = "accuracy", min = 0.7}]\n')
    train_churn(store)
    _add("churn-drift", incoming, drift_share=0.3)
    churn_frame(2000, seed=31, price_increase=20).to_parquet(incoming / "a.parquet")
    result = mlops_nb.check_monitor("churn-drift")
    assert result.triggered and result.drift_share >= 0.3 and "monthly_charges" in result.drifted
    assert result.metric_value is None and result.crossed[0].startswith("drift: ")
    # no label column configured: the whole file is handed over, and the race uses the training runs' metrics
    assert store.get_job_run(result.job_run_id)["parameters"]["data_path"] == str(incoming / "a.parquet")
    assert "from their training runs" in result.reason
    assert result.decision in ("promoted", "kept_champion") and result.challenger_version == 2
    (alert,) = store.list_alerts()
    assert alert["kind"] == "drift"


def test_quiet_data_is_ok_and_the_scheduler_fires_monitors(store, incoming):
    train_churn(store)
    m = _add("churn-quiet", incoming, cron="*/5 * * * *", drift_share=0.5, metric="accuracy", min=0.7, label_column="churned")
    with pytest.raises(MonitorError, match="No .parquet or .csv file matches"):
        mlops_nb.check_monitor("churn-quiet")
    churn_frame(1500, seed=41).to_parquet(incoming / "w1.parquet")
    scheduler = Scheduler(store, clock=lambda: m["created_at"] + 600)
    started = scheduler.run_once()
    assert len(started) == 1
    (firing,) = store.list_firings("monitor:churn-quiet", status="finished")
    checks = store.list_monitor_checks("churn-quiet")
    assert checks[0]["firing_id"] == firing["id"] and checks[0]["decision"] == "ok"
    assert checks[0]["metric_value"] > 0.7 and checks[0]["drift_share"] < 0.5 and not checks[0]["triggered"]
    assert checks[1]["decision"] == "error"  # the first check, before any file arrived
    again = mlops_nb.check_monitor("churn-quiet")  # the same file: nothing new to check
    assert again.decision == "no_new_data"
    assert [a["kind"] for a in store.list_alerts()] == ["error"]
    assert store.get_alias("churn", "production") == 1 and [v.version for v in mlops_nb.versions("churn")] == [1]
    assert store.list_monitors()[0]["last_status"] == "finished"
    # another champion (promoted since the file was checked): the same file is news to it
    train_churn(store, seed=7)
    fresh = mlops_nb.check_monitor("churn-quiet")
    assert fresh.decision == "ok" and fresh.version == 2
    assert mlops_nb.check_monitor("churn-quiet").decision == "no_new_data"


def test_definitions_are_checked(store, incoming, tmp_path):
    train_churn(store)
    with pytest.raises(MonitorError, match="at least one threshold"):
        _add("m", incoming)
    with pytest.raises(MonitorError, match="must name an alias"):
        _add("m", incoming, model="churn:1", drift_share=0.3)
    with pytest.raises(MonitorError, match="needs --label-column"):
        _add("m", incoming, metric="accuracy", min=0.8)
    with pytest.raises(MonitorError, match="Unknown metric"):
        _add("m", incoming, metric="acuracy", min=0.8, label_column="churned")
    quickstart = ROOT / "notebooks" / "quickstart.ipynb"
    with pytest.raises(MonitorError, match="must declare 'data_path'"):
        _add("m", incoming, drift_share=0.3, retrain=quickstart)
    _add("m", incoming, drift_share=0.3)
    with pytest.raises(MonitorError, match="already exists"):
        _add("m", incoming, drift_share=0.3)


def test_cli_and_magic(store, incoming, shell):
    train_churn(store)
    runner = CliRunner()
    add = ["monitor", "add", "weekly", "--model", "churn@production", "--data", str(incoming / "*.parquet"),
           "--cron", "0 6 * * 1", "--drift-share", "0.4", "--retrain", str(RETRAIN)]  # fmt: skip
    result = runner.invoke(main, add)
    assert result.exit_code == 0 and "monitor weekly added" in result.output, result.output
    assert "drift share >= 0.4" in runner.invoke(main, ["monitor", "list"]).output
    churn_frame(1000, seed=51).to_parquet(incoming / "w.parquet")
    result = runner.invoke(main, ["monitor", "check", "weekly"])
    assert result.exit_code == 0 and "monitor weekly: ok" in result.output, result.output
    assert " ok [drift " in runner.invoke(main, ["monitor", "history", "weekly"]).output
    assert runner.invoke(main, ["alerts"]).output.strip() == "no alerts"
    bad = runner.invoke(main, ["monitor", "check", "nope"])
    assert bad.exit_code == 1 and "No monitor named 'nope'" in bad.output and "Traceback" not in bad.output
    shell.run_line_magic("mlops", "monitor list")  # the magic drives the same commands
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="No monitor named"):
        shell.run_line_magic("mlops", "monitor history nope")
    with pytest.raises(UsageError, match="Missing option"):
        shell.run_line_magic("mlops", "monitor add x --model churn@production")
    assert runner.invoke(main, ["monitor", "pause", "weekly"]).exit_code == 0
    assert "PAUSED" in runner.invoke(main, ["monitor", "list"]).output
    assert Scheduler(store, clock=lambda: 4e9).tick() == []  # a paused monitor does not fire
    assert runner.invoke(main, ["monitor", "resume", "weekly"]).exit_code == 0
    assert runner.invoke(main, ["monitor", "remove", "weekly"]).exit_code == 0
    assert "no monitors" in runner.invoke(main, ["monitor", "list"]).output


def test_data_from_a_notebook(store, tmp_path):
    """--data NOTEBOOK: the notebook runs as a job and writes the batch to its output_path."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    train_churn(store)
    source = tmp_path / "fetch.ipynb"
    nb = new_notebook(cells=[
        new_code_cell('output_path = "batch.parquet"', metadata={"tags": ["parameters"]}),
        new_code_cell("from mlops_nb.monitoring.datasets import churn_frame\n"
                      "churn_frame(700, seed=61).to_parquet(output_path)"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})  # fmt: skip
    nbformat.write(nb, source)
    mlops_nb.monitor("from-nb", model="churn@production", data=str(source), drift_share=0.5, retrain=RETRAIN)
    result = mlops_nb.check_monitor("from-nb")
    assert result.decision == "ok" and result.rows == 700
    assert Path(result.data_path).exists() and Path(result.data_path).parent.name == "from-nb"
    jobs = store.list_job_runs(schedule_name="monitor:from-nb")
    assert [j["status"] for j in jobs] == ["finished"] and jobs[0]["parameters"] == {"output_path": result.data_path}
