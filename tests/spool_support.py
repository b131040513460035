"""Shared by the spool tests: a PostgreSQL server of the test's own, names of the runs, the CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlops_nb import config
from mlops_nb.store import clear_cache, get_store


@pytest.fixture
def pg(mlops_home, tmp_path, monkeypatch):
    """A PostgreSQL server of this test's own, with the test's registry on it; stopped afterwards.

    Each fault test stops and starts its own server; the session's shared one stays up for the others.
    """
    from pg_server import PostgresServer

    server = PostgresServer()
    url = server.start()
    monkeypatch.setenv("MLOPS_NB_STORE_URL", url)
    monkeypatch.setenv("MLOPS_NB_ARTIFACTS_URL", str(tmp_path / "artifacts"))
    config.reset()
    clear_cache()
    get_store(create=True)  # the registry exists before the faults start
    yield server
    clear_cache()
    server.stop()


def run_names(url: str) -> list[str]:
    """Names of every run in the registry at ``url``, sorted (duplicates kept: they would be a bug)."""
    clear_cache()
    return sorted(r["name"] for r in get_store(url).list_runs())


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``mlops-nb ARGS`` in a subprocess, as a user types it."""
    return subprocess.run([sys.executable, "-m", "mlops_nb.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)  # fmt: skip
