"""Kubernetes manifests: a CronJob for a schedule, a Job for one run, a Deployment + Service for serving.

Every pod runs our own command (``mlops-nb run`` or ``mlops-nb serve``), so what it does
lands in the registry exactly as on one machine.  The registry's URLs and any cloud
credentials come from a Secret by reference (``envFrom``), never inline: a manifest
is often committed to git.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

DEFAULT_IMAGE = "mlops-nb-runner:latest"
#: The Secret holding MLOPS_NB_STORE_URL, MLOPS_NB_ARTIFACTS_URL and e.g. AWS_ACCESS_KEY_ID.
DEFAULT_SECRET = "mlops-nb-registry"
#: A notebook run: a kernel plus the model being fitted.
JOB_RESOURCES = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
#: One ``mlops-nb serve`` worker: one model in memory.
SERVE_RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
#: Seconds beyond the attempts' timeouts for pulling the image and starting pods.
DEADLINE_SLACK = 300


def secret_hint(secret: str = DEFAULT_SECRET) -> str:
    """The ``kubectl`` line creating the Secret the manifests refer to."""
    return (f"kubectl create secret generic {secret} --from-literal=MLOPS_NB_STORE_URL=... "
            "--from-literal=MLOPS_NB_ARTIFACTS_URL=... [--from-literal=AWS_ACCESS_KEY_ID=... ...]")  # fmt: skip


def k8s_cronjob(
    schedule: Mapping[str, Any], *, image: str = DEFAULT_IMAGE, output_dir: str = "/tmp/mlops_nb",
    secret: str = DEFAULT_SECRET, resources: Mapping[str, Any] | None = None,
) -> str:  # fmt: skip
    """YAML of a CronJob firing ``schedule`` with ``mlops-nb run`` (never two at once)."""
    spec: dict[str, Any] = {
        "schedule": schedule["cron"],
        "timeZone": schedule.get("timezone") or "UTC",
        "concurrencyPolicy": "Forbid",  # a schedule never overlaps itself
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {"metadata": {"labels": _labels(schedule)},
                        "spec": _job_spec(schedule, image, output_dir, secret, resources)},  # fmt: skip
    }
    if schedule.get("catchup") == "skip":
        spec["startingDeadlineSeconds"] = 60
    manifest = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": _metadata(schedule), "spec": spec}
    return _header("CronJob", schedule, image, secret) + _dump(manifest)


def k8s_job(
    schedule: Mapping[str, Any], *, image: str = DEFAULT_IMAGE, output_dir: str = "/tmp/mlops_nb",
    secret: str = DEFAULT_SECRET, resources: Mapping[str, Any] | None = None,
) -> str:  # fmt: skip
    """YAML of a one-off Job running the notebook once (``kubectl create -f``: a fresh name each time)."""
    metadata = _metadata(schedule)
    metadata["generateName"] = metadata.pop("name")[:57] + "-"
    manifest = {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
                "spec": _job_spec(schedule, image, output_dir, secret, resources)}  # fmt: skip
    return _header("Job", schedule, image, secret) + _dump(manifest)


def k8s_serving(
    model: str, *, image: str = DEFAULT_IMAGE, secret: str = DEFAULT_SECRET, replicas: int = 1, port: int = 5000,
    poll: float = 5.0, extra_args: list[str] | None = None, resources: Mapping[str, Any] | None = None,
) -> str:  # fmt: skip
    """YAML of a Deployment running ``mlops-nb serve MODEL`` and the Service in front of it."""
    name = k8s_name(f"mlops-nb-serve-{model.replace('@', '-').replace(':', '-')}")
    labels = {"app.kubernetes.io/name": "mlops-nb-serve", "app.kubernetes.io/managed-by": "mlops-nb",
              "app.kubernetes.io/instance": name}  # fmt: skip
    command = ["mlops-nb", "serve", model, "--host", "0.0.0.0", "--port", str(port), "--poll", f"{poll:g}",
               *(extra_args or [])]  # fmt: skip
    probe = {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10}
    container = {
        "name": "serve", "image": image, "command": command,
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "envFrom": [{"secretRef": {"name": secret}}],
        "resources": _resources(resources or SERVE_RESOURCES),
        "readinessProbe": {**probe, "initialDelaySeconds": 5},
        "livenessProbe": {**probe, "initialDelaySeconds": 30, "failureThreshold": 3},
        "securityContext": {"allowPrivilegeEscalation": False},
    }  # fmt: skip
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels, "annotations": {"mlops-nb/model": model}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}},
    }  # fmt: skip
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]},
    }  # fmt: skip
    header = (f"# Deployment + Service exported by mlops-nb: `mlops-nb serve {model}` behind port 80.\n"
              f"# Image {image}: needs mlops-nb[serve] and the model's libraries.  The registry comes from\n"
              f"# Secret {secret}: {secret_hint(secret)}\n")  # fmt: skip
    return header + _dump(deployment) + "---\n" + _dump(service)


def run_command(schedule: Mapping[str, Any], output_dir: str, executable: str = "mlops-nb") -> list[str]:
    """``mlops-nb run`` argv for one firing of ``schedule`` (parameters as JSON: exact types)."""
    command = [executable, "run", schedule["notebook_path"], "--no-progress", "--schedule", schedule["name"],
               "--expect-hash", schedule["notebook_hash"], "--output", output_dir.rstrip("/") + "/"]  # fmt: skip
    if schedule.get("parameters"):
        command += ["--params-json", json.dumps(dict(schedule["parameters"]), sort_keys=True)]
    if schedule.get("timeout"):
        command += ["--timeout", repr(float(schedule["timeout"]))]
    if schedule.get("kernel"):
        command += ["--kernel", schedule["kernel"]]
    return command


def k8s_name(name: str) -> str:
    """A DNS-1123 name (CronJob names are at most 52 characters)."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:52].rstrip("-")
    return cleaned or "mlops-nb-job"


