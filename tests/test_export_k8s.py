"""Kubernetes manifests held against the official schemas of the current and the previous minor version.

``kubernetes-validate`` bundles the OpenAPI schemas of each release; strict mode also refuses
fields the schema does not know (a typo such as ``backofLimit`` would pass a plain YAML check).
"""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from mlops_nb.cli import main
from mlops_nb.jobs.export import export_schedule
from mlops_nb.jobs.kubernetes import k8s_serving
from test_jobs_support import write_notebook


def _versions() -> list[str]:
    major, minor, _ = kubernetes_validate.latest_version().split(".")
    return [f"{major}.{minor}.0", f"{major}.{int(minor) - 1}.0"]


VERSIONS = _versions()
SCHEDULE = {
    "name": "Nightly retrain", "notebook_path": "/work/notebooks/train.ipynb", "notebook_hash": "ab" * 32,
    "cron": "30 2 * * 1", "timezone": "Europe/Paris", "parameters": {"C": 0.5, "kind": "b", "lr": 1e-05},
    "timeout": 600.0, "retries": 2, "kernel": "python3", "catchup": "skip", "created_at": 0.0,
}  # fmt: skip


def _documents(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def _validate(document: dict, version: str) -> None:
    kubernetes_validate.validate(document, version, strict=True)


@pytest.mark.parametrize("version", VERSIONS)
def test_cronjob_job_and_serving_validate_against_the_official_schemas(version):
    texts = {
        "CronJob": export_schedule(SCHEDULE, "k8s", image="registry.example/train:1"),
        "Job": export_schedule(SCHEDULE, "k8s-job", image="registry.example/train:1"),
        "Serving": k8s_serving("churn@production", image="registry.example/serve:1", replicas=2),
    }
    kinds = []
    for text in texts.values():
        for document in _documents(text):
            _validate(document, version)
            kinds.append(document["kind"])
    assert kinds == ["CronJob", "Job", "Deployment", "Service"]


def test_a_mistyped_field_is_refused_by_the_same_check():
    document = _documents(export_schedule(SCHEDULE, "k8s"))[0]
    document["spec"]["jobTemplate"]["spec"]["backofLimit"] = document["spec"]["jobTemplate"]["spec"].pop("backoffLimit")
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(document, VERSIONS[0])
    bad_port = _documents(k8s_serving("churn@production"))[0]
    bad_port["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(bad_port, VERSIONS[0])


def test_cronjob_maps_the_schedule_and_runs_our_job_runner():
    cron = _documents(export_schedule(SCHEDULE, "k8s", env={"MLOPS_NB_STORE_URL": "postgresql://u:secret@db/x"}))[0]
    assert cron["metadata"]["name"] == "nightly-retrain"
    spec = cron["spec"]
    assert spec["schedule"] == "30 2 * * 1" and spec["timeZone"] == "Europe/Paris"
    assert spec["concurrencyPolicy"] == "Forbid" and spec["startingDeadlineSeconds"] == 60
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 2  # the schedule's retries
    assert job["activeDeadlineSeconds"] == 600 * 3 + 300  # every attempt's timeout, plus pod start-up
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    container = pod["containers"][0]
    assert container["command"][:3] == ["mlops-nb", "run", "/work/notebooks/train.ipynb"]
    command = container["command"]
    assert command[command.index("--schedule") + 1] == "Nightly retrain"
    assert command[command.index("--timeout") + 1] == "600.0"  # our runner kills each attempt at the timeout
    assert command[command.index("--expect-hash") + 1] == "ab" * 32
    import json

    assert json.loads(command[command.index("--params-json") + 1]) == {"C": 0.5, "kind": "b", "lr": 1e-05}
    # Credentials by reference only: no registry URL, no password anywhere in the manifest.
    assert container["envFrom"] == [{"secretRef": {"name": "mlops-nb-registry"}}]
    assert all("value" not in e or "://" not in e["value"] for e in container["env"])
    assert "secret@" not in yaml.safe_dump(cron)
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert container["resources"]["limits"]["memory"] == "4Gi"


def test_one_off_job_and_serving_manifests():
    job = _documents(export_schedule(SCHEDULE, "k8s-job", secret="team-registry"))[0]
    assert job["kind"] == "Job" and job["metadata"]["generateName"] == "nightly-retrain-" and "name" not in job["metadata"]
    assert job["spec"]["backoffLimit"] == 2 and job["spec"]["activeDeadlineSeconds"] == 2100
    assert job["spec"]["template"]["spec"]["containers"][0]["envFrom"] == [{"secretRef": {"name": "team-registry"}}]

    deployment, service = _documents(k8s_serving("churn@production", replicas=2, port=8080))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["mlops-nb", "serve", "churn@production", "--host", "0.0.0.0", "--port", "8080",
                                    "--poll", "5"]  # fmt: skip
    assert deployment["spec"]["replicas"] == 2 and container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["envFrom"] == [{"secretRef": {"name": "mlops-nb-registry"}}] and "limits" in container["resources"]
    assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_cli_writes_the_manifests(tmp_path, store):
    nb = write_notebook(tmp_path / "train.ipynb", "y = C * 2", parameters="C = 1.0")
    runner = CliRunner()
    added = runner.invoke(main, ["schedule", "add", str(nb), "--cron", "0 3 * * *", "--name", "nightly",
                                 "--retries", "1", "--timeout", "60", "--force"])  # fmt: skip
    assert added.exit_code == 0, added.output
    out = runner.invoke(main, ["schedule", "export", "nightly", "--to", "k8s-job", "--out", "-", "--secret", "s"])
    assert out.exit_code == 0, out.output
    (job,) = _documents(out.output)
    _validate(job, VERSIONS[0])
    assert job["spec"]["activeDeadlineSeconds"] == 60 * 2 + 300
    path = tmp_path / "serve.yaml"
    served = runner.invoke(main, ["k8s", "serve", "churn@production", "--out", str(path)])
    assert served.exit_code == 0 and [d["kind"] for d in _documents(path.read_text())] == ["Deployment", "Service"]


def test_run_options_the_exports_use_refuse_bad_input_in_one_line(tmp_path, store):
    nb = write_notebook(tmp_path / "train.ipynb", "y = C * 2", parameters="C = 1.0")
    runner = CliRunner()
    not_json = runner.invoke(main, ["run", str(nb), "--params-json", "{C: 1"])
    assert not_json.exit_code == 1 and not_json.output.startswith("Error: --params-json is not JSON")
    not_object = runner.invoke(main, ["run", str(nb), "--params-json", "[1]"])
    assert not_object.exit_code == 1 and "must be one JSON object" in not_object.output
    changed = runner.invoke(main, ["run", str(nb), "--expect-hash", "0" * 64, "--no-progress"])
    assert changed.exit_code == 1 and "changed since it was scheduled" in changed.output
    assert "Traceback" not in not_json.output + not_object.output + changed.output
    assert store.list_job_runs() == []  # refused before anything ran or was recorded
