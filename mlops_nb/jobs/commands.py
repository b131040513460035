"""``mlops-nb validate | run | batch | schedule | scheduler | jobs``: click commands over the jobs API.

``mlops_nb.cli`` adds every command of :data:`COMMANDS` to the ``mlops-nb``
group, whose error handler turns :class:`~mlops_nb.errors.MlopsError` into one
``Error: ...`` line and exit status 1.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import click

from ..errors import JobError
from ..report import metrics_text, when_text

_param_option = click.option(
    "-p", "--parameter", "parameters", type=(str, str), multiple=True, metavar="NAME VALUE",
    help="Parameter value (typed like papermill's -p: int, float, True/False/None, else string). Repeatable.",
)  # fmt: skip
_kernel_option = click.option("--kernel", "-k", help="Kernel name (default: the notebook's kernelspec).")
_notebook_arg = click.argument("notebook", type=click.Path(dir_okay=False))


def _params(pairs) -> dict[str, Any]:
    from .notebook import parse_parameters

    return parse_parameters(pairs)


def _table(rows: list[dict[str, Any]], empty: str) -> None:
    # Plain rows, not a DataFrame: a listing should not wait for pandas to import.
    from ..report import listing_text

    header = list(rows[0]) if rows else []
    click.echo(listing_text(header, [list(row.values()) for row in rows], empty))


# ---- validate / run / batch -------------------------------------------------------------
@click.command()
@_notebook_arg
@_param_option
@click.option("--rtol", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Relative tolerance for metrics of the two runs.")  # fmt: skip
@click.option("--timeout", type=click.FloatRange(min=1), help="Per-cell timeout in seconds.")
@_kernel_option
@click.option("--junit", type=click.Path(dir_okay=False), help="Also write the checks as JUnit XML here.")
@click.option("--static", is_flag=True, help="Static checks only: no execution (cannot pass for scheduling).")
def validate(notebook, parameters, rtol, timeout, kernel, junit, static) -> None:
    """Can NOTEBOOK become a job?  Static checks, then two clean runs compared."""
    from .notebook import write_file
    from .validation import validate as run_validation

    # A status line on a terminal only: logs and CI output get the report alone.
    status = (lambda text: click.echo(f"\r{text:<70}", err=True, nl=False)) if sys.stderr.isatty() else None
    result = run_validation(
        notebook, _params(parameters), rtol=rtol, timeout=timeout, kernel=kernel, execute=not static, progress=status
    )
    if status is not None:
        status("")
        click.echo("\r", err=True, nl=False)
    click.echo(result.report())
    if junit:
        write_file(junit, result.to_junit())
        click.echo(f"JUnit XML written to {junit}")
    if result.failed:
        sys.exit(1)


@click.command()
@_notebook_arg
@_param_option
@click.option("--timeout", type=click.FloatRange(min=1), help="Wall-clock limit in seconds; the kernel is killed after.")
@click.option("--cell-timeout", type=click.FloatRange(min=1), help="Per-cell timeout in seconds (papermill's).")
@_kernel_option
@click.option("--output", help="Also write the executed notebook here (path, folder/ or fsspec URL).")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar over cells.")
@click.option("--params-json", help="All parameters as one JSON object (exact types; exported DAGs and manifests use it).")
@click.option("--schedule", "schedule_name", metavar="NAME", help="Record the job run as a firing of schedule NAME "
              "(what exported Airflow DAGs and Kubernetes CronJobs pass).")  # fmt: skip
@click.option("--expect-hash", metavar="HASH", help="Refuse unless the notebook still has this content hash (the validated one).")
def run(notebook, parameters, timeout, cell_timeout, kernel, output, progress, params_json, schedule_name, expect_hash) -> None:
    """Execute NOTEBOOK with papermill in a separate process and record the job run."""
    from .execute import run_notebook
    from .notebook import check_parameter_names

    params = {**_json_params(params_json), **_params(parameters)}
    check_parameter_names(notebook, params)
    bar = _CellBar() if progress else None
    try:
        job = run_notebook(notebook, params, timeout=timeout, cell_timeout=cell_timeout, kernel=kernel,
                           output=output, progress=bar, schedule_name=schedule_name,
                           expected_hash=expect_hash)  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    click.echo(job_summary(job))
    if not job.ok:
        sys.exit(1)


def _json_params(text: str | None) -> dict[str, Any]:
    import json

    if not text:
        return {}
    try:
        params = json.loads(text)
    except ValueError as exc:
        raise JobError(f"--params-json is not JSON: {exc}.") from None
    if not isinstance(params, dict):
        raise JobError('--params-json must be one JSON object, e.g. {"C": 0.5}.')
    return params


class _CellBar:
    """A tqdm bar over cells, created on the first progress event (when the total is known)."""

    def __init__(self) -> None:
        self.bar = None

    def __call__(self, event: dict[str, Any]) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=event["total"], desc="cells", unit="cell", file=sys.stderr)
        if event["state"] == "end":
            self.bar.update(event["cell"] - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _job_runs(job) -> list[dict[str, Any]]:
    from ..store import get_store

    return sorted(get_store().list_runs(job_run_id=job.id), key=lambda r: r["start_time"]) if job.id else []


def job_summary(job) -> str:
    """A few lines about a finished job run."""
    lines = [f"job run {job.id}  {job.status}  {job.duration:.1f} s  {Path(job.notebook_path).name}"
             + (f"  {job.parameters}" if job.parameters else "")]  # fmt: skip
    if not job.ok:
        lines.append(f"  failed: {job.describe_failure()}")
    if job.queued:
        lines.append(f"  queued (registry unreachable: {job.queued}): the job run and its tracked runs wait in "
                     "the local spool and are written when the registry answers (mlops-nb status)")  # fmt: skip
    for run in _job_runs(job) if not job.queued else []:
        metrics = metrics_text(run["metrics"])
        lines.append(f"  run {run['id'][:8]} {run['name'] or '-':<18} {run['status']:<9} {metrics}")
    if job.output_digest:
        lines.append(f"  executed notebook: artifact {job.output_digest[:16]}"
                     + (f", {job.output_url}" if job.output_url else "")
                     + f"  (mlops-nb jobs show {job.id[:8]} --notebook FILE)")  # fmt: skip
    return "\n".join(lines)


@click.command()
@_notebook_arg
@click.option("--grid", "grid_file", type=click.Path(dir_okay=False), help="YAML grid: NAME: [values] or a list of mappings.")
@click.option("-p", "--parameter", "parameters", type=(str, str), multiple=True, metavar="NAME V1,V2,...",
              help="Values of one parameter, comma-separated (all combinations are run). Repeatable.")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), help="Notebooks at once on the local pool (default: CPUs).")
@click.option("--dask", "dask_address", metavar="ADDRESS", help="Run on this Dask scheduler instead (tcp://host:8786).")
@click.option("--timeout", type=click.FloatRange(min=1), help="Wall-clock limit per combination, in seconds.")
@click.option("--cell-timeout", type=click.FloatRange(min=1), help="Per-cell timeout in seconds.")
@_kernel_option
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def batch(notebook, grid_file, parameters, workers, dask_address, timeout, cell_timeout, kernel, progress) -> None:
    """Run NOTEBOOK once per parameter combination, in parallel; print parameters × metrics × status."""
    from .batches import batch as run_batch
    from .batches import load_grid, parse_grid_options

    if not grid_file and not parameters:
        raise JobError("Give the combinations with --grid FILE or -p NAME v1,v2,...")
    grid: Any = load_grid(grid_file) if grid_file else {}
    if parameters:
        if not isinstance(grid, dict):
            raise JobError("-p cannot be combined with a grid file that lists combinations; put them in the file.")
        grid = {**grid, **parse_grid_options(parameters)}
    result = run_batch(notebook, grid, workers=workers, dask=dask_address, timeout=timeout,
                       cell_timeout=cell_timeout, kernel=kernel, progress=progress)  # fmt: skip
    _print_frame(result.table())
    click.echo(f"batch {result.id}: {len(result.runs) - result.n_failed}/{len(result.runs)} finished "
               f"in {result.duration:.1f} s on {result.backend}")  # fmt: skip
    if result.n_failed:
        sys.exit(1)


def _print_frame(frame) -> None:
    import pandas as pd

    with pd.option_context("display.max_columns", 50, "display.width", 250, "display.max_colwidth", 80):
        click.echo(frame.to_string(index=False))


# ---- schedules ----------------------------------------------------------------------------
@click.group()
@click.pass_context
def schedule(ctx: click.Context) -> None:
    """Cron schedules kept in the registry, fired by `mlops-nb scheduler`."""
    from .. import config

    if ctx.invoked_subcommand == "add":  # the one schedule command that may start a registry
        config.settings.create_store = True


@schedule.command("add")
@_notebook_arg
@click.option("--cron", required=True, help="Five-field cron expression, e.g. '0 3 * * *'.")
@_param_option
@click.option("--timeout", type=click.FloatRange(min=1), help="Wall-clock limit per attempt, in seconds.")
@click.option("--retries", type=click.IntRange(min=0), default=0, show_default=True, help="Extra attempts after a failure.")
@click.option("--name", help="Schedule name (default: the notebook's file name).")
@_kernel_option
@click.option("--catchup", type=click.Choice(["skip", "one", "all"]), default="one", show_default=True,
              help="Slots missed while no scheduler ran: skip them, run the latest once, or run all.")  # fmt: skip
@click.option("--tz", default="UTC", show_default=True, help="Time zone of the cron expression.")
@click.option("--force", is_flag=True, help="Schedule without a passing validation (recorded in the audit log).")
@click.option("--reason", help="Why (stored in the audit log; recommended with --force).")
@click.option("--replace", is_flag=True, help="Overwrite an existing schedule of that name.")
def schedule_add(notebook, cron, parameters, timeout, retries, name, kernel, catchup, tz, force, reason, replace) -> None:
    """Schedule NOTEBOOK; refused unless this exact notebook passed `mlops-nb validate`."""
    from .schedules import add_schedule, next_times

    saved = add_schedule(notebook, cron, _params(parameters), name=name, timeout=timeout, retries=retries,
                         kernel=kernel, catchup=catchup, tz=tz, force=force, reason=reason, replace=replace)  # fmt: skip
    upcoming = next_times(saved["cron"], time.time(), 1, saved["timezone"])[0]
    forced = "  (FORCED without a passing validation; recorded in the audit log)" if saved["forced"] else ""
    click.echo(f"schedule {saved['name']!r}: {saved['cron']} ({saved['timezone']}), next {when_text(upcoming)}{forced}")


@schedule.command("list")
def schedule_list() -> None:
    """Schedules with their next due time and latest firing."""
    from ..store import get_store
    from .schedules import next_times

    rows = []
    for s in get_store().list_schedules():
        rows.append({
            "name": s["name"], "cron": s["cron"], "tz": s["timezone"],
            "state": "paused" if s["paused"] else "active",
            "next": "-" if s["paused"] else when_text(next_times(s["cron"], time.time(), 1, s["timezone"])[0]),
            "last slot": when_text(s["last_slot"]), "last status": s["last_status"] or "-",
            "retries": s["retries"], "timeout": s["timeout"] or "-", "notebook": Path(s["notebook_path"]).name,
            "parameters": s["parameters"] or {}, "forced": "yes" if s["forced"] else "",
        })  # fmt: skip
    _table(rows, "no schedules (add one with: mlops-nb schedule add NOTEBOOK --cron '0 3 * * *')")


@schedule.command("pause")
@click.argument("name")
def schedule_pause(name: str) -> None:
    """Stop firing schedule NAME (missed slots follow its catch-up policy on resume)."""
    from ..store import get_store

    get_store().set_schedule_paused(name, True)
    click.echo(f"schedule {name!r} paused")


@schedule.command("resume")
@click.argument("name")
def schedule_resume(name: str) -> None:
    """Fire schedule NAME again."""
    from ..store import get_store

    get_store().set_schedule_paused(name, False)
    click.echo(f"schedule {name!r} resumed")


@schedule.command("trigger")
@click.argument("name")
@click.option("--reason", help="Why, for the audit log.")
def schedule_trigger(name: str, reason: str | None) -> None:
    """Fire schedule NAME now, at the next scheduler tick (like a due slot, retries included)."""
    from ..store import get_store

    firing_id = get_store().request_firing(name, reason=reason)
    click.echo(f"schedule {name!r}: firing {firing_id} requested; the running `mlops-nb scheduler` "
               "picks it up at its next tick (or run `mlops-nb scheduler --once`)")


@schedule.command("remove")
@click.argument("name")
def schedule_remove(name: str) -> None:
    """Delete schedule NAME (its history stays in the registry)."""
    from ..store import get_store

    get_store().remove_schedule(name)
    click.echo(f"schedule {name!r} removed")


@schedule.command("history")
@click.argument("name")
@click.option("--last", type=click.IntRange(min=1), default=20, show_default=True)
def schedule_history(name: str, last: int) -> None:
    """Firings of schedule NAME: slot, status, attempts, job runs."""
    from ..store import get_store

    store = get_store()
    firings = store.list_firings(name, last=last)
    if not firings and not store.audit_log(f"schedule:{name}"):
        store.get_schedule(name)  # never existed (a removed one has audit events): say so
    rows = [
        {
            "firing": f["id"], "slot": when_text(f["slot"]), "status": f["status"], "attempts": f["attempts"],
            "job runs": " ".join(i[:8] for i in f["job_run_ids"] or []) or "-",
            "duration_s": round(f["ended_at"] - f["started_at"], 1) if f["ended_at"] and f["started_at"] else "-",
            "error": (f["error"] or "")[:100],
        }
        for f in firings
    ]  # fmt: skip
    _table(rows, f"schedule {name!r} has not fired yet")


@schedule.command("export")
@click.argument("name")
@click.option("--to", "target", type=click.Choice(["airflow", "k8s", "k8s-job"]), required=True,
              help="airflow: a DAG file; k8s: a CronJob; k8s-job: a one-off Job.")  # fmt: skip
@click.option("--out", "-o", type=click.Path(dir_okay=False, allow_dash=True),
              help="File to write ('-' for stdout; default mlops_nb_NAME.py or NAME-cronjob.yaml).")  # fmt: skip
@click.option("--image", default="mlops-nb-runner:latest", show_default=True, help="Container image (k8s).")
@click.option("--secret", default="mlops-nb-registry", show_default=True,
              help="Secret holding the registry's URLs and credentials (k8s; referenced, never inlined).")  # fmt: skip
@click.option("--output-dir", help="Where executed notebooks go on the target (path or s3:// URL).")
def schedule_export(name: str, target: str, out: str | None, image: str, secret: str, output_dir: str | None) -> None:
    """Write schedule NAME as an Airflow DAG or a Kubernetes CronJob/Job; each runs `mlops-nb run`."""
    from ..store import get_store
    from .export import default_filename, export_schedule
    from .notebook import write_file

    store = get_store()
    saved = store.get_schedule(name)
    env = {"MLOPS_NB_STORE_URL": store.url, "MLOPS_NB_ARTIFACTS_URL": store.artifacts.url}
    text = export_schedule(saved, target, image=image, output_dir=output_dir, env=env, secret=secret)
    if out == "-":
        click.echo(text, nl=False)
        return
    path = write_file(out or default_filename(saved, target), text)
    click.echo(f"wrote {path}")


@click.group("k8s")
def k8s() -> None:
    """Kubernetes manifests beyond schedules: a Deployment + Service for `mlops-nb serve`."""


@k8s.command("serve")
@click.argument("model")
@click.option("--image", default="mlops-nb-runner:latest", show_default=True, help="Container image.")
@click.option("--secret", default="mlops-nb-registry", show_default=True, help="Secret holding the registry's URLs.")
@click.option("--replicas", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True, help="Container port.")
@click.option("--out", "-o", type=click.Path(dir_okay=False, allow_dash=True), default="-", show_default=True)
def k8s_serve(model: str, image: str, secret: str, replicas: int, port: int, out: str) -> None:
    """Deployment + Service running `mlops-nb serve MODEL` (NAME@ALIAS follows the alias)."""
    from .kubernetes import k8s_serving
    from .notebook import write_file

    text = k8s_serving(model, image=image, secret=secret, replicas=replicas, port=port)
    if out == "-":
        click.echo(text, nl=False)
    else:
        click.echo(f"wrote {write_file(out, text)}")


@click.command()
@click.option("--poll", type=click.FloatRange(min=0.1), default=30.0, show_default=True, help="Seconds between checks.")
@click.option("--once", is_flag=True, help="Fire what is due now, wait for it, exit (for cron or tests).")
@click.option("--max-concurrent", type=click.IntRange(min=1), default=2, show_default=True, help="Notebooks at once.")
@click.option("--catchup", type=click.Choice(["skip", "one", "all"]), help="Override every schedule's catch-up policy.")
@click.option("--backoff", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds before the first retry (doubled for each further one).")  # fmt: skip
def scheduler(poll: float, once: bool, max_concurrent: int, catchup: str | None, backoff: float) -> None:
    """The embedded scheduler: fire due schedules with timeouts, retries and catch-up."""
    from ..store import get_store
    from .scheduler import Scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    store = get_store()
    runner = Scheduler(store, max_concurrent=max_concurrent, catchup=catchup, backoff=backoff)
    if not once:
        import signal

        signal.signal(signal.SIGTERM, lambda *_: runner.stop())
        try:
            runner.run_forever(poll)
        except KeyboardInterrupt:
            runner.stop()
        return
    started = runner.run_once()
    runner.close()
    firings = [store.get_firing(i) for i in started]
    for f in firings:
        click.echo(f"{f['schedule_name']}: slot {when_text(f['slot'])} {f['status']} after {f['attempts']} attempt(s)"
                   + (f": {f['error']}" if f["error"] else ""))  # fmt: skip
    if not firings:
        click.echo("nothing due")
    if any(f["status"] != "finished" for f in firings):
        sys.exit(1)


# ---- job runs -------------------------------------------------------------------------------
@click.group()
def jobs() -> None:
    """Recorded job runs (from run, batch and the scheduler)."""


@jobs.command("list")
@click.option("--last", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--batch", "batch_id", help="Only the job runs of this batch.")
@click.option("--schedule", "schedule_name", help="Only the job runs of this schedule.")
def jobs_list(last: int, batch_id: str | None, schedule_name: str | None) -> None:
    """Job runs, newest first."""
    from ..store import get_store

    rows = [
        {
            "job run": j["id"][:8], "status": j["status"], "started": when_text(j["start_time"]),
            "duration_s": round(j["duration"] or 0, 1), "notebook": Path(j["notebook_path"]).name,
            "parameters": j["parameters"] or {}, "runs": len(j["run_ids"] or []),
            "batch": (j["batch_id"] or "")[:8], "schedule": j["schedule_name"] or "",
        }
        for j in get_store().list_job_runs(batch_id=batch_id, schedule_name=schedule_name, last=last)
    ]  # fmt: skip
    _table(rows, "no job runs recorded yet")


@jobs.command("show")
@click.argument("job_run_id")
@click.option("--notebook", "notebook_out", type=click.Path(dir_okay=False), help="Save the executed notebook here.")
def jobs_show(job_run_id: str, notebook_out: str | None) -> None:
    """One job run; optionally save its executed notebook."""
    from ..store import get_store
    from .job_runs import job_run_from_record

    store = get_store()
    record = store.get_job_run(job_run_id)
    job = job_run_from_record(record)
    click.echo(job_summary(job))
    click.echo(f"  notebook {job.notebook_path}  hash {job.notebook_hash[:12]}  kernel {job.kernel}")
    click.echo(f"  started {when_text(job.start_time)}  by {record.get('user') or '-'} on {record.get('host') or '-'}")
    if job.error and not job.failed_cell:
        click.echo("  error: " + job.error.strip().replace("\n", "\n    "))
    if notebook_out:
        from .notebook import write_file  # (with nbformat: only when a notebook is written)

        if not job.output_digest:
            raise JobError(f"Job run {job.id[:8]} kept no executed notebook (papermill did not start).")
        write_file(notebook_out, store.artifacts.get_bytes(job.output_digest))
        click.echo(f"executed notebook written to {notebook_out}")


COMMANDS = [validate, run, batch, schedule, scheduler, jobs, k8s]
