"""Registry semantics on real SQLite and PostgreSQL stores: versions, aliases, rollback, policy gates, approvals."""

from __future__ import annotations

import subprocess

import pytest

import mlops_nb
from mlops_nb.errors import ApprovalError, NotFoundError, PolicyError, PromotionRefused, RegistryError
from mlops_nb.store import SqlStore

from registry_support import X, Y, pg_databases, train  # noqa: F401  (fixture)


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-writer"])
def reg(request, mlops_home, tmp_path):
    """A registry store on each backend; on PostgreSQL once as the tables' owner and once, with team
    roles, as a login role holding only writer (the least privilege registering and promoting need)."""
    if request.param == "sqlite":
        store = SqlStore(f"sqlite:///{tmp_path / 'reg.db'}", str(tmp_path / "artifacts"))
    else:
        url = request.getfixturevalue("pg_databases").new_url()
        if request.param == "postgresql-writer":
            import uuid

            from mlops_nb import admin

            owner = SqlStore(url, str(tmp_path / "artifacts"))
            writer = f"writer_{uuid.uuid4().hex[:8]}"
            admin.init_roles(store=owner)
            admin.grant(writer, "writer", store=owner)
            owner.close()
            url = url.replace("://mlops@", f"://{writer}@")
        store = SqlStore(url, str(tmp_path / "artifacts"))
    yield store
    store.close()


def _own_policy(reg) -> None:
    """Skip where the test brings its own policy: a team registry refuses that (its policy is in the database)."""
    if reg.secured:
        pytest.skip("a team registry's policy lives in its database (tests/test_roles.py loads one)")


def test_versions_are_numbered_and_deduplicated(reg, capsys):
    d1, m1, run1 = train(reg, 1.0)
    d2, _, _ = train(reg, 0.01)
    v1 = mlops_nb.register(d1, name="iris", description="iris classifier", store=reg)
    v2 = mlops_nb.register(d2, name="iris", store=reg)
    assert (v1.version, v2.version) == (1, 2)
    assert v1.run_id == run1 and v1.metrics["accuracy"] == pytest.approx(m1.score(X, Y))
    assert [d["name"] for d in v1.data] == ["iris"] and v1.params["C"] == 1.0
    again = mlops_nb.register(m1, name="iris", store=reg)  # the object itself: same digest
    assert again.version == 1 and "already is iris version 1" in capsys.readouterr().out
    other = mlops_nb.register(d1, name="iris-copy", store=reg)
    assert other.version == 1
    assert [v.version for v in mlops_nb.versions("iris", store=reg)] == [2, 1]
    listed = {m.name: m for m in mlops_nb.models(store=reg)}
    assert listed["iris"].latest_version == 2 and listed["iris"].description == "iris classifier"
    assert [e["action"] for e in mlops_nb.audit("iris", store=reg)] == ["register", "register"]


def test_register_an_object_outside_a_run_stores_it(reg):
    from sklearn.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier(random_state=0).fit(X, Y)
    version = mlops_nb.register(model, name="tree", store=reg)
    assert version.run_id is None and version.class_name.endswith("DecisionTreeClassifier")
    loaded = mlops_nb.load_model("tree:1", store=reg)
    assert (loaded.predict(X) == model.predict(X)).all()


