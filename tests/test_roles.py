"""Team roles on a real PostgreSQL server: several login roles, each held to what its role may do by the
database itself (API calls and raw SQL alike)."""

from __future__ import annotations

import subprocess
import sys
import uuid

import psycopg
import pytest

import mlops_nb
from mlops_nb import admin
from mlops_nb.errors import ApprovalError, IdentityError, MlopsError, PermissionDenied, PolicyError
from mlops_nb.store import SqlStore

from registry_support import train

POLICY = """
[aliases.production]
approvers = ["{maria}", "{li}"]
min_approvals = 1
"""


class Team:
    """One database with team roles and a login role per person (names unique: roles are per server)."""

    def __init__(self, url: str, artifacts: str, tmp_path) -> None:
        self.url, self.artifacts, self._open = url, artifacts, []
        tag = uuid.uuid4().hex[:6]
        self.owner = self.store()  # the initdb superuser owns the tables
        # Something audited before the roles exist: the chain then mixes client and database hashes.
        digest, _, _ = train(self.owner, 1.0)
        mlops_nb.register(digest, name="iris", store=self.owner)
        admin.init_roles(store=self.owner)
        self.names = {}
        for person, roles in {
            "writer": ["writer"], "maria": ["writer", "approver"], "li": ["approver"],
            "reader": ["reader"], "admin": ["admin"],
        }.items():  # fmt: skip
            name = self.names[person] = f"{person}_{tag}"
            for role in roles:
                admin.grant(name, role, store=self.owner)
        policy = tmp_path / "policy.toml"
        policy.write_text(POLICY.format(maria=self.names["maria"], li=self.names["li"]))
        admin.load_policy(policy, store=self.store("admin"))

    def url_of(self, person: str | None) -> str:
        if person is None:
            return self.url
        scheme, rest = self.url.split("://", 1)
        return f"{scheme}://{self.names[person]}@{rest.split('@', 1)[1]}"

    def store(self, person: str | None = None) -> SqlStore:
        store = SqlStore(self.url_of(person), self.artifacts)
        self._open.append(store)
        return store

    def sql(self, person: str, statement: str, params=None):
        """Run raw SQL as ``person``, as someone with that password and psql would."""
        with psycopg.connect(self.url_of(person).replace("postgresql+psycopg://", "postgresql://")) as conn:
            return conn.execute(statement, params).fetchall() if statement.lstrip().upper().startswith("SELECT") else conn.execute(statement, params)

    def close(self) -> None:
        for store in self._open:
            store.close()


@pytest.fixture
def team(pg_database, tmp_path, monkeypatch, mlops_home):  # mlops_home: this test's own spool folder
    monkeypatch.delenv("MLOPS_NB_USER", raising=False)
    t = Team(pg_database, str(tmp_path / "artifacts"), tmp_path)
    yield t
    t.close()


def _request(team: Team) -> int:
    """maria (writer and approver) registers v2 and asks for production; the request's id."""
    maria = team.store("maria")
    digest, _, _ = train(maria, 0.1)
    mlops_nb.register(digest, name="iris", store=maria)
    pending = mlops_nb.promote("iris", 2, "production", reason="better", store=maria)
    assert pending.status == "pending_approval"
    return pending.request_id


def test_the_actor_is_the_role_that_authenticated(team, monkeypatch):
    writer = team.store("writer")
    digest, _, run_id = train(writer, 0.5)
    version = mlops_nb.register(digest, name="iris", store=writer)
    assert writer.get_run(run_id)["user"] == team.names["writer"]
    assert version.user == team.names["writer"]
    assert writer.audit_log("model:iris")[-1]["actor"] == team.names["writer"]
    with pytest.raises(IdentityError, match="authenticated you as"):
        mlops_nb.promote("iris", version.version, "staging", actor=team.names["maria"], store=writer)
    monkeypatch.setenv("MLOPS_NB_USER", team.names["maria"])
    with pytest.raises(IdentityError, match=f"MLOPS_NB_USER={team.names['maria']}"):
        team.store("writer")
    # A user column written by hand is stamped by the database, whatever the client sent.
    team.sql("writer", "UPDATE runs SET \"user\" = %s WHERE id = %s", (team.names["maria"], run_id))
    assert writer.get_run(run_id)["user"] == team.names["writer"]