def _job_spec(schedule, image: str, output_dir: str, secret: str, resources) -> dict[str, Any]:
    timeout = schedule.get("timeout")
    retries = int(schedule.get("retries") or 0)
    container = {
        "name": "notebook", "image": image, "command": run_command(schedule, output_dir),
        "env": [{"name": "MLOPS_NB_NOTEBOOK", "value": schedule["notebook_path"]}],
        "envFrom": [{"secretRef": {"name": secret}}],
        "resources": _resources(resources or JOB_RESOURCES),
    }  # fmt: skip
    spec: dict[str, Any] = {
        "backoffLimit": retries,  # the schedule's retries: a failed pod is tried again this often
        "template": {"metadata": {"labels": _labels(schedule)},
                     "spec": {"restartPolicy": "Never", "containers": [container]}},  # fmt: skip
    }
    if timeout:
        # mlops-nb run kills each attempt at the timeout (a `timeout` job run); the deadline covers all attempts.
        spec["activeDeadlineSeconds"] = int(round(float(timeout))) * (retries + 1) + DEADLINE_SLACK
    return spec


def _labels(schedule: Mapping[str, Any]) -> dict[str, str]:
    return {"app.kubernetes.io/name": "mlops-nb-job", "app.kubernetes.io/managed-by": "mlops-nb",
            "mlops-nb/schedule": k8s_name(schedule["name"])[:63]}  # fmt: skip


def _metadata(schedule: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": k8s_name(schedule["name"]), "labels": _labels(schedule),
        "annotations": {"mlops-nb/notebook": schedule["notebook_path"], "mlops-nb/notebook-hash": schedule["notebook_hash"],
                        "mlops-nb/parameters": json.dumps(dict(schedule.get("parameters") or {}), sort_keys=True)},
    }  # fmt: skip


def _resources(resources: Mapping[str, Any]) -> dict[str, Any]:
    return {part: dict(values) for part, values in resources.items()}


def _header(kind: str, schedule: Mapping[str, Any], image: str, secret: str) -> str:
    return (
        f"# Kubernetes {kind} exported by mlops-nb from schedule {schedule['name']!r}: `mlops-nb run` in the pod.\n"
        f"# Image {image}: needs mlops-nb, the {schedule.get('kernel') or 'python3'} kernel and the notebook's\n"
        f"# dependencies, with the notebook at the path below.  The registry comes from Secret {secret}:\n"
        f"# {secret_hint(secret)}\n"
    )


def _dump(manifest: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(manifest), sort_keys=False, width=1000)
