"""The sidebar API acts as the Jupyter user the identity provider names (here: a named login, "maria")."""

from __future__ import annotations

import json

import pytest
from jupyter_server.auth.identity import IdentityProvider, User

import mlops_nb

from sidebar_support import registry  # noqa: F401  (fixture)

pytest_plugins = ["pytest_jupyter.jupyter_server"]


class MariaLogin(IdentityProvider):
    """The token logs in the user ``maria`` (as JupyterHub would name her)."""

    async def get_user(self, handler):
        user = await super().get_user(handler)
        return None if user is None else User(username="maria", name="Maria")


@pytest.fixture
def jp_server_config():
    return {
        "ServerApp": {
            "jpserver_extensions": {"mlops_nb.server": True},
            "identity_provider_class": "test_server_identity.MariaLogin",
        }
    }


async def test_promotions_and_approvals_are_made_by_the_jupyter_user(jp_fetch, registry, jp_root_dir):
    store = registry["store"]
    (jp_root_dir / ".mlops" / "policy.toml").write_text('[aliases.production]\napprovers = ["maria"]\n')
    info = json.loads((await jp_fetch("mlops-nb", "api", "registry")).body)
    assert info["user"] == "maria"
    # Ana asks from her notebook; Maria approves from the sidebar.
    request = mlops_nb.promote("iris", 2, "production", actor="ana", reason="v2 is better", store=store)
    assert request.status == "pending_approval"
    response = await jp_fetch(
        "mlops-nb", "api", "requests", str(request.request_id), "approve", method="POST", body=json.dumps({"comment": "ok"})
    )
    done = json.loads(response.body)
    assert done["status"] == "promoted" and store.get_alias("iris", "production") == 2
    event = [e for e in mlops_nb.audit("iris", store=store) if e["action"] == "promote"][-1]
    assert event["actor"] == "maria" and event["payload"]["requester"] == "ana"
    # Maria's own request cannot be approved by Maria.
    own = json.loads((await jp_fetch("mlops-nb", "api", "models", "iris", "promote", method="POST",
                                     body=json.dumps({"version": 1, "alias": "production"}))).body)  # fmt: skip
    assert own["status"] == "pending_approval"
    from tornado.httpclient import HTTPClientError

    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch("mlops-nb", "api", "requests", str(own["request_id"]), "approve", method="POST", body="{}")
    assert refused.value.code == 409 and "cannot also approve" in json.loads(refused.value.response.body)["error"]
    assert store.get_alias("iris", "production") == 2
