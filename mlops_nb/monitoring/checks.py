"""One check of a monitor: newest data vs the champion's training data; retrain and decide when a threshold is crossed.

The steps, each recorded in the check row (``monitor history``):

1. pin the champion (``NAME@ALIAS`` → version N) and take the newest data;
2. score it with the champion (a scoring run, with drift against the training
   profile) and, when labels come with it, compute the metric;
3. nothing crossed: decision ``ok``.  Crossed: with labels, hold out
   ``eval_fraction`` of the rows; run the retrain notebook as a job on the
   rest (``data_path``); its new version gets the alias ``challenger``;
4. score champion and challenger on the same evaluation data; a challenger
   that is not better stays ``challenger``; a better one is promoted through
   the registry's policy (a refusal keeps it as challenger, the gates say why);
5. the decision, the numbers and the reason go to the audit trail
   (``monitor_decision``) and to an alert.
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import MlopsError, MonitorError, PromotionRefused, ServeError
from .definitions import DATA_PARAMETER, OUTPUT_PARAMETER, SERVED_PREFIX, work_dir

if TYPE_CHECKING:
    from ..store import SqlStore


@dataclass
class CheckResult:
    """What one check found and decided."""

    monitor: str
    check_id: int
    decision: str
    reason: str
    model: str
    version: int
    data_path: str | None = None
    rows: int | None = None
    drift_share: float | None = None
    drifted: list[str] = field(default_factory=list)
    metric: str | None = None
    metric_value: float | None = None
    triggered: bool = False
    crossed: list[str] = field(default_factory=list)
    challenger_version: int | None = None
    scores: dict[str, float] = field(default_factory=dict)
    job_run_id: str | None = None
    alert_id: int | None = None
    queued: str | None = None  # why the outcome waits in the local spool (registry unreachable)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __repr__(self) -> str:
        return f"<CheckResult {self.monitor} #{self.check_id}: {self.decision} — {self.reason}>"


def newest_data(monitor: dict[str, Any], store: SqlStore, firing_id: int | None) -> str:
    """The file to check: the newest match of the glob, or what the data notebook wrote."""
    source = monitor["data"]
    if source.startswith(SERVED_PREFIX):  # the server's logged requests, handed on as a file like any other
        from ..scoring.predict import write_table
        from ..scoring.traffic import load_traffic

        try:
            frame = load_traffic(source, store=store)
        except ServeError as exc:
            raise MonitorError(str(exc), data=source) from None
        target = work_dir(store, monitor["name"]) / f"served-{int(time.time() * 1000)}.parquet"
        write_table(frame, target)
        return str(target)
    if source.endswith(".ipynb"):
        from ..jobs.execute import run_notebook

        target = work_dir(store, monitor["name"]) / f"data-{int(time.time() * 1000)}.parquet"
        job = run_notebook(source, {OUTPUT_PARAMETER: str(target)}, store=store, timeout=monitor["timeout"],
                           schedule_name=f"monitor:{monitor['name']}", firing_id=firing_id)  # fmt: skip
        if not job.ok or not target.exists():
            why = job.describe_failure() if not job.ok else f"it did not write {target}"
            raise MonitorError(f"The data notebook {source} gave no data: {why}.", job_run_id=job.id)
        return str(target)
    files = [f for f in glob.glob(source, recursive=True) if f.lower().endswith((".parquet", ".pq", ".csv"))]
    if not files:
        raise MonitorError(f"No .parquet or .csv file matches {source!r} yet: nothing to check.", data=source)
    return max(files, key=lambda f: (os.path.getmtime(f), f))


def check_monitor(name: str, *, firing_id: int | None = None, force: bool = False, store: SqlStore | None = None) -> CheckResult:
    """Run one check of monitor ``name`` now (what each firing does); see the module docs.

    Parameters
    ----------
    force : bool
        Check the newest data even if the last check already saw it.
    """
    from ..fingerprint import fingerprint
    from ..registry import get_model_version
    from ..scoring.predict import read_table
    from ..store import get_store

    store = store or get_store()
    monitor = store.get_monitor(name)
    champion = get_model_version(monitor["model"], store=store)
    check_id = store.add_monitor_check({"monitor": name, "firing_id": firing_id, "model": champion.name, "version": champion.version})
    result = CheckResult(name, check_id, "error", "", champion.name, champion.version)
    try:
        result.data_path = newest_data(monitor, store, firing_id)
        frame = read_table(result.data_path)
        digest = fingerprint(frame)
        result.rows = len(frame)
        # The same batch against the same champion tells nothing new; against another champion
        # (promoted since, or registered again by a re-run of the notebook) it is a new check.
        # A reproduction (`mlops-nb reproduce`) re-does what its original did, batches it checked included.
        force = force or bool(os.environ.get("MLOPS_NB_REPRODUCES"))
        seen = [c for c in store.list_monitor_checks(name, last=20)
                if c["id"] != check_id and c["data_digest"] == digest and c["decision"] not in (None, "error")
                and (c["model"], c["version"]) == (champion.name, champion.version)]  # fmt: skip
        if seen and not force:
            result.decision, result.reason = "no_new_data", f"{Path(result.data_path).name} ({digest[:8]}) was checked already (check {seen[0]['id']})"
            return _finish(store, monitor, result, digest)
        _measure(monitor, champion, frame, result, store)
        crossed = _crossed(monitor, result)
        result.triggered, result.crossed = bool(crossed), crossed
        if not crossed:
            result.decision, result.reason = "ok", "within thresholds: " + _numbers(monitor, result)
            return _finish(store, monitor, result, digest)
        _retrain_and_decide(monitor, champion, frame, result, crossed, store, firing_id)
        return _finish(store, monitor, result, digest)
    except MlopsError as exc:
        result.decision, result.reason = "error", str(exc)
        _finish(store, monitor, result, None)
        raise


def _measure(monitor, champion, frame: pd.DataFrame, result: CheckResult, store: SqlStore) -> None:
    """Score the new data with the champion (recorded), with its drift and, given labels, its metric."""
    from ..scoring.model import load_scoring_model
    from ..scoring.predict import predict
    from .metrics import score

    scorer = load_scoring_model(champion.ref, store=store)
    scored = predict(scorer, frame, store=store)
    if scored.drift is not None:
        result.drift_share = scored.drift.share_drifted
        result.drifted = list(scored.drift.drifted_columns)
    label = monitor["label_column"]
    if monitor["metric"] and label:
        if label not in frame.columns:
            result.metric = monitor["metric"]
            return  # unlabelled batch: drift only
        result.metric = monitor["metric"]
        result.metric_value = score(scorer.model, scorer.check(frame), frame[label], monitor["metric"])


def _crossed(monitor, result: CheckResult) -> list[str]:
    why = []
    if monitor["drift_share"] is not None and result.drift_share is not None and result.drift_share >= monitor["drift_share"]:
        why.append(f"drift: {result.drift_share:.0%} of columns drifted ({', '.join(result.drifted)}), "
                   f"threshold {monitor['drift_share']:.0%}")  # fmt: skip
    value = result.metric_value
    if value is not None and monitor["metric_min"] is not None and value < monitor["metric_min"]:
        why.append(f"metric: {result.metric}={value:.4f} below the minimum {monitor['metric_min']:g}")
    if value is not None and monitor["metric_max"] is not None and value > monitor["metric_max"]:
        why.append(f"metric: {result.metric}={value:.4f} above the maximum {monitor['metric_max']:g}")
    return why


def _numbers(monitor, result: CheckResult) -> str:
    parts = []
    if result.drift_share is not None:
        parts.append(f"drift share {result.drift_share:.0%}")
    if result.metric_value is not None:
        parts.append(f"{result.metric}={result.metric_value:.4f}")
    return ", ".join(parts) or "no numbers (no training profile, no labels)"


def _retrain_and_decide(monitor, champion, frame, result: CheckResult, crossed: list[str], store: SqlStore, firing_id) -> None:
    from ..jobs.execute import run_notebook

    label = monitor["label_column"]
    labelled = bool(label) and label in frame.columns
    folder = work_dir(store, monitor["name"])
    if labelled:  # hold out rows the retrain notebook never sees: a fair race for both models
        evaluation = frame.sample(frac=monitor["eval_fraction"], random_state=0)
        training = frame.drop(index=evaluation.index)
        data_path = folder / f"train-{result.check_id}.parquet"
        training.to_parquet(data_path, index=False)
        data_path = str(data_path)
    else:
        evaluation, data_path = None, result.data_path
    before = {v.version for v in _versions(champion.name, store)}
    params = {**(monitor["parameters"] or {}), DATA_PARAMETER: data_path}
    job = run_notebook(monitor["retrain"], params, store=store, timeout=monitor["timeout"],
                       schedule_name=f"monitor:{monitor['name']}", firing_id=firing_id)  # fmt: skip
    result.job_run_id = job.id
    trigger = "; ".join(crossed)
    if not job.ok:
        result.decision = "retrain_failed"
        result.reason = f"{trigger}. The retrain notebook failed: {job.describe_failure()}"
        return
    new = [v for v in _versions(champion.name, store) if v.version not in before]
    new = [v for v in new if v.run_id in job.run_ids] or new  # prefer what this job's runs trained
    if not new:
        # The retrain made a model byte-identical to one registered before (a deterministic retrain on
        # the same data: register() added no version); that version is the challenger.
        made = {m["digest"] for run_id in job.run_ids for m in store.get_run(run_id)["models"]}
        new = [v for v in _versions(champion.name, store) if v.digest in made and v.version != champion.version]
    if not new:
        result.decision = "retrain_failed"
        result.reason = f"{trigger}. The retrain notebook ran but registered no new version of {champion.name} (call mlops_nb.register(model, name={champion.name!r}))."
        return
    challenger = max(new, key=lambda v: v.version)
    result.challenger_version = challenger.version
    from ..registry import promote

    promote(champion.name, challenger.version, "challenger", reason=f"monitor {monitor['name']}: retrained after {trigger}", store=store)
    _race(monitor, champion, challenger, evaluation, result, trigger, store)


def _versions(name: str, store: SqlStore):
    from ..registry import versions

    return versions(name, store=store)


def _race(monitor, champion, challenger, evaluation, result: CheckResult, trigger: str, store: SqlStore) -> None:
    """Champion vs challenger on the same data; promote the challenger through the policy if it is better."""
    from ..registry import promote
    from ..scoring.model import load_scoring_model
    from .metrics import default_metric, higher_is_better, score

    old = load_scoring_model(champion.ref, store=store)
    new = load_scoring_model(challenger.ref, store=store)
    metric = monitor["metric"] or default_metric(old.model)
    if evaluation is not None:
        label = monitor["label_column"]
        result.scores = {
            champion.ref: score(old.model, old.check(evaluation), evaluation[label], metric),
            challenger.ref: score(new.model, new.check(evaluation), evaluation[label], metric),
        }
        where = f"on {len(evaluation)} held-out new rows"
    else:  # no labels in the new data: the metrics each training run recorded on its own test data
        result.scores = {v.ref: v.metrics[metric] for v in (champion, challenger) if metric in v.metrics}
        where = "from their training runs (the new data has no labels)"
        if len(result.scores) < 2:
            result.decision = "kept_challenger"
            result.reason = f"{trigger}. {challenger.ref} is challenger; no {metric} to compare both on, so nothing is promoted."
            return
    a, b = result.scores[champion.ref], result.scores[challenger.ref]
    better = b > a if higher_is_better(metric) else b < a
    versus = f"{metric} {challenger.ref}={b:.4f} vs {champion.ref}={a:.4f} {where}"
    alias = monitor["model"].split("@", 1)[1]
    if not better:
        result.decision = "kept_champion"
        result.reason = f"{trigger}. The challenger is not better ({versus}): {champion.ref} stays {alias}."
        return
    try:
        promotion = promote(champion.name, challenger.version, alias, store=store,
                            reason=f"monitor {monitor['name']}: {trigger}; {versus}")  # fmt: skip
    except PromotionRefused as exc:
        failed = "; ".join(f"{g['gate']}: {g['detail']}" for g in exc.gates if not g["passed"])
        result.decision = "kept_challenger"
        result.reason = f"{trigger}. The challenger is better ({versus}) but the policy refused it ({failed}): it stays challenger."
        return
    if promotion.status == "pending_approval":
        result.decision = "pending_approval"
        result.reason = f"{trigger}. The challenger is better ({versus}); promotion request {promotion.request_id} waits for approval."
        return
    result.decision = "promoted"
    result.reason = f"{trigger}. The challenger is better ({versus}) and passed the policy: {challenger.ref} is now {alias}."


_SEVERITY = {"promoted": "info", "kept_champion": "warning", "kept_challenger": "warning",
             "pending_approval": "warning", "retrain_failed": "error", "error": "error"}  # fmt: skip


def _finish(store: SqlStore, monitor, result: CheckResult, digest: str | None) -> CheckResult:
    """Write the check's outcome (with its audit event and alert) in one transaction, or keep it in the
    local spool when the registry does not answer: a decision reached is never lost."""
    from ..environment import current_user
    from ..tracking.spool import deliver

    payload = {k: v for k, v in result.to_dict().items() if k not in ("monitor", "check_id", "alert_id", "queued")}
    fields = dict(
        ended_at=time.time(), data_path=result.data_path, data_digest=digest, rows=result.rows,
        drift_share=result.drift_share, n_drifted=len(result.drifted), metric=result.metric,
        metric_value=result.metric_value, triggered=result.triggered, decision=result.decision,
        reason=result.reason, challenger_version=result.challenger_version, job_run_id=result.job_run_id,
        payload=payload,
    )  # fmt: skip
    audit = alert = None
    if result.decision not in ("ok", "no_new_data"):
        audit = dict(
            action="monitor_decision", target=f"model:{result.model}", reason=result.reason, actor=current_user(),
            payload={"monitor": result.monitor, "check_id": result.check_id, **payload},
        )  # fmt: skip
        kinds = sorted({c.split(":", 1)[0] for c in result.crossed})
        alert = {
            "monitor": result.monitor, "check_id": result.check_id, "severity": _SEVERITY.get(result.decision, "warning"),
            "kind": "+".join(kinds) if kinds and result.decision != "error" else "error", "model": result.model,
            "version": result.version, "decision": result.decision, "message": result.reason, "payload": payload,
        }  # fmt: skip
    message = {
        "op": "monitor_result", "store": store.url, "artifacts": store.artifacts.url, "run_id": None,
        "check_id": result.check_id, "fields": fields, "audit": audit, "alert": alert,
    }  # fmt: skip
    _, result.queued = deliver(message, store=store, what=f"check {result.check_id} of monitor {result.monitor}")
    if alert is not None and result.queued is None:
        result.alert_id = next((a["id"] for a in store.list_alerts(result.monitor, last=5) if a["check_id"] == result.check_id), None)
    return result
