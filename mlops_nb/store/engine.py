"""Database engines, transactions and schema set-up shared by every store method.

SQLite runs in WAL mode with a busy timeout, and write transactions start with
``BEGIN IMMEDIATE`` so that two writers queue instead of failing half-way with
"database is locked".  Schema creation happens inside such a transaction (or
under a PostgreSQL advisory lock), so two processes opening a fresh store at
the same moment cannot race.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, select, text
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    NoSuchModuleError,
    OperationalError,
)

from ..errors import ConfigError, SchemaVersionError, StoreError
from . import schema
from .migrations import MIGRATIONS

BUSY_TIMEOUT_MS = 30_000
_RETRIES = 8
# Arbitrary constant shared by every process: the advisory lock taken while
# creating or migrating a PostgreSQL schema.
_PG_LOCK_KEY = 0x6D6C6F7073


def make_engine(url: str) -> Engine:
    """Create an engine for ``url`` with the settings mlops_nb relies on."""
    try:
        if url.startswith("sqlite"):
            _ensure_sqlite_folder(url)
            engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
            _configure_sqlite(engine)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError) as exc:
        hint = ""
        if url.startswith("postgres"):
            hint = " For PostgreSQL install the driver: pip install 'mlops_nb[postgres]'."
        raise ConfigError(f"Cannot use store URL {url!r}: {exc}.{hint}", url=url) from None
    return engine


def _ensure_sqlite_folder(url: str) -> None:
    path = url.split("///", 1)[-1] if "///" in url else ""
    if path and path != ":memory:" and not path.startswith("file:"):
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"Cannot create the folder for the registry database {path!r}: {exc}. "
                "Choose a writable location with MLOPS_NB_HOME or %mlops init --store.",
                url=url,
            ) from None


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # pragma: no cover - trivial
        # Let SQLAlchemy's begin event, not pysqlite, decide when transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One atomic write; on SQLite the write lock is taken up front."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn


@contextlib.contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A consistent snapshot for several SELECTs."""
    with engine.connect() as conn, conn.begin():
        yield conn


def retrying(fn, *args, **kwargs):
    """Call ``fn`` again when the database reports a transient lock or busy error.

    The busy timeout covers almost every case; this catches the rest (for
    example a WAL checkpoint holding the lock longer than the timeout).
    """
    delay = 0.05
    for attempt in range(_RETRIES):
        try:
            return fn(*args, **kwargs)
        except DBAPIError as exc:
            message = str(exc).lower()
            transient = isinstance(exc, OperationalError) and (
                "locked" in message or "busy" in message or "could not serialize" in message
            )
            if not transient or attempt == _RETRIES - 1:
                hint = " Another process held it too long: retry later." if transient else ""
                raise StoreError(
                    f"The registry database could not be written: {exc.orig}.{hint}",
                    cause=str(exc.orig),
                ) from exc
            time.sleep(delay + random.random() * delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


def ensure_schema(engine: Engine) -> int:
    """Create missing tables and migrate older schemas; return the schema version."""

    def _work() -> int:
        with write_transaction(engine) as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            schema.metadata.create_all(conn, checkfirst=True)
            row = conn.execute(
                select(schema.schema_info.c.value).where(schema.schema_info.c.key == "schema_version")
            ).first()
            if row is None:
                conn.execute(
                    schema.schema_info.insert().values(key="schema_version", value=str(schema.SCHEMA_VERSION))
                )
                return schema.SCHEMA_VERSION
            version = int(row[0])
            if version > schema.SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"The registry at {engine.url.render_as_string(hide_password=True)} has schema "
                    f"version {version}, newer than this mlops_nb understands ({schema.SCHEMA_VERSION}). "
                    "Upgrade mlops_nb: pip install -U mlops_nb.",
                    found=version,
                    supported=schema.SCHEMA_VERSION,
                )
            for target in range(version + 1, schema.SCHEMA_VERSION + 1):
                MIGRATIONS[target](conn)
            if version < schema.SCHEMA_VERSION:
                conn.execute(
                    schema.schema_info.update()
                    .where(schema.schema_info.c.key == "schema_version")
                    .values(value=str(schema.SCHEMA_VERSION))
                )
            return schema.SCHEMA_VERSION

    try:
        return retrying(_work)
    except SchemaVersionError:
        raise
    except StoreError as exc:
        # e.g. not a database, unreadable file, server unreachable
        raise StoreError(
            f"Cannot open the registry database {engine.url.render_as_string(hide_password=True)}: "
            f"{exc.cause}. Check the URL and that the database is reachable and is an mlops_nb "
            "registry, or choose another location with MLOPS_NB_HOME, MLOPS_NB_STORE_URL or "
            "%mlops init --store.",
            url=str(engine.url),
            cause=exc.cause,
        ) from None


def now() -> float:
    """Current time as stored in every timestamp column."""
    return time.time()
