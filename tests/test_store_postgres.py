"""The same store implementation on a real PostgreSQL server."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from mlops_nb.store import SqlStore

from pg_server import PostgresServer


@pytest.fixture(scope="module")
def pg_url():
    server = PostgresServer()
    url = server.start()
    yield url
    server.stop()


def test_runs_lineage_and_audit_on_postgres(pg_url, tmp_path):
    store = SqlStore(pg_url, str(tmp_path / "art"))
    store.start_run("a" * 32, "team", name="train")
    data = {"name": "df", "digest": "ab" * 16, "kind": "dataframe", "shape": [2, 2], "schema": {"a": "int64"}, "profile": {"k": 1}}
    store.finish_run(
        "a" * 32, status="finished", params={"C": 1}, metrics=[("accuracy", 0.9, None, 1.0)], inputs=[data],
        models=[{"name": "m", "digest": "cd" * 16, "flavor": "skops", "class_name": "X", "artifact_digest": "e" * 64}],
    )  # fmt: skip
    run = store.get_run("aaaa")
    assert run["project"] == "team" and run["metrics"] == {"accuracy": 0.9} and run["inputs"][0]["name"] == "df"
    assert store.has_profile("ab" * 16)
    store.add_audit_event("promote", "m:1", payload={"to": "production"})
    assert store.verify_audit_log() == []
    store.close()


def test_concurrent_processes_on_postgres(pg_url, tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, mlops_nb
        mlops_nb.init(store={pg_url!r}, artifacts={str(tmp_path / 'art')!r}, project="pg")
        for i in range(10):
            with mlops_nb.track(name="w" + sys.argv[1]) as run:
                run.log_metric("accuracy", i)
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(w)], stderr=subprocess.PIPE, text=True) for w in range(3)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    store = SqlStore(pg_url, str(tmp_path / "art"))
    assert len(store.list_runs(project="pg")) == 30
    store.close()
