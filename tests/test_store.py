"""The registry store, every test that takes ``store`` or ``db_url`` on a SQLite file and on a real PostgreSQL.

The PostgreSQL server is started once per session by conftest's
``postgres_url`` (tests/pg_server.py); each test gets a database of its own.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError

from mlops_nb import config
from mlops_nb.errors import ConfigError, IntegrityError, NotFoundError, SchemaVersionError, StoreError
from mlops_nb.store import SqlStore, clear_cache, get_store, schema
from mlops_nb.store.artifacts import ArtifactStore
from mlops_nb.processes import host_name


@pytest.fixture
def store(mlops_home, db_url, tmp_path):
    """The configured store on this test's database (SQLite file or PostgreSQL database)."""
    config.init(store=db_url, artifacts=str(tmp_path / "artifacts"))
    return get_store()


def _data(name, digest="ab" * 16):
    return {"name": name, "digest": digest, "kind": "dataframe", "shape": [3, 2], "schema": {"a": "int64"}, "profile": None}


def _finish(store, run_id, **kw):
    store.start_run(run_id, "p", name="r")
    store.finish_run(run_id, status="finished", **kw)


def test_fresh_store_has_schema_and_wal(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path}/reg.db", str(tmp_path / "art"))
    assert store.schema_version == schema.SCHEMA_VERSION
    con = sqlite3.connect(tmp_path / "reg.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"projects", "runs", "params", "metrics", "data_versions", "run_data", "model_versions", "audit_events", "schema_info"} <= tables
    assert con.execute("SELECT value FROM schema_info WHERE key='schema_version'").fetchone()[0] == str(schema.SCHEMA_VERSION)


def _writer(url: str) -> bool:
    """The URL of a login role holding only the team role writer (conftest's postgresql-writer)."""
    return "://writer_" in url


def test_newer_schema_is_refused(db_url, tmp_path):
    store = SqlStore(db_url, str(tmp_path / "art"))
    if _writer(db_url):  # only the tables' owner changes the schema
        with pytest.raises(DBAPIError, match="permission denied"), store.engine.begin() as conn:
            conn.execute(update(schema.schema_info).values(value=str(schema.SCHEMA_VERSION + 1)))
        return
    with store.engine.begin() as conn:
        conn.execute(update(schema.schema_info).values(value=str(schema.SCHEMA_VERSION + 1)))
    store.close()
    with pytest.raises(SchemaVersionError, match="Upgrade mlops_nb"):
        SqlStore(db_url, str(tmp_path / "art"))


def test_run_roundtrip(store):
    _finish(
        store, "e1" + "0" * 30,
        params={"C": 0.5, "solver": "lbfgs"},
        metrics=[("loss", 0.9, 0, 1.0), ("loss", 0.5, 1, 2.0), ("accuracy", 0.95, None, 3.0)],
        tags={"owner": "ana"},
        inputs=[_data("train")],
        outputs=[_data("clean", "cd" * 16)],
        models=[{"name": "clf", "digest": "ef" * 16, "flavor": "skops", "class_name": "sk.LR", "params": {"C": 0.5}, "artifact_digest": "1" * 64}],
    )  # fmt: skip
    run = store.get_run("e1")
    assert run["status"] == "finished" and run["project"] == "p"
    assert run["params"] == {"C": 0.5, "solver": "lbfgs"}  # types kept
    assert run["metrics"] == {"loss": 0.5, "accuracy": 0.95}
    assert [m["step"] for m in run["metric_history"] if m["key"] == "loss"] == [0, 1]
    assert run["tags"] == {"owner": "ana"}
    assert [d["name"] for d in run["inputs"]] == ["train"] and run["outputs"][0]["digest"] == "cd" * 16
    assert run["models"][0]["params"] == {"C": 0.5}
    assert store.data_lineage("cdcd") == {"produced_by": [run["id"]], "read_by": []}
    assert store.summary()["runs"] == 1


def test_several_runs_in_a_few_queries_are_each_what_get_run_gives(store):
    from sqlalchemy import event

    _finish(store, "a1" + "0" * 30, params={"C": 1}, metrics=[("acc", 0.5, None, 1.0)], inputs=[_data("df")],
            models=[{"name": "m", "digest": "ef" * 16, "flavor": "skops", "class_name": "sk.LR", "params": {}, "artifact_digest": "1" * 64}])  # fmt: skip
    _finish(store, "b2" + "0" * 30, tags={"t": "x"}, outputs=[_data("out", "cd" * 16)])
    _finish(store, "c3" + "0" * 30, metrics=[("acc", 0.1, 0, 1.0), ("acc", 0.2, 1, 2.0)])
    ids = ["c3" + "0" * 30, "ffff" + "0" * 28, "a1" + "0" * 30, "b2" + "0" * 30]
    queries: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: queries.append(a[2]))
    many = store.get_runs(ids)
    asked = len(queries)
    assert [r["id"] for r in many] == [ids[0], ids[2], ids[3]]  # the order asked; unknown ids left out
    assert many == [store.get_run(i) for i in (ids[0], ids[2], ids[3])]
    assert asked <= 8  # a fixed number of queries, not a few per run
    assert store.get_runs([]) == []


