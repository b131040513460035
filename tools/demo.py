"""`make demo`: the whole loop on the embedded registry, one line per step.

track → register and promote → the training data back → drift → validate → schedule and fire →
drifted data arrives → monitor detects → retrain → champion/challenger → decision → serve the winner
and score a file → reproduce the first job in a fresh kernel.

Run from the demo folder with MLOPS_NB_HOME pointing at its registry (the Makefile does this).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlops_nb
from mlops_nb.monitoring.datasets import FEATURES, churn_frame, churn_pipeline
from mlops_nb.registry import policy_path
from mlops_nb.store import get_store

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BIN = Path(sys.executable).parent
_step = 0


def say(title: str, detail: str) -> None:
    global _step
    _step += 1
    print(f"{_step:>2}. {title:<22} {detail}", flush=True)


def cli(*args: str) -> str:
    out = subprocess.run([str(BIN / "mlops-nb"), *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"mlops-nb {' '.join(args)} failed:\n{out.stdout}{out.stderr}")
    return out.stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    store = get_store()
    print(f"registry: {store.url.removeprefix('sqlite:///')}  artifacts: {store.artifacts.url}\n")

    job = mlops_nb.run_notebook(NOTEBOOKS / "quickstart.ipynb", cwd=os.getcwd())
    job.raise_for_status()
    names = sorted({r["name"] for r in store.list_runs(job_run_id=job.id)})
    say("track", f"quickstart.ipynb ran as job {job.id[:8]}: {len(names)} tracked runs ({', '.join(names)})")

    pictures = mlops_nb.run_notebook(NOTEBOOKS / "charts.ipynb", cwd=os.getcwd())
    pictures.raise_for_status()
    from mlops_nb.charts import pipeline_chart, runs_charts

    pipeline = pipeline_chart(store, [str(NOTEBOOKS / "charts.ipynb")])
    shown = runs_charts(store, filter="name = 'sweep'")
    say("see it", f"charts.ipynb ran as job {pictures.id[:8]}: its pipeline inferred ({pipeline['cells']} cells, "
        f"{len(pipeline['nodes'])} nodes), {len(shown['charts'])} runs charts of {shown['total']} sweep runs, "
        "every picture also a static SVG in the executed notebook")  # fmt: skip

    mlops_nb.init(project="churn")
    history, holdout = churn_frame(4000, seed=0), churn_frame(1000, seed=100)
    with mlops_nb.track(name="train-churn", inputs={"history": history}) as run:
        pipeline = churn_pipeline().fit(history[FEATURES], history["churned"])
        mlops_nb.log_metric("accuracy", pipeline.score(holdout[FEATURES], holdout["churned"]))
        mlops_nb.log_model(pipeline, "pipeline")
    policy_path(store).write_text('[aliases.production]\nmetrics = [{name = "accuracy", min = 0.75}]\n')
    champion = mlops_nb.register(pipeline, name="churn", alias="production", reason="first model")
    say("register + promote", f"{champion.ref} → churn@production (accuracy {champion.metrics['accuracy']:.3f}, policy {policy_path(store).name})")
    train = mlops_nb.load_data("model:churn@production/train")
    kept = store.get_snapshot(run.inputs["history"]["digest"])
    say("data back", f"churn@production's training data: {train.shape[0]}×{train.shape[1]} rebuilt from "
        f"{kept['chunks']} chunk(s), fingerprint checked, pinned: {kept['pinned']}")  # fmt: skip

    Path("incoming").mkdir(exist_ok=True)
    week = churn_frame(1500, seed=1, start="2024-02-05", days=7)
    week.to_parquet("incoming/2024-02-05.parquet")
    report = mlops_nb.drift("model:churn@production", week, columns=FEATURES)
    say("drift", f"this week vs the training data: {report.n_drifted}/{len(report.table)} columns drifted")

    result = mlops_nb.validate(NOTEBOOKS / "scheduled_retraining.ipynb", {"model_name": "churn-nightly"})
    say("validate", f"scheduled_retraining.ipynb: {'passed' if result.passed else 'FAILED'} ({len(result.checks)} checks)")
    if not result.passed:
        sys.exit(str(result))

    cli("schedule", "add", str(NOTEBOOKS / "scheduled_retraining.ipynb"), "--cron", "0 3 * * *",
        "--name", "nightly-retrain", "-p", "model_name", "churn-nightly", "--retries", "1", "--replace")  # fmt: skip
    cli("schedule", "trigger", "nightly-retrain")  # claims a firing now, as the cron slot would
    fired = cli("scheduler", "--once").splitlines()[0]  # the scheduler process runs it
    nightly = mlops_nb.versions("churn-nightly")[0]
    say("schedule + fire", f"{fired} → {nightly.ref} (accuracy {nightly.metrics['accuracy']:.3f})")

    mlops_nb.monitor(
        "churn-weekly", model="churn@production", data="incoming/*.parquet", cron="0 6 * * 1",
        drift_share=0.3, metric="accuracy", min=0.8, label_column="churned",
        retrain=NOTEBOOKS / "scheduled_retraining.ipynb", replace=True,
    )  # fmt: skip
    quiet = mlops_nb.check_monitor("churn-weekly")
    say("monitor", f"churn-weekly on this week's file: {quiet.decision} (drift share {quiet.drift_share:.2f}, accuracy {quiet.metric_value:.3f})")

    march = churn_frame(3000, seed=2, price_increase=20, start="2024-03-04", days=28)
    march.to_parquet("incoming/2024-03-04.parquet")
    say("drifted data arrives", f"incoming/2024-03-04.parquet: {len(march)} customers after a price rise")

    check = mlops_nb.check_monitor("churn-weekly")
    say("monitor detects", f"drift share {check.drift_share:.2f}, accuracy {check.metric_value:.3f}: crossed {', '.join(check.crossed) or 'nothing'}")
    say("retrain", f"scheduled_retraining.ipynb as job {(check.job_run_id or '-')[:8]} → churn:{check.challenger_version} @challenger")
    scores = ", ".join(f"{k} {v:.3f}" for k, v in check.scores.items())
    say("champion/challenger", f"on the same held-out new rows: {scores}")
    say("decision", f"{check.decision}: {check.reason.split('. ')[-1]}")
    winner = mlops_nb.get_model_version("churn@production")

    port = free_port()
    token = secrets.token_urlsafe(32)  # the server answers bearer-token holders only
    server = subprocess.Popen([str(BIN / "mlops-nb"), "serve", "churn@production", "--port", str(port)],
                              env={**os.environ, "MLOPS_NB_SERVE_TOKEN": f"demo:{token}"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        body = json.dumps({"dataframe_split": {"columns": FEATURES, "data": march[FEATURES].head(3).values.tolist()}}, default=str)
        answer = None
        for _ in range(100):
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", body.encode(), {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
                answer = json.loads(urllib.request.urlopen(request, timeout=5).read())
                break
            except OSError:
                time.sleep(0.2)
        if answer is None:
            sys.exit("the model server did not answer")
    finally:
        server.terminate()
        server.wait(timeout=30)
    say("serve the winner", f"mlops-nb serve churn@production: version {answer['version']} answered {answer['predictions']}")

    scored = cli("predict", "churn@production", "--input", "incoming/2024-03-04.parquet", "--output", "scores.parquet")
    say("score a file", scored.splitlines()[0])

    again = mlops_nb.reproduce(job.id)
    compared = sum(len(c.checks) for _, _, c in again.pairs)
    say("reproduce", f"quickstart job {job.id[:8]} re-run in a fresh kernel as job {again.job_run_id[:8]}: "
        f"{'MATCHES' if again.matched else 'DOES NOT MATCH'} ({len(again.pairs)} runs, {compared} models and metrics)")  # fmt: skip
    if not again.matched:
        sys.exit(again.text())

    decision = next(e for e in reversed(mlops_nb.audit("churn")) if e["action"] == "monitor_decision")
    verified = mlops_nb.verify_audit()
    reason = decision["reason"].split(". ")[-1].rstrip(".")
    say("audit", f"event {decision['id']} {decision['action']}: {reason}; chain {'intact' if verified.ok else 'DAMAGED'}, head {verified.head[:20]}…")
    print(f"\nproduction is now {winner.ref}; everything above is in {store.url.removeprefix('sqlite:///')}")
    print("look at it: make lab (JupyterLab with the MLOps sidebar), mlops-nb summary, mlops-nb audit list")


if __name__ == "__main__":
    main()
