"""Database engines, transactions and schema set-up shared by every store method.

SQLite runs in WAL mode with a busy timeout, and write transactions start with
``BEGIN IMMEDIATE`` so that two writers queue instead of failing half-way with
"database is locked".  Schema creation happens inside such a transaction (or
under a PostgreSQL advisory lock), so two processes opening a fresh store at
the same moment cannot race.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, make_url, select, text
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    NoSuchModuleError,
    OperationalError,
)

from ..errors import ConfigError, PermissionDenied, SchemaVersionError, StoreDamaged, StoreError
from . import checkpoints, schema
from .hooks import run_read_barriers
from .migrations import MIGRATIONS

# Retry jitter from a private generator: the user's kernel may have seeded the global one.
_JITTER = random.Random()

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
        raise ConfigError(f"Cannot use store URL {_safe(url)!r}: {exc}.{hint}", url=url) from None
    except ImportError as exc:  # the dialect exists but its DBAPI driver is not installed
        raise ConfigError(
            f"The store URL {_safe(url)!r} needs the database driver {exc.name or exc}, which is not "
            f"installed: {_driver_hint(url)}",
            url=url,
            module=exc.name,
        ) from None
    # Reads see what this process wrote in the background (see .hooks).
    event.listen(engine, "engine_connect", _before_read)
    return engine


def _before_read(connection) -> None:
    run_read_barriers()


# Drivers of the dialects people try first; SQLite and PostgreSQL are the tested ones.
_DRIVERS = {
    "postgresql": "pip install 'mlops_nb[postgres]' (psycopg)",
    "postgresql+psycopg": "pip install 'mlops_nb[postgres]' (psycopg)",
    "postgresql+psycopg2": "pip install psycopg2-binary",
    "postgresql+asyncpg": "pip install asyncpg",
    "mysql": "pip install mysqlclient (or use mysql+pymysql:// after pip install pymysql)",
    "mysql+mysqldb": "pip install mysqlclient",
    "mysql+pymysql": "pip install pymysql",
    "mysql+mysqlconnector": "pip install mysql-connector-python",
    "mariadb": "pip install mysqlclient",
    "mssql+pyodbc": "pip install pyodbc",
    "mssql+pymssql": "pip install pymssql",
    "oracle": "pip install oracledb",
    "oracle+oracledb": "pip install oracledb",
}


def _driver_hint(url: str) -> str:
    scheme = url.split("://", 1)[0].lower()
    found = _DRIVERS.get(scheme)
    if found is None:
        return "install the DBAPI package SQLAlchemy names for this dialect, or use sqlite:/// or postgresql+psycopg://."
    return found + ". mlops_nb is tested on SQLite and PostgreSQL."


def _safe(url: str) -> str:
    """``url`` with its password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


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
        # Checkpoints run in a thread of their own (see .checkpoints); this is only the bound.
        cursor.execute(f"PRAGMA wal_autocheckpoint={checkpoints.BACKSTOP_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One atomic write; on SQLite the write lock is taken up front.

    Database errors leave as :class:`StoreError` (``transient`` tells
    :func:`retrying` whether another attempt may succeed).
    """
    sqlite = engine.dialect.name == "sqlite"
    try:
        with engine.connect() as conn:
            if sqlite:
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn
    except DBAPIError as exc:
        raise store_error(exc, engine, "written") from exc
    if sqlite:
        checkpoints.after_write(engine)


@contextlib.contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A consistent snapshot for several SELECTs; database errors leave as :class:`StoreError`."""
    try:
        with engine.connect() as conn, conn.begin():
            yield conn
    except DBAPIError as exc:
        raise store_error(exc, engine, "read") from exc


def _up_to_date(engine: Engine) -> int | None:
    """The schema version when every table exists and no migration is due, else None."""
    from sqlalchemy import inspect

    try:
        with engine.connect() as conn:
            present = set(inspect(conn).get_table_names())
            if not set(schema.metadata.tables) <= present:
                return None
            row = conn.execute(
                select(schema.schema_info.c.value).where(schema.schema_info.c.key == "schema_version")
            ).first()
    except DBAPIError:
        return None  # the full path below says what is wrong, with retries
    return schema.SCHEMA_VERSION if row is not None and int(row[0]) == schema.SCHEMA_VERSION else None


# What SQLite (and PostgreSQL) say when pages of the database are damaged.
_DAMAGE = ("malformed", "not a database", "disk i/o error", "corrupt", "invalid page", "checksum")
_TRANSIENT = ("locked", "busy", "could not serialize", "deadlock")


def _tables_gone(lowered: str) -> bool:
    """The database answers but its registry tables are not there: the file was moved or replaced."""
    return "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered)


def _folder_note(engine: Engine, cause: str) -> str:
    """Why SQLite could not open or write its file, when its folder says (SQLite itself does not)."""
    lowered = cause.lower()
    if engine.dialect.name != "sqlite" or not ("unable to open" in lowered or "readonly" in lowered):
        return ""
    folder = os.path.dirname(engine.url.database or "") or "."
    if not os.path.isdir(folder):
        return f" (the folder {folder} does not exist)"
    if not os.access(folder, os.W_OK):  # SQLite needs to create its -wal and -shm files beside the database
        return f" (the folder {folder} is read-only)"
    return ""


def store_error(exc: DBAPIError, engine: Engine, action: str) -> StoreError:
    """A :class:`StoreError` saying what failed and what to do, for a database error.

    ``action`` is "read" or "written".  The error carries ``cause`` (the
    driver's message), ``transient`` (a lock or serialisation conflict worth
    retrying) and ``damaged`` (the database file itself is corrupt).
    """
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in ("42501", "P0002", "55000"):  # refused by a team-role check, or by our functions' checks
        said = str(exc.orig).splitlines()[0].strip()
        hint = " `mlops-nb admin who` lists who holds which role." if sqlstate == "42501" else ""
        return (PermissionDenied if sqlstate == "42501" else StoreError)(
            f"The registry refused this: {said}.{hint}", cause=said, transient=False, damaged=False, sqlstate=sqlstate
        )
    cause = " ".join(str(exc.orig if exc.orig is not None else exc).split()) or type(exc).__name__
    cause += _folder_note(engine, cause)
    lowered = cause.lower()
    where = engine.url.render_as_string(hide_password=True)
    transient = isinstance(exc, OperationalError) and any(w in lowered for w in _TRANSIENT)
    gone = _tables_gone(lowered)
    damaged = gone or any(w in lowered for w in _DAMAGE)
    if gone:
        hint = (
            " The registry's tables are missing: the database file was moved, replaced or emptied. "
            "Put the registry back (or point MLOPS_NB_STORE at it), then run `mlops-nb doctor`."
        )
    elif damaged:
        hint = (
            " The database is damaged: run `mlops-nb doctor` to check it, then restore it from a backup "
            "(or move the file aside to start a new registry)."
        )
    elif transient:
        hint = " Another process held it too long: retry later."
    elif isinstance(exc, OperationalError):
        hint = " Check that the database is reachable, and writable for writes."
    else:
        hint = ""
    return (StoreDamaged if damaged else StoreError)(
        f"The registry database {where} could not be {action}: {cause}.{hint}",
        cause=cause,
        transient=transient,
        damaged=damaged,
        url=where,
    )


def retrying(fn, *args, **kwargs):
    """Call ``fn`` again when the database reports a transient lock or busy error.

    The busy timeout covers almost every case; this catches the rest (for
    example a WAL checkpoint holding the lock longer than the timeout).
    """
    delay = 0.05
    for attempt in range(_RETRIES):
        try:
            return fn(*args, **kwargs)
        except StoreError as exc:
            if not exc.fields.get("transient") or attempt == _RETRIES - 1:
                raise
        except DBAPIError as exc:  # fn used a connection of its own, outside write_transaction
            message = str(exc).lower()
            transient = isinstance(exc, OperationalError) and any(w in message for w in _TRANSIENT)
            if not transient or attempt == _RETRIES - 1:
                raise StoreError(
                    f"The registry database could not be written: {exc.orig}.",
                    cause=str(exc.orig), transient=transient, damaged=False,
                ) from exc
        time.sleep(delay + _JITTER.random() * delay)
        delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


def ensure_schema(engine: Engine) -> int:
    """Create missing tables and migrate older schemas; return the schema version.

    A registry already up to date is seen with two reads and no write lock (every command
    and kernel opens the store: most of the time there is nothing to create).
    """
    current = _up_to_date(engine)
    if current is not None:
        return current

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
        damaged = bool(exc.fields.get("damaged")) and "not a database" not in exc.cause
        hint = (
            " Its pages are damaged: run `mlops-nb doctor`, then restore the file from a backup."
            if damaged
            else ""
        )
        raise (StoreDamaged if damaged else StoreError)(
            f"Cannot open the registry database {engine.url.render_as_string(hide_password=True)}: "
            f"{exc.cause}.{hint} Check the URL and that the database is reachable and is an mlops_nb "
            "registry, or choose another location with MLOPS_NB_HOME, MLOPS_NB_STORE_URL or "
            "%mlops init --store.",
            url=engine.url.render_as_string(hide_password=True),
            cause=exc.cause,
            damaged=damaged,
        ) from None


def now() -> float:
    """Current time as stored in every timestamp column."""
    return time.time()
