"""Hand a schedule to another orchestrator: an Airflow DAG or Kubernetes manifests.

Both run the notebook through ``mlops-nb run`` (our job runner) with the schedule's
parameters, cron expression, time zone, timeout and retries, so a run there is the
same record in the registry as one fired by ``mlops-nb scheduler``: a job run with
its tracked runs, the executed notebook, the failing cell's one-line error.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..errors import JobError
from .kubernetes import DEFAULT_IMAGE, DEFAULT_SECRET, k8s_cronjob, k8s_job, k8s_name, run_command

__all__ = ["TARGETS", "airflow_dag", "default_filename", "export_schedule", "run_command", "k8s_cronjob", "k8s_job"]

TARGETS = ("airflow", "k8s", "k8s-job")
#: Seconds before the first retry (as in our scheduler), doubled for each further one.
RETRY_DELAY = 30
#: Airflow's limit is the schedule's timeout plus this: our runner kills the kernel at the
#: timeout and records a ``timeout`` job run first; Airflow's own kill is the backstop.
TIMEOUT_GRACE = 60


def export_schedule(
    schedule: Mapping[str, Any],
    to: str,
    *,
    image: str = DEFAULT_IMAGE,
    output_dir: str | None = None,
    env: Mapping[str, str] | None = None,
    secret: str = DEFAULT_SECRET,
) -> str:
    """The text of an Airflow DAG (``to="airflow"``), a CronJob (``"k8s"``) or a one-off Job (``"k8s-job"``)."""
    if to == "airflow":
        return airflow_dag(schedule, output_dir=output_dir or "/tmp/mlops_nb", env=env)
    if to == "k8s":
        return k8s_cronjob(schedule, image=image, output_dir=output_dir or "/tmp/mlops_nb", secret=secret)
    if to == "k8s-job":
        return k8s_job(schedule, image=image, output_dir=output_dir or "/tmp/mlops_nb", secret=secret)
    raise JobError(f"Unknown export target {to!r}: use one of {', '.join(TARGETS)}.", to=to)


def default_filename(schedule: Mapping[str, Any], to: str) -> str:
    if to == "airflow":
        return f"mlops_nb_{_identifier(schedule['name'])}.py"
    return f"{k8s_name(schedule['name'])}-{'job' if to == 'k8s-job' else 'cronjob'}.yaml"


def airflow_dag(schedule: Mapping[str, Any], *, output_dir: str = "/tmp/mlops_nb", env: Mapping[str, str] | None = None) -> str:
    """Python source of an Airflow DAG whose one task runs the notebook with ``mlops-nb run``.

    Written for Airflow 3's task SDK (``airflow.sdk``); on Airflow 2.x the same file
    imports ``DAG`` and ``task`` from their 2.x homes.  Registry URLs holding a password
    are left out: the workers' environment must provide them.
    """
    name = schedule["name"]
    start = dt.datetime.fromtimestamp(schedule["created_at"], dt.timezone.utc)
    timeout = schedule.get("timeout")
    task_args = [f"retries={int(schedule.get('retries') or 0)}", f"retry_delay=timedelta(seconds={RETRY_DELAY})",
                 "retry_exponential_backoff=True"]  # fmt: skip
    if timeout:
        task_args.append(f"execution_timeout=timedelta(seconds={float(timeout) + TIMEOUT_GRACE!r})")
    safe_env = {k: v for k, v in (env or {}).items() if not has_password(v)}
    withheld = sorted(set(env or {}) - set(safe_env))
    note = "".join(f"# {k} holds a password: set it in the workers' environment.\n" for k in withheld)
    header = (
        f"# Airflow DAG exported by mlops-nb from schedule {name!r}:\n"
        f"# notebook {schedule['notebook_path']!r}, content hash {schedule['notebook_hash']}.\n"
        "# Its task runs `mlops-nb run` (validation hash checked, job run and tracked runs recorded,\n"
        "# timeout enforced), as `mlops-nb scheduler` does.  The workers need mlops-nb and the notebook's\n"
        "# dependencies; MLOPS_NB_COMMAND names the executable when it is not on PATH.\n"
        "# Written for Airflow 3 (airflow.sdk); Airflow 2.x falls back to airflow.decorators.\n" + note
    )
    return header + f'''
from __future__ import annotations

import logging
import os
import shutil
import subprocess
from datetime import timedelta

import pendulum

try:  # Airflow 3: the task SDK
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.x
    from airflow import DAG
    from airflow.decorators import task

ARGV = {run_command(schedule, output_dir)[1:]!r}
OUTPUT_DIR = {output_dir!r}
#: Registry of the schedule; the workers' own environment wins.
REGISTRY = {safe_env!r}
log = logging.getLogger(__name__)

with DAG(
    dag_id={"mlops_nb_" + _identifier(name)!r},
    schedule={schedule["cron"]!r},
    start_date=pendulum.datetime({start.year}, {start.month}, {start.day}, tz={schedule.get("timezone") or "UTC"!r}),
    catchup={schedule.get("catchup") == "all"!r},
    max_active_runs=1,
    tags=["mlops_nb"],
) as dag:

    @task(task_id="run_notebook", {", ".join(task_args)})
    def run_notebook() -> None:
        if "://" not in OUTPUT_DIR:
            os.makedirs(OUTPUT_DIR, exist_ok=True)
        command = os.environ.get("MLOPS_NB_COMMAND") or shutil.which("mlops-nb") or "mlops-nb"
        env = {{**REGISTRY, **os.environ}}
        done = subprocess.run([command, *ARGV], env=env, capture_output=True, text=True)
        for line in (done.stdout + done.stderr).splitlines():
            log.info("%s", line)
        if done.returncode:
            lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
            why = [line for line in lines if line.startswith(("failed:", "Error:"))] or lines[-1:] or ["no output"]
            raise RuntimeError(f"mlops-nb run exited with status {{done.returncode}}: {{why[0]}}")

    run_notebook()
'''


def has_password(url: str) -> bool:
    """Whether ``url`` carries a password (kept out of exported files)."""
    try:
        return bool(urlsplit(str(url)).password)
    except ValueError:
        return False


def _identifier(name: str) -> str:
    cleaned = re.sub(r"\W+", "_", name).strip("_")
    return cleaned if cleaned and not cleaned[0].isdigit() else f"job_{cleaned}"
