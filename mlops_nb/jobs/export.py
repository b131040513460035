"""Hand a schedule to another orchestrator: an Airflow DAG or a Kubernetes CronJob.

Both run the same notebook with papermill, with the same parameters, cron
expression, time zone, timeout and retries as the schedule in the registry.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import yaml

from ..errors import JobError

TARGETS = ("airflow", "k8s")
DEFAULT_IMAGE = "mlops-nb-runner:latest"
#: Seconds before the first retry (as in our scheduler), doubled for each further one.
RETRY_DELAY = 30


def export_schedule(
    schedule: Mapping[str, Any],
    to: str,
    *,
    image: str = DEFAULT_IMAGE,
    output_dir: str | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """The text of an Airflow DAG (``to="airflow"``) or CronJob manifest (``to="k8s"``)."""
    if to == "airflow":
        return airflow_dag(schedule, output_dir=output_dir or "/tmp/mlops_nb", env=env)
    if to == "k8s":
        return k8s_cronjob(schedule, image=image, output_dir=output_dir or "/tmp", env=env)
    raise JobError(f"Unknown export target {to!r}: use one of {', '.join(TARGETS)}.", to=to)


def default_filename(schedule: Mapping[str, Any], to: str) -> str:
    if to == "airflow":
        return f"mlops_nb_{_identifier(schedule['name'])}.py"
    return f"{k8s_name(schedule['name'])}-cronjob.yaml"


def airflow_dag(schedule: Mapping[str, Any], *, output_dir: str = "/tmp/mlops_nb", env: Mapping[str, str] | None = None) -> str:
    """Python source of an Airflow DAG running the notebook with ``PapermillOperator``."""
    name = schedule["name"]
    start = dt.datetime.fromtimestamp(schedule["created_at"], dt.timezone.utc)
    timeout = schedule.get("timeout")
    default_args = [
        f"        \"retries\": {int(schedule.get('retries') or 0)},",
        f'        "retry_delay": timedelta(seconds={RETRY_DELAY}),',
        '        "retry_exponential_backoff": True,',
    ]
    if timeout:
        default_args.append(f'        "execution_timeout": timedelta(seconds={float(timeout)!r}),')
    output = f"{output_dir.rstrip('/')}/{name}-{{{{ ts_nodash }}}}.ipynb"
    registry = "".join(f"#   {k}={v!r}\n" for k, v in (env or {}).items())
    header = (
        f"# Airflow DAG exported by mlops-nb from schedule {name!r}:\n"
        f"# notebook {schedule['notebook_path']!r}, content hash {schedule['notebook_hash']}.\n"
        "# The task runs it with papermill, as `mlops-nb scheduler` does.  For its tracked\n"
        "# cells to record into the registry, set in the Airflow workers' environment:\n"
        + (registry or "#   MLOPS_NB_STORE_URL and MLOPS_NB_ARTIFACTS_URL of a shared registry\n")
    )
    return header + f'''
from datetime import timedelta

import pendulum
from airflow import DAG
from airflow.providers.papermill.operators.papermill import PapermillOperator

with DAG(
    dag_id={"mlops_nb_" + _identifier(name)!r},
    schedule={schedule["cron"]!r},
    start_date=pendulum.datetime({start.year}, {start.month}, {start.day}, tz={schedule.get("timezone") or "UTC"!r}),
    catchup={schedule.get("catchup") == "all"!r},
    max_active_runs=1,
    default_args={{
{chr(10).join(default_args)}
    }},
    tags=["mlops_nb"],
) as dag:
    run_notebook = PapermillOperator(
        task_id="run_notebook",
        input_nb={schedule["notebook_path"]!r},
        output_nb={output!r},
        parameters={dict(schedule.get("parameters") or {})!r},
        kernel_name={schedule.get("kernel") or "python3"!r},
    )
'''


def k8s_cronjob(
    schedule: Mapping[str, Any], *, image: str = DEFAULT_IMAGE, output_dir: str = "/tmp",
    env: Mapping[str, str] | None = None,
) -> str:  # fmt: skip
    """YAML of a Kubernetes CronJob whose pod runs ``papermill`` with the schedule's settings.

    The image must contain papermill, the kernel and the notebook's dependencies,
    and the notebook at the same path (baked in or mounted).
    """
    name = schedule["name"]
    timeout = schedule.get("timeout")
    command = papermill_command(schedule, f"{output_dir.rstrip('/')}/{name}-output.ipynb")
    if timeout:
        # Per attempt, like our scheduler: kill papermill and its kernel when time is up.
        command = ["timeout", "--signal=KILL", str(int(round(timeout))), *command]
    labels = {"app.kubernetes.io/name": "mlops-nb-job", "app.kubernetes.io/managed-by": "mlops-nb",
              "mlops-nb/schedule": k8s_name(name)}  # fmt: skip
    container: dict[str, Any] = {"name": "notebook", "image": image, "command": command}
    variables = {"MLOPS_NB_NOTEBOOK": schedule["notebook_path"], **(env or {})}
    container["env"] = [{"name": k, "value": str(v)} for k, v in variables.items()]
    job_spec: dict[str, Any] = {
        "backoffLimit": int(schedule.get("retries") or 0),
        "template": {"metadata": {"labels": dict(labels)}, "spec": {"restartPolicy": "Never", "containers": [container]}},
    }
    if timeout:
        job_spec["activeDeadlineSeconds"] = int(round(timeout)) * (int(schedule.get("retries") or 0) + 1) + 60
    spec: dict[str, Any] = {
        "schedule": schedule["cron"],
        "timeZone": schedule.get("timezone") or "UTC",
        "concurrencyPolicy": "Forbid",  # a schedule never overlaps itself
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {"metadata": {"labels": dict(labels)}, "spec": job_spec},
    }
    if schedule.get("catchup") == "skip":
        spec["startingDeadlineSeconds"] = 60
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": k8s_name(name),
            "labels": labels,
            "annotations": {"mlops-nb/notebook": schedule["notebook_path"],
                            "mlops-nb/notebook-hash": schedule["notebook_hash"]},  # fmt: skip
        },
        "spec": spec,
    }
    header = (
        f"# Kubernetes CronJob exported by mlops-nb from schedule {name!r}.\n"
        f"# Image {image}: needs papermill, the {schedule.get('kernel') or 'python3'} kernel and the notebook's\n"
        "# dependencies, with the notebook at the path below.\n"
    )
    return header + yaml.safe_dump(manifest, sort_keys=False, width=1000)


def papermill_command(schedule: Mapping[str, Any], output: str) -> list[str]:
    """``papermill`` argv for a schedule (parameters typed exactly as stored)."""
    command = ["papermill", schedule["notebook_path"], output, "-k", schedule.get("kernel") or "python3"]
    params = dict(schedule.get("parameters") or {})
    if all(isinstance(v, (bool, int, float, str)) or v is None for v in params.values()):
        for key, value in params.items():
            if isinstance(value, str):
                command += ["-r", key, value]  # raw: papermill must not guess a type
            else:
                command += ["-p", key, repr(value) if isinstance(value, float) else str(value)]
    elif params:
        command += ["-y", yaml.safe_dump(params, default_flow_style=True).strip()]
    return command


def k8s_name(name: str) -> str:
    """A DNS-1123 name (CronJob names are at most 52 characters)."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:52].rstrip("-")
    return cleaned or "mlops-nb-job"


def _identifier(name: str) -> str:
    cleaned = re.sub(r"\W+", "_", name).strip("_")
    return cleaned if cleaned and not cleaned[0].isdigit() else f"job_{cleaned}"