def test_data_version_shared_between_runs(store):
    _finish(store, "a" * 32, inputs=[_data("df")])
    _finish(store, "b" * 32, inputs=[_data("frame")])
    assert store.summary()["data_versions"] == 1
    assert store.data_lineage("ab" * 16)["read_by"] == ["a" * 32, "b" * 32]
    assert store.get_data_version("abab")["first_run_id"] == "a" * 32


def test_failed_transaction_writes_nothing(store):
    store.start_run("c" * 32, "p")
    with pytest.raises(StoreError, match="could not be written"):
        # the second input repeats a primary key: the whole run write must roll back
        store.finish_run("c" * 32, status="finished", params={"x": 1}, inputs=[_data("df"), _data("df")])
    run = store.get_run("c" * 32)
    assert run["status"] == "running" and run["params"] == {} and run["inputs"] == []


def test_lookup_errors(store):
    _finish(store, "abc" + "0" * 29)
    _finish(store, "abd" + "0" * 29)
    with pytest.raises(NotFoundError, match="ambiguous"):
        store.get_run("ab")
    with pytest.raises(NotFoundError, match="No run"):
        store.get_run("fff")
    with pytest.raises(NotFoundError, match="not a run id"):
        store.get_run("zz%")
    with pytest.raises(NotFoundError, match="not a model version id"):
        store.get_model_version("xyz!")
    with pytest.raises(StoreError):
        store.finish_run("abc" + "0" * 29, status="weird")


def test_audit_chain_detects_tampering(store):
    for i in range(3):
        store.add_audit_event("promote", f"model:{i}", reason="test", payload={"i": i})
    assert store.verify_audit_log() == []
    if _writer(store.url):  # team roles: the database refuses the edit itself
        with pytest.raises(DBAPIError, match="permission denied"), store.engine.begin() as conn:
            conn.execute(update(schema.audit_events).where(schema.audit_events.c.id == 2).values(reason="edited"))
        assert store.verify_audit_log() == []
        return
    with store.engine.begin() as conn:
        conn.execute(update(schema.audit_events).where(schema.audit_events.c.id == 2).values(reason="edited"))
    assert store.verify_audit_log() == [2]


def test_artifacts_are_content_addressed_and_verified(tmp_path):
    art = ArtifactStore(str(tmp_path / "art"))
    digest = art.put_bytes(b"model bytes")
    assert digest == hashlib.sha256(b"model bytes").hexdigest()
    path = tmp_path / "art" / digest[:2] / digest[2:]
    assert path.read_bytes() == b"model bytes"
    assert art.put_bytes(b"model bytes") == digest  # idempotent
    assert not list((tmp_path / "art" / "tmp").iterdir())  # no temp files left
    src = tmp_path / "f.bin"
    src.write_bytes(b"x" * 3_000_000)
    assert art.get_bytes(art.put_file(src)) == b"x" * 3_000_000
    path.write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match="corrupted"):
        art.get_bytes(digest)


def test_memory_filesystem_artifacts():
    art = ArtifactStore("memory://mlops-test-artifacts")
    assert art.get_bytes(art.put_bytes(b"abc")) == b"abc"