def test_a_writer_cannot_approve_through_the_api_or_raw_sql(team):
    rid = _request(team)
    writer = team.store("writer")
    with pytest.raises(ApprovalError, match="is not an approver"):
        mlops_nb.approve(rid, store=writer)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        team.sql("writer", "SELECT mlops_approve(%s, 'ok', NULL, NULL)", (rid,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        team.sql("writer", "UPDATE promotion_requests SET status = 'approved' WHERE id = %s", (rid,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        team.sql("writer", "INSERT INTO model_aliases (name, alias, version, updated_at) VALUES ('iris', 'production', 2, 0)")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="needs the admin role"):
        team.sql("writer", "SELECT mlops_move_alias('iris', 'production', 2, 'promote', NULL, false, NULL, NULL)")
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        mlops_nb.promote("iris", 2, "production", direct=True, store=writer)
    assert writer.get_alias("iris", "production") is None
    assert writer.get_promotion_request(rid)["status"] == "pending"
    # An alias whose policy names no approvers is the writer's to move.
    assert mlops_nb.promote("iris", 2, "staging", store=writer).status == "promoted"


def test_an_approver_cannot_approve_their_own_request(team):
    rid = _request(team)
    maria = team.store("maria")
    with pytest.raises(ApprovalError, match="cannot also approve"):
        mlops_nb.approve(rid, store=maria)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="cannot also approve"):
        team.sql("maria", "SELECT mlops_approve(%s, 'mine', NULL, NULL)", (rid,))
    done = mlops_nb.approve(rid, comment="lgtm", store=team.store("li"))
    assert done.status == "promoted" and maria.get_alias("iris", "production") == 2
    event = maria.audit_log("model:iris")[-1]
    assert event["action"] == "promote" and event["actor"] == team.names["li"]
    assert event["payload"]["requester"] == team.names["maria"] and event["payload"]["approvers"] == [team.names["li"]]
    assert event["payload"]["model_digest"] == maria.get_registry_version("iris", 2)["model_digest"]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # the approved version cannot be re-pointed
        team.sql("maria", "UPDATE registry_versions SET model_digest = 'x' WHERE name = 'iris' AND version = 2")
    assert maria.get_promotion_request(rid)["approvals"][0]["user"] == team.names["li"]


def test_nobody_can_edit_or_delete_an_audit_event(team):
    _request(team)
    for person in ("writer", "maria", "li", "reader", "admin"):
        for statement in ("UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events", "TRUNCATE audit_events"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                team.sql(person, statement)
    with team.owner.engine.begin() as conn:  # the tables' owner (here a superuser) is refused by the trigger
        with pytest.raises(Exception, match="insert-only"):
            conn.exec_driver_sql("UPDATE audit_events SET actor = 'mallory'")
    # What a client sends for time, actor and hashes is replaced by the database's own.
    team.sql(
        "writer",
        "INSERT INTO audit_events (timestamp, actor, action, target, prev_hash, hash) VALUES (1, 'maria', 'x', 'y', 'a', 'b')",
    )
    last = team.owner.audit_log()[-1]
    assert last["actor"] == team.names["writer"] and last["hash"] != "b" and last["timestamp"] > 1
    result = mlops_nb.verify_audit(store=team.owner, key="any key: database-hashed events carry no client HMAC")
    assert result.broken == [] and result.bad_mac == [] and result.unkeyed == [1]  # the one event from before the roles
    assert len(team.owner.audit_log()) >= 5


def test_a_reader_reads_and_cannot_write(team):
    from mlops_nb.tracking import spool

    reader = team.store("reader")
    assert [m.name for m in mlops_nb.models(store=reader)] == ["iris"]
    with pytest.raises(PermissionDenied):
        reader.start_run(uuid.uuid4().hex, "default", name="nope")
    with pytest.raises(MlopsError, match="permission denied"):  # said now, not queued in the spool for ever
        with mlops_nb.track("nope", store=reader):
            mlops_nb.log_metric("x", 1.0)
    assert not spool.has_waiting(reader.url)
    with pytest.raises(PermissionDenied):
        mlops_nb.promote("iris", 1, "staging", store=reader)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        team.sql("reader", "INSERT INTO projects (name, created_at) VALUES ('x', 0)")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        team.sql("reader", "INSERT INTO audit_events (timestamp, actor, action, target, prev_hash, hash) VALUES (1, 'r', 'x', 'y', 'a', 'b')")


def test_an_admin_moves_directly_audited_with_their_name_and_owns_the_policy(team, tmp_path):
    admin_store = team.store("admin")
    moved = mlops_nb.promote("iris", 1, "production", direct=True, reason="hotfix", store=admin_store)
    assert moved.status == "promoted" and admin_store.get_alias("iris", "production") == 1
    event = admin_store.audit_log("model:iris")[-1]
    assert (event["action"], event["actor"], event["payload"]["direct"]) == ("promote", team.names["admin"], True)
    # The policy is the database's: a writer can neither load one nor bring their own.
    loose = tmp_path / "loose.toml"
    loose.write_text("[aliases.production]\n")
    with pytest.raises(PermissionDenied, match="needs the admin role"):
        admin.load_policy(loose, store=team.store("writer"))
    with pytest.raises(PolicyError, match="keeps its promotion policy in its database"):
        mlops_nb.promote("iris", 1, "production", policy=str(loose), store=team.store("writer"))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        team.sql("writer", "INSERT INTO mlops_policies (body) VALUES ('{}')")
    assert admin.show_policy(store=team.store("reader"))["loaded_by"] == team.names["admin"]
    assert [e["action"] for e in admin_store.audit_log("policy")] == ["policy_loaded"]


def test_who_and_grant_from_the_command_line(team):
    def cli(*args: str, person: str | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "mlops_nb.cli", "--store", team.url_of(person), *args],
            capture_output=True, text=True, timeout=120,
        )
        return done.stdout + done.stderr

    out = cli("admin", "who", person="maria")
    assert f"you: {team.names['maria']} (reader, writer, approver)" in out
    assert team.names["li"] in out.splitlines()[3]  # the approver line
    newcomer = f"sam_{uuid.uuid4().hex[:6]}"
    assert f"{newcomer} created and granted approver" in cli("admin", "grant", newcomer, "approver")
    assert "Error:" in cli("admin", "grant", "eve", "admin", person="writer")  # only the owner grants
    assert "Error:" in cli("admin", "policy", "load", __file__, person="admin")  # not a policy file: one line


def test_gc_is_the_admins(team):
    import time

    from mlops_nb.data import gc, snapshot

    writer = team.store("writer")
    snapshot(__import__("pandas").DataFrame({"a": range(500)}), store=writer)  # the writer snapshots data
    time.sleep(0.05)  # keep_days=0 keeps what was made at this very instant
    with pytest.raises(PermissionDenied, match="permission denied"):
        gc(keep_days=0, store=writer)
    done = gc(keep_days=0, store=team.store("admin"))
    assert done["versions"] >= 1