def test_aliases_references_and_removal(reg):
    d1, m1, _ = train(reg, 1.0)
    d2, m2, _ = train(reg, 0.01)
    mlops_nb.register(d1, name="iris", alias="production", store=reg)
    mlops_nb.register(d2, name="iris", store=reg)
    assert reg.get_alias("iris", "production") == 1 and reg.resolve_alias("iris", "production") == d1
    result = mlops_nb.promote("iris", 2, "production", reason="better recall", store=reg)
    assert (result.status, result.version, result.previous_version) == ("promoted", 2, 1)
    assert reg.get_alias("iris", "production") == 2  # one alias, one version
    mlops_nb.promote("iris", 1, "staging", store=reg)
    for ref in ("iris@production", "model:iris@production", "iris:2", "model:iris:2", d2, d2[:10], f"model:{d2}"):
        assert mlops_nb.get_model_version(ref, store=reg).digest == d2, ref
    assert (mlops_nb.load_model("iris@staging", store=reg).predict(X) == m1.predict(X)).all()
    assert mlops_nb.get_model_version("iris:1", store=reg).aliases == ["staging"]
    mlops_nb.remove_alias("iris", "staging", reason="retired", store=reg)
    with pytest.raises(NotFoundError, match="no alias 'staging'.*production→v2"):
        mlops_nb.get_model_version("iris@staging", store=reg)
    with pytest.raises(NotFoundError, match="no version 7"):
        mlops_nb.promote("iris", 7, "production", store=reg)
    with pytest.raises(NotFoundError, match="No registered model 'nope'"):
        mlops_nb.get_model_version("nope@production", store=reg)
    with pytest.raises(RegistryError, match="not a valid alias"):
        mlops_nb.promote("iris", 1, "prod uction", store=reg)
    with pytest.raises(RegistryError, match="Cannot read the model reference"):
        mlops_nb.get_model_version("iris:latest", store=reg)


def test_rollback_follows_the_audit_history(reg):
    digests = [train(reg, c)[0] for c in (1.0, 0.1, 0.01)]
    for d in digests:
        mlops_nb.register(d, name="iris", store=reg)
    for v in (1, 2, 3):
        mlops_nb.promote("iris", v, "production", store=reg)
    assert mlops_nb.rollback("iris", "production", reason="v3 broke", store=reg).version == 2
    assert mlops_nb.rollback("iris", "production", store=reg).version == 1
    with pytest.raises(RegistryError, match="no earlier holder"):
        mlops_nb.rollback("iris", "production", store=reg)
    mlops_nb.promote("iris", 3, "production", store=reg)
    # undoing one's own promotion: only while the alias still points at it
    moved_on = mlops_nb.rollback("iris", "production", from_version=2, store=reg)
    assert (moved_on.status, moved_on.version, reg.get_alias("iris", "production")) == ("unchanged", 3, 3)
    assert mlops_nb.rollback("iris", "production", from_version="v3", store=reg).version == 1
    actions = [e["action"] for e in mlops_nb.audit("iris", store=reg)]
    assert actions.count("rollback") == 3 and actions.count("promote") == 4
    assert mlops_nb.verify_audit(store=reg).ok


def test_metric_gates_absolute_and_against_the_holder(reg):
    _own_policy(reg)
    strong, _, _ = train(reg, 1.0)
    weak, _, _ = train(reg, 0.001)
    mlops_nb.register(strong, name="iris", store=reg)
    mlops_nb.register(weak, name="iris", store=reg)
    floor = {"aliases": {"production": {"metrics": [{"name": "accuracy", "min": 0.9}]}}}
    with pytest.raises(PromotionRefused, match="accuracy=0.[0-8].* is below the minimum 0.9") as refused:
        mlops_nb.promote("iris", 2, "production", policy=floor, store=reg)
    assert refused.value.gates == [{"gate": "metric accuracy", "passed": False, "detail": refused.value.gates[0]["detail"]}]
    assert reg.get_alias("iris", "production") is None
    event = mlops_nb.audit("iris", store=reg)[-1]
    assert event["action"] == "promotion_refused" and event["payload"]["gates"][0]["passed"] is False
    assert mlops_nb.promote("iris", 1, "production", policy=floor, store=reg).status == "promoted"
    relative = {"aliases": {"production": {"metrics": [{"name": "accuracy", "max_drop": 0.01}, {"name": "rmse", "max_drop": 0.01}]}}}
    with pytest.raises(PromotionRefused, match="worse than the current holder iris:1"):
        mlops_nb.promote("iris", 2, "production", policy=relative, store=reg)
    loose = {"aliases": {"production": {"metrics": [{"name": "accuracy", "max_drop": 0.9}, {"name": "rmse", "max": 5}]}}}
    assert mlops_nb.promote("iris", 2, "production", policy=loose, store=reg).previous_version == 1
    # lower is better for rmse: going back to the strong model is an improvement
    assert mlops_nb.promote("iris", 1, "production", policy=relative, store=reg).status == "promoted"
    missing = {"aliases": {"production": {"metrics": [{"name": "f1", "min": 0.5}]}}}
    with pytest.raises(PromotionRefused, match="has no metric 'f1'.*accuracy, rmse"):
        mlops_nb.promote("iris", 2, "production", policy=missing, store=reg)


