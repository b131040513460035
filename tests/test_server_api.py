"""The sidebar's REST API through a real jupyter_server (pytest-jupyter), on a registry made by the Python API."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from tornado.httpclient import HTTPClientError

import mlops_nb
from mlops_nb.environment import current_user
from mlops_nb.store import clear_cache

from sidebar_support import jp_server_config, registry, spooled_run  # noqa: F401  (fixtures)

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def api(jp_fetch, registry):
    async def call(*parts, method="GET", body=None, **kwargs):
        if body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        response = await jp_fetch("mlops-nb", "api", *parts, method=method, body=body, **kwargs)
        return json.loads(response.body)

    return call


async def error_of(call) -> tuple[int, dict]:
    with pytest.raises(HTTPClientError) as info:
        await call
    return info.value.code, json.loads(info.value.response.body)


async def test_runs_list_page_and_order(api, registry):
    page = await api("runs", params={"max_results": 2})
    assert len(page["runs"]) == 2 and page["next_page_token"]
    rest = await api("runs", params={"max_results": 2, "page_token": page["next_page_token"]})
    ids = [r["id"] for r in page["runs"] + rest["runs"]]
    assert set(registry["runs"].values()) <= set(ids) and len(ids) == len(set(ids)) == 4
    names = [r["name"] for r in page["runs"] + rest["runs"]]
    assert names[0] == "elsewhere"  # newest first
    best = await api("runs", params={"order_by": "metrics.accuracy DESC", "max_results": 10})
    scores = [r["metrics"]["accuracy"] for r in best["runs"] if "accuracy" in r["metrics"]]
    assert scores == sorted(scores, reverse=True)


async def test_run_details_have_params_metrics_inputs_lineage_and_source(api, registry):
    run_id = registry["runs"]["train-C1.0"]
    run = await api("runs", run_id[:8])
    assert run["id"] == run_id and run["params"]["C"] == 1.0 and run["params"]["clf.max_iter"] == 500
    assert 0.5 < run["metrics"]["accuracy"] <= 1.0
    assert run["notebook_path"] == str(registry["notebook"])
    (features,) = run["inputs"]
    assert features["name"] == "features"
    assert [p["name"] for p in features["produced_by"]] == ["prepare"]
    assert run["models"][0]["registered"] == ["iris:2"]
    assert run["lineage"]["root"]["kind"] == "run" and run["lineage"]["root"]["children"]
    assert "source" in run and "environment" in run  # a block tracked with track() has no cell source
    tree = await api("runs", run_id, "lineage")
    assert tree == run["lineage"]
    model_tree = await api("lineage", params={"ref": "model:iris@production"})
    assert model_tree["root"]["kind"] == "model"


async def test_notebook_runs_by_path_newest_first_with_warnings(api, registry):
    found = await api("notebook-runs", params={"path": "analysis.ipynb"})
    assert [r["name"] for r in found["runs"]] == ["train-C1.0", "train-C0.05", "prepare"]
    warned = found["runs"][1]
    assert warned["warnings"][0]["message"] == "features changed after this run read it"
    other = await api("notebook-runs", params={"path": "other.ipynb"})
    assert [r["name"] for r in other["runs"]] == ["elsewhere"]
    assert (await api("notebook-runs", params={"path": "new.ipynb"}))["runs"] == []


async def test_models_versions_aliases(api):
    listing = await api("models")
    (iris,) = listing["models"]
    assert iris["name"] == "iris" and iris["aliases"] == {"production": 1}
    assert [v["version"] for v in iris["versions"]] == [2, 1]
    assert iris["versions"][1]["aliases"] == ["production"]
    model = await api("models", "iris")
    assert [e["action"] for e in model["audit"]][:1] and model["requests"] == []
    version = await api("models", "iris", "versions", "2")
    assert version["ref"] == "iris:2" and version["params"]["C"] == 1.0


async def test_promote_and_rollback_move_the_alias_with_the_jupyter_user_as_actor(api, registry):
    store = registry["store"]
    done = await api("models", "iris", "promote", method="POST", body={"version": 2, "alias": "production", "reason": "better"})
    assert done["status"] == "promoted" and done["previous_version"] == 1
    assert store.get_alias("iris", "production") == 2
    event = [e for e in mlops_nb.audit("iris", store=store) if e["action"] == "promote"][-1]
    assert event["reason"] == "better" and event["actor"] == current_user()  # who runs the server, behind a token login
    back = await api("models", "iris", "rollback", method="POST", body={"alias": "production"})
    assert back["status"] == "rolled_back" and store.get_alias("iris", "production") == 1


async def test_policy_refusal_is_409_with_gates_and_is_audited(api, registry, jp_root_dir):
    (jp_root_dir / ".mlops" / "policy.toml").write_text('[aliases.production]\nmetrics = [{name = "accuracy", min = 0.999}]\n')
    code, body = await error_of(api("models", "iris", "promote", method="POST", body={"version": 2, "alias": "production"}))
    assert code == 409 and body["kind"] == "PromotionRefused"
    assert body["gates"] and not body["gates"][0]["passed"] and "accuracy" in body["error"]
    assert registry["store"].get_alias("iris", "production") == 1
    assert mlops_nb.audit("iris", store=registry["store"])[-1]["action"] == "promotion_refused"


async def test_approval_flow(api, registry, jp_root_dir):
    (jp_root_dir / ".mlops" / "policy.toml").write_text('[aliases.staging]\napprovers = ["maria"]\n')
    pending = await api("models", "iris", "promote", method="POST", body={"version": 2, "alias": "staging"})
    assert pending["status"] == "pending_approval" and pending["request_id"]
    listed = await api("requests")
    assert [r["id"] for r in listed["requests"]] == [pending["request_id"]]
    # The server's user is not an approver: refused, with the reason, and nothing moved.
    code, body = await error_of(api("requests", str(pending["request_id"]), "approve", method="POST", body={}))
    assert code == 409 and ("not an approver" in body["error"] or "cannot also approve" in body["error"])
    assert registry["store"].get_alias("iris", "staging") is None


async def test_alerts(api, registry):
    (alert,) = (await api("alerts"))["alerts"]
    assert alert["id"] == registry["alert_id"] and alert["monitor"] == "iris-watch" and alert["kind"] == "error"
    assert "No .parquet or .csv file matches" in alert["message"]
    code, body = await error_of(api("alerts", params={"limit": "lots"}))
    assert code == 400 and "error" in body


async def test_drift_checks(api, registry):
    checks = (await api("drift"))["checks"]
    (check,) = checks
    assert check["id"] == registry["drift_id"] and check["dataset_drift"] is True
    drifted = {c["column"]: c["drifted"] for c in check["columns"]}
    assert drifted == {"amount": True, "channel": False}
    assert check["badge"] == {"text": "drift detected (1 of 2 columns drifted)", "level": "bad"}  # never "ok" beside a drift


async def test_schedules_history_and_trigger(api, registry):
    (nightly,) = (await api("schedules"))["schedules"]
    assert nightly["name"] == "nightly" and nightly["cron"] == "0 3 * * *" and nightly["next_time"] > 0
    assert nightly["last_status"] is None
    assert (await api("schedules", "nightly", "history"))["firings"] == []
    fired = await api("schedules", "nightly", "trigger", method="POST", body={"reason": "check"})
    assert fired["status"] == "requested"
    (firing,) = (await api("schedules", "nightly", "history"))["firings"]
    assert firing["id"] == fired["firing_id"] and firing["status"] == "requested"
    assert (await api("schedules"))["schedules"][0]["last_status"] == "requested"
    event = registry["store"].audit_log("schedule:nightly")[-1]
    assert event["action"] == "schedule.trigger" and "JupyterLab sidebar" in event["reason"]


@pytest.mark.parametrize(
    "parts, kwargs, status, words",
    [
        (("runs", "deadbeef"), {}, 404, "run"),
        (("runs",), {"params": {"max_results": "lots"}}, 400, "whole number"),
        (("runs",), {"params": {"max_results": "0"}}, 400, "between"),
        (("runs",), {"params": {"page_token": "x"}}, 400, "page_token"),
        (("runs",), {"params": {"order_by": "metrics.accuracy SIDEWAYS"}}, 400, "order_by"),
        (("notebook-runs",), {"params": {"path": "notes.txt"}}, 400, ".ipynb"),
        (("models", "nope"), {}, 404, "nope"),
        (("models", "iris", "versions", "9"), {}, 404, "9"),
        (("models", "iris", "versions", "99999999999999999999"), {}, 400, "too large"),
        (("requests", "99999999999999999999", "approve"), {"method": "POST", "body": {}}, 400, "too large"),
        (("schedules", "nope", "history"), {}, 404, "nope"),
        (("lineage",), {}, 400, "ref"),
        (("models", "iris", "promote"), {"method": "POST", "body": "{not json"}, 400, "JSON"),
        (("models", "iris", "promote"), {"method": "POST", "body": "[1]"}, 400, "object"),
        (("models", "iris", "promote"), {"method": "POST", "body": {"alias": "production"}}, 400, "version"),
        (("models", "iris", "promote"), {"method": "POST", "body": {"version": "two", "alias": "x"}}, 400, "version"),
        (("models", "iris", "promote"), {"method": "POST", "body": {"version": 7, "alias": "production"}}, 404, "7"),
        (("models", "iris", "promote"), {"method": "POST", "body": {"version": 2, "alias": "bad alias"}}, 400, "alias"),
        (("models", "iris", "rollback"), {"method": "POST", "body": {"alias": "production"}}, 400, "no earlier holder"),
        (("models", "iris", "rollback"), {"method": "POST", "body": {"alias": "ghost"}}, 404, "ghost"),
        (("requests", "99", "approve"), {"method": "POST", "body": {}}, 404, "99"),
        (("schedules", "nope", "trigger"), {"method": "POST", "body": {}}, 404, "nope"),
    ],
)
async def test_bad_input_is_a_4xx_json_error(api, parts, kwargs, status, words):
    code, body = await error_of(api(*parts, **kwargs))
    assert code == status, body
    assert set(body) <= {"error", "kind", "gates"} and words.lower() in body["error"].lower()
    assert "Traceback" not in body["error"]


async def test_filter_with_the_run_search_grammar(api, registry):
    found = await api("runs", params={"filter": "metrics.accuracy > 0.9 and status = 'finished'"})
    assert [r["name"] for r in found["runs"]] == ["train-C1.0", "train-C0.05"]
    by_param = await api("runs", params={"filter": "params.C < 0.1"})
    assert [r["id"] for r in by_param["runs"]] == [registry["runs"]["train-C0.05"]]
    code, body = await error_of(api("runs", params={"filter": "metrics.accuracy >>> 1"}))
    assert code == 400 and body["kind"] == "SearchError"


async def test_authentication_required(jp_fetch, registry):
    for parts, method, body in [(("runs",), "GET", None), (("models",), "GET", None),
                                (("models", "iris", "promote"), "POST", json.dumps({"version": 2, "alias": "production"}))]:  # fmt: skip
        with pytest.raises(HTTPClientError) as info:
            await jp_fetch("mlops-nb", "api", *parts, method=method, body=body, headers={"Authorization": ""},
                           follow_redirects=False)  # fmt: skip
        assert info.value.code in (302, 403)
    assert registry["store"].get_alias("iris", "production") == 1


async def test_cookie_authenticated_writes_need_the_xsrf_token(http_server_client, jp_base_url, jp_serverapp, registry):
    """A browser session (login cookie) cannot promote without the _xsrf token, and can with it."""
    token = jp_serverapp.identity_provider.token
    login = await http_server_client.fetch(f"{jp_base_url}login?token={quote(token)}", follow_redirects=False, raise_error=False)
    cookies = [c.split(";", 1)[0] for c in login.headers.get_list("Set-Cookie")]
    cookie = "; ".join(cookies)
    xsrf = next((c.split("=", 1)[1] for c in cookies if c.startswith("_xsrf=")), None)
    if xsrf is None:  # the XSRF cookie comes with the first page
        page = await http_server_client.fetch(f"{jp_base_url}tree", headers={"Cookie": cookie}, raise_error=False)
        more = [c.split(";", 1)[0] for c in page.headers.get_list("Set-Cookie")]
        cookie = "; ".join(cookies + more)
        xsrf = next(c.split("=", 1)[1] for c in more if c.startswith("_xsrf="))
    url = f"{jp_base_url}mlops-nb/api/models/iris/promote"
    body = json.dumps({"version": 2, "alias": "production"})
    listing = await http_server_client.fetch(f"{jp_base_url}mlops-nb/api/models", headers={"Cookie": cookie})
    assert listing.code == 200  # the cookie logs in
    refused = await http_server_client.fetch(url, method="POST", body=body, headers={"Cookie": cookie}, raise_error=False)
    assert refused.code == 403
    assert registry_store_alias(registry) == 1
    accepted = await http_server_client.fetch(
        url, method="POST", body=body, headers={"Cookie": cookie, "X-XSRFToken": xsrf}, raise_error=False
    )
    assert accepted.code == 200, accepted.body
    assert registry_store_alias(registry) == 2


def registry_store_alias(registry) -> int | None:
    return registry["store"].get_alias("iris", "production")


async def test_no_registry_yet_gives_empty_answers_not_a_new_folder(jp_fetch, jp_root_dir, monkeypatch):
    for var in ("MLOPS_NB_HOME", "MLOPS_NB_STORE_URL", "MLOPS_NB_ARTIFACTS_URL"):
        monkeypatch.delenv(var, raising=False)
    info = json.loads((await jp_fetch("mlops-nb", "api", "registry")).body)
    assert info["exists"] is False and info["store_url"].endswith(".mlops/registry.db")
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("mlops-nb", "api", "runs")
    assert err.value.code == 404 and "No registry yet" in json.loads(err.value.response.body)["error"]
    assert not (jp_root_dir / ".mlops").exists()



async def test_a_damaged_registry_is_a_json_error_not_a_traceback(jp_fetch, jp_root_dir, monkeypatch):
    for var in ("MLOPS_NB_HOME", "MLOPS_NB_STORE_URL", "MLOPS_NB_ARTIFACTS_URL"):
        monkeypatch.delenv(var, raising=False)
    (jp_root_dir / ".mlops").mkdir()
    (jp_root_dir / ".mlops" / "registry.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("mlops-nb", "api", "runs")
    body = json.loads(err.value.response.body)
    assert err.value.code in (400, 503) and set(body) == {"error", "kind"} and "Traceback" not in body["error"]
    clear_cache()


async def test_registry_says_what_waits_in_the_local_spool_until_it_is_written(api, registry, tmp_path, monkeypatch):
    from mlops_nb.tracking import spool

    monkeypatch.setenv("MLOPS_NB_SPOOL_DIR", str(tmp_path / "spool"))  # the server runs in this process
    store = registry["store"]
    assert (await api("registry"))["spool"] == {"count": 0}
    run_id = spooled_run(store, "offline", reason="connection refused (test)")
    waiting = (await api("registry"))["spool"]
    assert waiting["count"] == 1 and waiting["runs"] == 1 and waiting["bytes"] > 0 and waiting["oldest"] > 0
    assert waiting["reason"] == "connection refused (test)"
    assert waiting["line"].startswith(f"{store.url}: 1 record(s) of 1 run(s)") and "connection refused (test)" in waiting["line"]
    assert spool.replay(store.url) == (1, None)
    assert (await api("registry"))["spool"] == {"count": 0}
    assert (await api("runs", run_id))["name"] == "offline"  # written by the replay
