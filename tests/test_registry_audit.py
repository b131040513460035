"""Audit verification against tampering, and refusal of tampered or re-pointed model artifacts."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import update

import mlops_nb
from mlops_nb.cli import main
from mlops_nb.errors import IntegrityError, ModelFormatError
from mlops_nb.store import get_store, schema

from registry_support import X, train


@pytest.fixture
def history(mlops_home):
    """A registry with a few audited changes."""
    store = get_store()
    for c in (1.0, 0.1, 0.01):
        mlops_nb.register(train(store, c)[0], name="iris")
    for v in (1, 2, 3):
        mlops_nb.promote("iris", v, "production")
    return store


def _events(store):
    return store.audit_log()


def test_intact_chain_verifies_with_and_without_head(history):
    head = mlops_nb.audit_head()
    result = mlops_nb.verify_audit(head=head)
    assert result.ok and result.n_events == 6 and result.head == head
    runner = CliRunner()
    out = runner.invoke(main, ["audit", "verify", "--head", head])
    assert out.exit_code == 0 and "intact: 6 events" in out.output


def test_edited_event_is_detected(history):
    target = _events(history)[2]
    with history.engine.begin() as conn:
        conn.execute(update(schema.audit_events).where(schema.audit_events.c.id == target["id"]).values(actor="mallory"))
    result = mlops_nb.verify_audit()
    assert not result.ok and result.broken == [target["id"]]
    out = CliRunner().invoke(main, ["audit", "verify"])
    assert out.exit_code == 1 and f"chain broken at event(s) {target['id']}" in out.output


def test_deleted_events_are_detected_the_newest_with_a_head(history):
    head = mlops_nb.audit_head()
    events = _events(history)
    with history.engine.begin() as conn:
        conn.execute(schema.audit_events.delete().where(schema.audit_events.c.id == events[-1]["id"]))
    assert mlops_nb.verify_audit().ok  # a bare chain cannot see it…
    result = mlops_nb.verify_audit(head=head)  # …the head kept elsewhere does
    assert not result.ok and "missing" in result.head_problem and "events were deleted" in str(result)
    with history.engine.begin() as conn:
        conn.execute(schema.audit_events.delete().where(schema.audit_events.c.id == events[1]["id"]))
    assert mlops_nb.verify_audit().broken == [events[2]["id"]]


def test_reordered_events_are_detected(history):
    a, b = _events(history)[1:3]
    fields = ("timestamp", "actor", "action", "target", "reason", "payload", "prev_hash", "hash", "mac")
    with history.engine.begin() as conn:
        for src, dst in ((a, b), (b, a)):
            conn.execute(update(schema.audit_events).where(schema.audit_events.c.id == dst["id"]).values(**{f: src[f] for f in fields}))
    result = mlops_nb.verify_audit()
    assert not result.ok and a["id"] in result.broken


def test_forward_rewrite_needs_the_key(mlops_home, monkeypatch):
    monkeypatch.setenv("MLOPS_NB_AUDIT_KEY", "s3cret")
    store = get_store()
    mlops_nb.register(train(store, 1.0)[0], name="iris")
    mlops_nb.promote("iris", 1, "production")
    head = mlops_nb.audit_head()
    assert mlops_nb.verify_audit().ok
    # Rewrite event 1 and recompute every hash forward, as someone with database access but no key would.
    from mlops_nb.store.sql import _event_hash

    prev = "0" * 64
    with store.engine.begin() as conn:
        for event in _events(store):
            event = dict(event, actor="mallory", prev_hash=prev)
            event["hash"] = _event_hash(event)
            conn.execute(update(schema.audit_events).where(schema.audit_events.c.id == event["id"]).values(
                actor="mallory", prev_hash=prev, hash=event["hash"]))  # fmt: skip
            prev = event["hash"]
    result = mlops_nb.verify_audit()
    assert result.broken == [] and result.bad_mac == [1, 2] and not result.ok
    assert "HMAC mismatch" in str(result)
    assert "rewritten" in mlops_nb.verify_audit(head=head).head_problem
    monkeypatch.delenv("MLOPS_NB_AUDIT_KEY")
    assert mlops_nb.verify_audit().ok  # without the key only the head can tell


def test_audit_cli_lists_exports_and_filters(history, tmp_path):
    runner = CliRunner()
    listed = runner.invoke(main, ["audit", "list", "--name", "iris"])
    assert listed.exit_code == 0 and "@production → v3 (was v2)" in listed.output
    out = tmp_path / "audit.csv"
    exported = runner.invoke(main, ["audit", "export", "--format", "csv", "-o", str(out)])
    assert exported.exit_code == 0 and "6 events written" in exported.output
    assert out.read_text().splitlines()[0].startswith("id,timestamp,actor,action")
    jsonl = runner.invoke(main, ["audit", "export"])
    assert len(jsonl.output.strip().splitlines()) == 6
    assert runner.invoke(main, ["audit", "verify", "--head", "nonsense"]).exit_code == 1


def test_tampered_artifact_is_refused(mlops_home):
    store = get_store()
    digest, model, _ = train(store, 1.0)
    mlops_nb.register(digest, name="iris", alias="production")
    row = store.get_model_version(digest)
    path = store.artifacts.path(row["artifact_digest"])
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))
    with pytest.raises(IntegrityError):
        mlops_nb.load_model("iris@production")


def test_repointed_record_is_refused(mlops_home):
    store = get_store()
    d1, _, _ = train(store, 1.0)
    d2, _, _ = train(store, 0.01)
    mlops_nb.register(d1, name="iris", alias="production")
    other = store.get_model_version(d2)["artifact_digest"]
    with store.engine.begin() as conn:
        conn.execute(update(schema.model_versions).where(schema.model_versions.c.digest == d1).values(artifact_digest=other))
    with pytest.raises(IntegrityError, match="holds a different model.*re-pointed"):
        mlops_nb.load_model("iris@production")


def test_corrupt_artifact_gives_a_clear_error(mlops_home):
    store = get_store()
    digest, _, _ = train(store, 1.0)
    mlops_nb.register(digest, name="iris")
    garbage = store.artifacts.put_bytes(b"PK\x03\x04 this is not a zip file")
    with store.engine.begin() as conn:
        conn.execute(update(schema.model_versions).where(schema.model_versions.c.digest == digest).values(artifact_digest=garbage))
    with pytest.raises(ModelFormatError, match="cannot be read as a skops model.*mlops-nb doctor"):
        mlops_nb.load_model("iris:1")


class Doubler:
    """A custom estimator: skops cannot vouch for its type."""

    def __init__(self, *, factor=2.0):
        self.factor = factor

    def get_params(self, deep=True):
        return {"factor": self.factor}

    def fit(self, X, y=None):
        self.factor_ = self.factor
        return self

    def predict(self, X):
        return X[:, 0] * self.factor_


def test_untrusted_types_are_named_with_how_to_trust_them(mlops_home):
    model = Doubler(factor=3.0).fit(X)
    mlops_nb.register(model, name="custom")
    with pytest.raises(ModelFormatError, match=r"not trusted by default: .*Doubler.*trust=\["):
        mlops_nb.load_model("custom:1")
    from mlops_nb.errors import MlopsError

    try:
        mlops_nb.load_model("custom:1")
    except MlopsError as exc:
        names = exc.untrusted
    assert mlops_nb.load_model("custom:1", trust=names).predict(X)[0] == X[0, 0] * 3.0