def test_policy_file_beside_the_registry_and_bad_policies(reg, tmp_path):
    _own_policy(reg)
    d, _, _ = train(reg, 0.001)
    mlops_nb.register(d, name="iris", store=reg)
    policy = tmp_path / "strict.toml"
    policy.write_text('[aliases.production]\nmetrics = [{name = "accuracy", min = 0.99}]\n')
    with pytest.raises(PromotionRefused, match="strict.toml"):
        mlops_nb.promote("iris", 1, "production", policy=str(policy), store=reg)
    assert mlops_nb.promote("iris", 1, "staging", policy=str(policy), store=reg).status == "promoted"  # no gates there
    bad = tmp_path / "bad.toml"
    bad.write_text("[aliases.production\n")
    with pytest.raises(PolicyError, match="Cannot read the policy file"):
        mlops_nb.promote("iris", 1, "production", policy=str(bad), store=reg)
    bad.write_text('[aliases.production]\nmetric = []\n')
    with pytest.raises(PolicyError, match=r"unknown key\(s\) \['metric'\]"):
        mlops_nb.promote("iris", 1, "production", policy=str(bad), store=reg)
    bad.write_text('[aliases.production]\nmetrics = [{name = "accuracy", min = "high"}]\n')
    with pytest.raises(PolicyError, match="must be a number"):
        mlops_nb.promote("iris", 1, "production", policy=str(bad), store=reg)
    with pytest.raises(PolicyError, match="does not exist"):
        mlops_nb.promote("iris", 1, "production", policy=str(tmp_path / "none.toml"), store=reg)


def test_default_policy_is_read_beside_the_sqlite_registry(mlops_home):
    store = mlops_nb.store.get_store()
    d, _, _ = train(store, 0.001)
    mlops_nb.register(d, name="iris")
    (mlops_home / "policy.toml").write_text('[aliases.production]\nmetrics = [{name = "accuracy", min = 0.99}]\n')
    with pytest.raises(PromotionRefused):
        mlops_nb.promote("iris", 1, "production")


def test_approvals_need_a_listed_approver_other_than_the_requester(reg):
    if reg.engine.dialect.name == "postgresql":  # there the actor is the login role, never a name passed in
        pytest.skip("approvals by real PostgreSQL login roles are tested in tests/test_roles.py")
    d, _, _ = train(reg, 1.0)
    mlops_nb.register(d, name="iris", store=reg)
    policy = {"aliases": {"production": {"approvers": ["maria", "li"], "min_approvals": 2}}}
    pending = mlops_nb.promote("iris", 1, "production", actor="maria", reason="ready", policy=policy, store=reg)
    assert pending.status == "pending_approval" and reg.get_alias("iris", "production") is None
    rid = pending.request_id
    with pytest.raises(ApprovalError, match="maria requested this promotion and cannot also approve it"):
        mlops_nb.approve(rid, actor="maria", policy=policy, store=reg)
    with pytest.raises(ApprovalError, match="bob is not an approver"):
        mlops_nb.approve(rid, actor="bob", policy=policy, store=reg)
    first = mlops_nb.approve(rid, actor="li", policy=policy, store=reg)
    assert first.status == "pending_approval" and reg.get_alias("iris", "production") is None
    with pytest.raises(ApprovalError, match="li already approved"):
        mlops_nb.approve(rid, actor="li", policy=policy, store=reg)
    policy["aliases"]["production"]["approvers"].append("sam")
    done = mlops_nb.approve(rid, actor="sam", comment="lgtm", policy=policy, store=reg)
    assert done.status == "promoted" and reg.get_alias("iris", "production") == 1
    assert reg.get_promotion_request(rid)["status"] == "approved"
    with pytest.raises(ApprovalError, match="is approved, not pending"):
        mlops_nb.approve(rid, actor="maria", policy=policy, store=reg)
    events = mlops_nb.audit("iris", store=reg)
    actions = [e["action"] for e in events]
    assert actions == ["register", "promotion_requested", "approval_refused", "approval_refused", "approve",
                       "approval_refused", "promote"]  # fmt: skip
    assert events[-1]["payload"]["approvers"] == ["li", "sam"] and events[-1]["actor"] == "sam"


