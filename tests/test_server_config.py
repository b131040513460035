"""`c.MlopsNb.store_url` in the Jupyter config points the sidebar API at another registry than the root's."""

from __future__ import annotations

import json

import pytest

from mlops_nb.store import clear_cache

from sidebar_support import build_registry

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def elsewhere(tmp_path_factory, monkeypatch):
    for var in ("MLOPS_NB_HOME", "MLOPS_NB_STORE_URL", "MLOPS_NB_ARTIFACTS_URL", "MLOPS_NB_NOTEBOOK"):
        monkeypatch.delenv(var, raising=False)
    folder = tmp_path_factory.mktemp("team-registry")
    built = build_registry(folder)
    built["store"].close()
    yield folder
    clear_cache()


@pytest.fixture
def jp_server_config(elsewhere):
    return {
        "ServerApp": {"jpserver_extensions": {"mlops_nb.server": True}},
        "MlopsNb": {"store_url": f"sqlite:///{elsewhere / '.mlops' / 'registry.db'}"},
    }


async def test_configured_store_url_is_used(jp_fetch, jp_root_dir, elsewhere):
    info = json.loads((await jp_fetch("mlops-nb", "api", "registry")).body)
    assert info["store_url"] == f"sqlite:///{elsewhere / '.mlops' / 'registry.db'}" and info["exists"]
    runs = json.loads((await jp_fetch("mlops-nb", "api", "runs")).body)["runs"]
    assert len(runs) == 4
    models = json.loads((await jp_fetch("mlops-nb", "api", "models")).body)["models"]
    assert [m["name"] for m in models] == ["iris"]
    assert not (jp_root_dir / ".mlops").exists()
