"""Shared fixtures: every test gets its own registry folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlops_nb import config
from mlops_nb.store import clear_cache, get_store

ROOT = Path(__file__).resolve().parents[1]

# The suite's recorders exit with their kernel (tests kill them, wait for them, count them);
# tests/test_recorder_spare.py turns spare recorders on where it tests them.
os.environ.setdefault("MLOPS_NB_RECORDER_SPARE_S", "0")
# Likewise a test's `mlops-nb` commands leave no warm CLI server behind to outlive the test;
# tests/test_cli_warm.py turns them on where it tests them.
os.environ.setdefault("MLOPS_NB_CLI_SPARE_S", "0")


@pytest.fixture
def mlops_home(tmp_path, monkeypatch) -> Path:
    """A fresh embedded store under ``tmp_path/.mlops`` for this test (and its subprocesses)."""
    home = tmp_path / ".mlops"
    for var in ("MLOPS_NB_STORE_URL", "MLOPS_NB_ARTIFACTS_URL", "MLOPS_NB_PROJECT", "MLOPS_NB_JOB_RUN_ID", "MLOPS_NB_BATCH_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLOPS_NB_HOME", str(home))
    monkeypatch.setenv("MLOPS_NB_SPOOL_DIR", str(tmp_path / "spool"))  # never the user's own spool
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


# ---- shared backends: a real PostgreSQL server and an S3-compatible server, both on 127.0.0.1 ------
@pytest.fixture(scope="session")
def postgres_url():
    """URL of a throwaway PostgreSQL server for the whole test session (Debian's binaries; see pg_server.py)."""
    from pg_server import PostgresServer

    server = PostgresServer()
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
def pg_database(postgres_url):
    """A fresh, empty database on the session's PostgreSQL server, dropped after the test; its URL."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{postgres_url.rsplit('/', 1)[0]}/{name}"
    clear_cache()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-writer"])
def db_url(request, tmp_path) -> str:
    """The registry database URL of this test: on a SQLite file, on PostgreSQL as the tables' owner,
    and on PostgreSQL with team roles as a login role holding only ``writer`` (least privilege)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/registry.db"
    if request.param == "postgresql-writer":
        return request.getfixturevalue("pg_writer_database")
    return request.getfixturevalue("pg_database")


@pytest.fixture
def pg_writer_database(pg_database, tmp_path) -> str:
    """``pg_database`` with team roles installed by its owner; the URL of a fresh login role holding writer."""
    import uuid

    from mlops_nb import admin
    from mlops_nb.store import SqlStore

    owner = SqlStore(pg_database, str(tmp_path / "owner-artifacts"))
    writer = f"writer_{uuid.uuid4().hex[:8]}"
    admin.init_roles(store=owner)
    admin.grant(writer, "writer", store=owner)
    owner.close()
    scheme, rest = pg_database.split("://", 1)
    return f"{scheme}://{writer}@{rest.split('@', 1)[1]}"


@pytest.fixture(scope="session")
def s3_endpoint():
    """An S3-compatible server (moto's server mode) on 127.0.0.1 for the session; its endpoint URL.

    The AWS variables point every s3fs client of this process and of its
    subprocesses (kernels, jobs) at it, as a team would point them at MinIO or S3.
    """
    import logging
    import socket

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {
            "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_SESSION_TOKEN": "testing",
        }.items():  # fmt: skip
            mp.setenv(key, value)
        mp.delenv("AWS_PROFILE", raising=False)
        yield endpoint
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint) -> str:
    """A new, empty bucket on the test S3 server; its name."""
    import uuid

    import s3fs

    name = f"mlops-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(name)
    return name


@pytest.fixture(params=["local", "s3"])
def artifacts_url(request, tmp_path) -> str:
    """An artifact location, once a local folder and once a prefix in a bucket of the test S3 server."""
    if request.param == "local":
        return str(tmp_path / "artifacts")
    return f"s3://{request.getfixturevalue('s3_bucket')}/team/artifacts"
