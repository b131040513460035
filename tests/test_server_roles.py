"""The sidebar's writes under team roles: ``c.MlopsNb.roles`` refuses with 403 and the reason, and on a
PostgreSQL registry shared through one database role each request's Jupyter user is recorded beside it."""

from __future__ import annotations

import json
import uuid

import pytest
from jupyter_server.auth.identity import IdentityProvider, User
from tornado.httpclient import HTTPClientError

import mlops_nb
from mlops_nb import admin
from mlops_nb.store import SqlStore, clear_cache

from registry_support import train

pytest_plugins = ["pytest_jupyter.jupyter_server"]


class HeaderLogin(IdentityProvider):
    """The token logs in the user the ``X-Test-User`` header names (as a hub would name each person)."""

    async def get_user(self, handler):
        user = await super().get_user(handler)
        return None if user is None else User(username=handler.request.headers.get("X-Test-User", "maria"))


@pytest.fixture
def team_db(pg_database, tmp_path, monkeypatch):
    """A PostgreSQL registry with team roles; the Jupyter server's shared role srv holds writer and approver,
    and ana, who registers iris v1 and v2 from her own login, holds writer."""
    for var in ("MLOPS_NB_HOME", "MLOPS_NB_STORE_URL", "MLOPS_NB_ARTIFACTS_URL", "MLOPS_NB_POLICY", "MLOPS_NB_USER"):
        monkeypatch.delenv(var, raising=False)
    artifacts = str(tmp_path / "artifacts")
    owner = SqlStore(pg_database, artifacts)
    admin.init_roles(store=owner)
    tag = uuid.uuid4().hex[:6]
    srv, ana = f"srv_{tag}", f"ana_{tag}"
    for user, role in ((srv, "writer"), (srv, "approver"), (ana, "writer"), ("admin_" + tag, "admin")):
        admin.grant(user, role, store=owner)

    def url(user: str) -> str:
        scheme, rest = pg_database.split("://", 1)
        return f"{scheme}://{user}@{rest.split('@', 1)[1]}"

    policy = tmp_path / "policy.toml"
    policy.write_text(f'[aliases.production]\napprovers = ["{srv}"]\n')
    admin.load_policy(policy, store=SqlStore(url("admin_" + tag), artifacts))
    ana_store = SqlStore(url(ana), artifacts)
    for C in (1.0, 0.1):
        mlops_nb.register(train(ana_store, C)[0], name="iris", store=ana_store)
    yield {"url": url(srv), "artifacts": artifacts, "srv": srv, "ana": ana, "ana_store": ana_store, "owner": owner}
    clear_cache()


@pytest.fixture
def jp_server_config(request):
    config = {
        "ServerApp": {"jpserver_extensions": {"mlops_nb.server": True}, "identity_provider_class": "test_server_roles.HeaderLogin"},
        "MlopsNb": {"roles": {"maria": ["approver", "writer"], "bob": "writer", "*": ["reader"]}},
    }
    if "team_db" in request.fixturenames:
        team = request.getfixturevalue("team_db")
        config["MlopsNb"].update(store_url=team["url"], artifacts_url=team["artifacts"])
    return config


async def _post(jp_fetch, user: str, *path: str, body: dict | None = None):
    response = await jp_fetch("mlops-nb", "api", *path, method="POST", body=json.dumps(body or {}), headers={"X-Test-User": user})
    return json.loads(response.body)


async def _refused(jp_fetch, user: str, *path: str, body: dict | None = None) -> tuple[int, str]:
    with pytest.raises(HTTPClientError) as refused:
        await _post(jp_fetch, user, *path, body=body)
    return refused.value.code, json.loads(refused.value.response.body)["error"]


async def test_writes_need_the_role_the_mapping_gives(jp_fetch, jp_root_dir, monkeypatch):
    for var in ("MLOPS_NB_HOME", "MLOPS_NB_STORE_URL", "MLOPS_NB_ARTIFACTS_URL", "MLOPS_NB_POLICY"):
        monkeypatch.delenv(var, raising=False)
    home = jp_root_dir / ".mlops"
    store = SqlStore(f"sqlite:///{home / 'registry.db'}", str(home / "artifacts"))
    for C in (1.0, 0.1):
        mlops_nb.register(train(store, C)[0], name="iris", store=store)
    (home / "policy.toml").write_text('[aliases.production]\napprovers = ["maria"]\n')
    pending = await _post(jp_fetch, "bob", "models", "iris", "promote", body={"version": 2, "alias": "production"})
    assert pending["status"] == "pending_approval"
    code, said = await _refused(jp_fetch, "bob", "requests", str(pending["request_id"]), "approve")
    assert code == 403 and "bob may not approve request" in said and "needs the approver role" in said
    code, said = await _refused(jp_fetch, "carol", "models", "iris", "promote", body={"version": 1, "alias": "staging"})
    assert code == 403 and "needs the writer role" in said and "gives carol reader" in said
    assert store.get_alias("iris", "staging") is None
    done = await _post(jp_fetch, "maria", "requests", str(pending["request_id"]), "approve", body={"comment": "ok"})
    assert done["status"] == "promoted" and store.get_alias("iris", "production") == 2
    event = store.audit_log("model:iris")[-1]
    assert event["actor"] == "maria" and event["payload"]["requester"] == "bob"  # on SQLite the Jupyter user acts
    models = json.loads((await jp_fetch("mlops-nb", "api", "models", headers={"X-Test-User": "carol"})).body)
    assert "iris" in json.dumps(models)  # a reader still reads
    store.close()
    clear_cache()


async def test_a_shared_database_role_records_the_jupyter_user_beside_it(jp_fetch, team_db):
    ana_store = team_db["ana_store"]
    request = mlops_nb.promote("iris", 2, "production", reason="v2", store=ana_store)
    assert request.status == "pending_approval"
    code, said = await _refused(jp_fetch, "bob", "requests", str(request.request_id), "approve")
    assert code == 403 and "needs the approver role" in said  # the sidebar's mapping, before the database
    done = await _post(jp_fetch, "maria", "requests", str(request.request_id), "approve", body={"comment": "ok"})
    assert done["status"] == "promoted" and ana_store.get_alias("iris", "production") == 2
    event = ana_store.audit_log("model:iris")[-1]
    assert (event["actor"], event["payload"]["on_behalf_of"]) == (team_db["srv"], "maria")
    assert event["payload"]["requester"] == team_db["ana"]
    # bob may promote (writer), but the alias needs approvers: a request by srv for bob.
    pending = await _post(jp_fetch, "bob", "models", "iris", "promote", body={"version": 1, "alias": "production"})
    assert pending["status"] == "pending_approval"
    asked = ana_store.audit_log("model:iris")[-1]
    assert (asked["action"], asked["actor"], asked["payload"]["on_behalf_of"]) == ("promotion_requested", team_db["srv"], "bob")
    # The database still has the last word: srv requested it, so srv (for maria) cannot approve it.
    code, said = await _refused(jp_fetch, "maria", "requests", str(pending["request_id"]), "approve")
    assert code == 409 and "cannot also approve" in said