def test_clean_lineage_gate_refuses_dirty_unvalidated_and_stale(reg, tmp_path, monkeypatch):
    _own_policy(reg)
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "notes.txt").write_text("committed")
    subprocess.run([*git, "add", "notes.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    (repo / "notes.txt").write_text("changed since")
    monkeypatch.chdir(repo)  # runs record this dirty work tree
    d, _, _ = train(reg, 1.0)
    mlops_nb.register(d, name="iris", store=reg)
    policy = {"aliases": {"production": {"clean_lineage": True}}}
    with pytest.raises(PromotionRefused) as refused:
        mlops_nb.promote("iris", 1, "production", policy=policy, store=reg)
    failed = {g["gate"] for g in refused.value.gates if not g["passed"]}
    assert failed == {"git clean", "notebook validated"}
    assert "run mlops-nb validate" in str(refused.value) or "cannot be found" in str(refused.value)
    policy = {"aliases": {"production": {"clean_lineage": True, "allow_dirty": True, "require_validated": False}}}
    assert mlops_nb.promote("iris", 1, "production", policy=policy, store=reg).status == "promoted"
    stale = [{"kind": "stale", "name": "X_train", "message": "stale: X_train was made from df before df changed"}]
    d2, _, run2 = train(reg, 0.5, warnings=stale)
    mlops_nb.register(d2, name="iris", store=reg)
    with pytest.raises(PromotionRefused, match=f"no stale inputs: run {run2[:8]}: stale: X_train was made from df"):
        mlops_nb.promote("iris", 2, "production", policy=policy, store=reg)


def test_stale_input_upstream_blocks_promotion(reg):
    _own_policy(reg)
    """A warning on the run that made the training data (not the training run itself) also blocks."""
    import numpy as np

    from sklearn.linear_model import LogisticRegression

    raw = np.asarray(X)
    with mlops_nb.track(name="prep", inputs={"raw": raw}, store=reg) as prep:
        features = raw * 2.0
        prep.log_output("features", features)
    with reg.engine.begin() as conn:
        from mlops_nb.store import schema

        conn.execute(schema.runs.update().where(schema.runs.c.id == prep.id).values(
            warnings=[{"kind": "hidden", "name": "raw", "message": "hidden: raw was defined by a deleted cell"}]))
    with mlops_nb.track(name="fit", inputs={"features": features}, store=reg):
        model = LogisticRegression(max_iter=300).fit(features, Y)
        mlops_nb.log_metric("accuracy", model.score(features, Y))
        digest = mlops_nb.log_model(model)
    mlops_nb.register(digest, name="iris", store=reg)
    policy = {"aliases": {"production": {"clean_lineage": True, "allow_dirty": True, "require_validated": False}}}
    with pytest.raises(PromotionRefused, match=f"run {prep.id[:8]}: hidden: raw was defined by a deleted cell"):
        mlops_nb.promote("iris", 1, "production", policy=policy, store=reg)


def test_unfitted_models_and_non_models_are_refused(reg):
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(RegistryError, match="LogisticRegression is not fitted yet: call fit"):
        mlops_nb.register(LogisticRegression(), name="iris", store=reg)
    with pytest.raises(RegistryError, match="A DataFrame is not a model"):
        mlops_nb.register(pd.DataFrame({"a": [1]}), name="iris", store=reg)
    assert mlops_nb.models(store=reg) == []