def test_bad_urls_are_explained(tmp_path):
    with pytest.raises(ConfigError, match="not a URL"):
        from mlops_nb import config

        config.init(store="not-a-url")
    with pytest.raises(ConfigError, match="Cannot use store URL"):
        SqlStore("nosuchdialect://x", str(tmp_path))


def test_a_file_that_is_not_a_registry_is_a_clear_error(tmp_path):
    (tmp_path / "registry.db").write_text("not a database")
    with pytest.raises(StoreError, match="Cannot open the registry database.*file is not a database.*is an mlops_nb registry.*MLOPS_NB_HOME"):
        SqlStore(f"sqlite:///{tmp_path}/registry.db", str(tmp_path / "art"))


def test_a_rolled_back_run_leaves_no_stale_project(store):
    store.start_run("a" * 32, "fresh")
    with pytest.raises(StoreError):
        store.start_run("a" * 32, "brand-new")  # duplicate id: the project insert rolls back too
    store.start_run("b" * 32, "brand-new")  # must not reuse the rolled-back project id
    assert store.get_run("b" * 32)["project"] == "brand-new"


def test_concurrent_processes_write_every_run(db_url, tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, mlops_nb
        mlops_nb.init(store={db_url!r}, artifacts={str(tmp_path / 'art')!r}, project="many")
        for i in range(10):
            with mlops_nb.track(name="w" + sys.argv[1]) as run:
                run.log_metric("accuracy", i)
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(w)], stderr=subprocess.PIPE, text=True) for w in range(3)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    store = SqlStore(db_url, str(tmp_path / "art"))
    runs = store.list_runs(project="many")
    assert len(runs) == 30 and {r["status"] for r in runs} == {"finished"}
    assert {r["host"] for r in runs} == {host_name()} and len({r["pid"] for r in runs}) == 3
    store.close()


def test_opening_the_store_interrupts_runs_of_ended_processes(store, db_url):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(ended.stdout)
    store.start_run("d" * 32, "p", name="dead", host=host_name(), pid=dead_pid, process_start=1.0)
    store.start_run("e" * 32, "p", name="mine", host=host_name(), pid=os.getpid(), process_start=None)
    store.start_run("f" * 32, "p", name="other", host="elsewhere", pid=dead_pid, process_start=1.0)
    clear_cache()
    reopened = get_store()
    assert reopened.get_run("d" * 32)["status"] == "interrupted"
    assert reopened.get_run("e" * 32)["status"] == "running" and reopened.get_run("f" * 32)["status"] == "running"


def test_doctor_finds_no_damage_in_a_healthy_store(store):
    from mlops_nb.doctor import doctor

    store.artifacts.put_bytes(b"blob")
    _finish(store, "a" * 32)
    report = doctor()
    assert not report.damaged, report.text()
    assert "ok     database" in report.text() and "1 verified against their digests" in report.text()


def test_an_unreachable_database_is_a_store_error(db_url, tmp_path):
    store = SqlStore(db_url, str(tmp_path / "art"))
    store.start_run("a" * 32, "p")
    if db_url.startswith("sqlite"):
        store.close()
        os.chmod(db_url.split("///", 1)[1], 0)  # unreadable file
        if os.geteuid() == 0:  # root reads anything: make the file something that is not a database
            with open(db_url.split("///", 1)[1], "r+b") as f:
                f.write(b"garbage!" * 16)
    else:
        import psycopg

        name = db_url.rsplit("/", 1)[1]
        admin = db_url.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql://") + "/postgres"
        if _writer(db_url):  # dropping a database is its owner's
            admin = "postgresql://mlops@" + admin.split("@", 1)[1]
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # while the store is open
            try:
                for call in (store.list_runs, lambda: store.get_run("a" * 32), lambda: store.start_run("b" * 32, "p")):
                    with pytest.raises(StoreError, match=f"registry database .*{name} could not be (read|written): "):
                        call()
                store.close()
                with pytest.raises(StoreError, match="Cannot open the registry database"):
                    SqlStore(db_url, str(tmp_path / "art"))
            finally:
                conn.execute(f'CREATE DATABASE "{name}"')  # for the fixture's clean-up
        return
    with pytest.raises(StoreError, match="Cannot open the registry database"):
        SqlStore(db_url, str(tmp_path / "art"))
