"""Shared fixtures: every test gets its own registry folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlops_nb import config
from mlops_nb.store import clear_cache, get_store

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def mlops_home(tmp_path, monkeypatch) -> Path:
    """A fresh embedded store under ``tmp_path/.mlops`` for this test (and its subprocesses)."""
    home = tmp_path / ".mlops"
    for var in ("MLOPS_NB_STORE_URL", "MLOPS_NB_ARTIFACTS_URL", "MLOPS_NB_PROJECT", "MLOPS_NB_JOB_RUN_ID", "MLOPS_NB_BATCH_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLOPS_NB_HOME", str(home))
    config.reset()
    clear_cache()
    yield home
    config.reset()
    clear_cache()


@pytest.fixture
def store(mlops_home):
    return get_store()


@pytest.fixture
def shell(mlops_home):
    """A real IPython shell with the extension loaded."""
    from IPython.core.interactiveshell import InteractiveShell

    sh = InteractiveShell.instance()
    sh.run_line_magic("load_ext", "mlops_nb")
    yield sh
    sh.run_line_magic("unload_ext", "mlops_nb")
    sh.user_ns.clear()
    sh.init_user_ns()


@pytest.fixture
def kernel_env(mlops_home) -> dict[str, str]:
    """Environment for a kernel or subprocess writing to this test's store."""
    env = dict(os.environ)
    env["MLOPS_NB_HOME"] = str(mlops_home)
    return env
