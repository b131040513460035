"""A SQLite registry says what it is: single-user, its file permissions are its access control."""

from __future__ import annotations

import os
import stat

import mlops_nb
from mlops_nb.doctor import doctor
from mlops_nb.registry import team
from mlops_nb.store import get_store

from registry_support import train


def _access(report):
    return [f for f in report.findings if f.check == "access"]


def test_doctor_warns_when_the_file_or_the_artifact_folder_is_writable_by_others(mlops_home):
    store = get_store()
    train(store, 1.0)
    db = mlops_home / "registry.db"
    artifacts = store.artifacts.url.removeprefix("file://")
    for path in (db, artifacts):
        os.chmod(path, os.stat(path).st_mode & ~(stat.S_IWGRP | stat.S_IWOTH))
    [finding] = _access(doctor())
    assert finding.level == "ok" and "single-user" in finding.message
    os.chmod(db, os.stat(db).st_mode | stat.S_IWGRP)
    [finding] = _access(doctor())
    assert finding.level == "warn" and f"registry file {db} is writable by group" in finding.message
    os.chmod(artifacts, os.stat(artifacts).st_mode | stat.S_IWOTH)
    report = doctor()
    [finding] = _access(report)
    assert "artifact folder" in finding.message and "by others" in finding.message and "chmod go-w" in finding.message
    assert not report.damaged and "WARN   access:" in report.text()


def test_approvals_on_sqlite_are_said_to_be_advisory_once(mlops_home, capsys, monkeypatch):
    monkeypatch.setattr(team, "_noted", False)
    store = get_store()
    mlops_nb.register(train(store, 1.0)[0], name="iris")
    policy = {"aliases": {"production": {"approvers": ["li"]}}}
    mlops_nb.promote("iris", 1, "production", actor="maria", policy=policy)
    mlops_nb.promote("iris", 1, "production", actor="maria", policy=policy)
    said = capsys.readouterr().err
    assert said.count("approvals are advisory") == 1 and "team backend" in said
    mlops_nb.promote("iris", 1, "staging", policy={})  # no approvers: nothing to say
    assert "advisory" not in capsys.readouterr().err
