"""``mlops-nb doctor``: check a registry and its artifacts, tidy what killed writers left.

Checks, in order:

1. the database itself: SQLite's ``PRAGMA integrity_check``; on PostgreSQL
   every table read through (which makes the server verify page checksums
   when the cluster has them), the server's checksum-failure counter, and
   ``amcheck``'s B-tree check of mlops_nb's indexes when that extension is installed;
2. that the schema opens (version, migrations) and the audit chain is intact;
3. every artifact against its digest, and that every artifact a record points
   at exists;
4. runs still ``running`` (runs of processes that died on this host are marked
   ``interrupted`` on opening; the rest are listed);
5. temporary files of killed artifact writes older than a safe age, removed;
6. who may write: on SQLite the file's and the artifact folder's permissions (a warning
   when group or others may write them), on PostgreSQL whether team roles are installed.

Damage (anything in 1-3) makes the command exit with status 1.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import click
from sqlalchemy import Engine, inspect, select, text

from . import config
from .errors import MlopsError, StoreError

#: Temporary artifact files younger than this may belong to a write in progress.
DEFAULT_TEMP_AGE_S = 3600.0


@dataclass
class Finding:
    """One line of the doctor's report: ``level`` is "ok", "note", "warn", "fixed" or "damage"."""

    level: str
    check: str
    message: str


@dataclass
class DoctorReport:
    """What :func:`doctor` found; ``damaged`` when the registry or an artifact is corrupt."""

    store_url: str
    artifacts_url: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def damaged(self) -> bool:
        return any(f.level == "damage" for f in self.findings)

    def add(self, level: str, check: str, message: str) -> None:
        self.findings.append(Finding(level, check, message))

    def text(self) -> str:
        marks = {"ok": "ok    ", "note": "note  ", "warn": "WARN  ", "fixed": "fixed ", "damage": "DAMAGE"}
        lines = [f"registry  {self.store_url}", f"artifacts {self.artifacts_url}"]
        lines += [f"  {marks[f.level]} {f.check}: {f.message}" for f in self.findings]
        lines.append(
            "damage found: restore the damaged parts from a backup (see above)"
            if self.damaged
            else "no damage found"
        )
        return "\n".join(lines)


def doctor(
    store: str | None = None,
    artifacts: str | None = None,
    *,
    temp_age_s: float = DEFAULT_TEMP_AGE_S,
    progress: Callable[[str], None] | None = None,
) -> DoctorReport:
    """Check the registry at ``store`` (default: the configured one) and its artifacts.

    Parameters
    ----------
    store, artifacts : str, optional
        Locations, as for :func:`mlops_nb.store.get_store`.
    temp_age_s : float
        Temporary files of unfinished artifact writes older than this are removed.
    progress : callable, optional
        Called with the name of each check as it starts.
    """
    from .store import get_store, registry_exists
    from .store.artifacts import ArtifactStore
    from .store.engine import make_engine

    store_url = config.store_url(store)
    artifacts_url = config.artifacts_url(artifacts, store=store_url)
    report = DoctorReport(_safe_url(store_url), artifacts_url)
    step = progress or (lambda _name: None)
    if not registry_exists(store_url):
        get_store(store, artifacts, create=False)  # raises NoRegistry, saying where it looked

    step("database")
    engine = make_engine(store_url)
    try:
        _check_database(engine, report)
    finally:
        engine.dispose()

    step("schema")
    opened = None
    try:
        opened = get_store(store, artifacts, create=False)
        report.add("ok", "schema", f"version {opened.schema_version}")
    except MlopsError as exc:
        report.add("damage", "schema", str(exc))
    if opened is not None:
        _check_records(opened, report, step)
    step("artifacts")
    art = opened.artifacts if opened is not None else ArtifactStore(artifacts_url)
    _check_artifacts(art, _referenced_digests(opened, report) if opened is not None else {}, report)
    step("temporary files")
    _tidy_temp_files(art, temp_age_s, report)
    step("access")
    _check_access(store_url, artifacts_url, opened, report)
    return report


# ---- 6. who may write ----------------------------------------------------------------------
def _check_access(store_url: str, artifacts_url: str, opened, report: DoctorReport) -> None:
    """SQLite is single-user: the file's permissions are its access control, so say when they are loose."""
    import os
    import stat

    if opened is not None and opened.engine.dialect.name == "postgresql":
        if opened.secured:
            report.add("ok", "access", f"team roles enforced by the database; you are {opened.session_user}")
        else:
            report.add(
                "note", "access",
                "no team roles: every login that reaches this database acts with full rights; "
                "the owner runs mlops-nb admin init-roles",
            )  # fmt: skip
        return
    paths = []
    if store_url.startswith("sqlite") and "///" in store_url and ":memory:" not in store_url:
        paths.append(("registry file", store_url.split("///", 1)[1]))
    if "://" not in artifacts_url or artifacts_url.startswith("file://"):
        paths.append(("artifact folder", artifacts_url.removeprefix("file://")))
    loose = []
    for what, path in paths:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            continue
        who = [name for bit, name in ((stat.S_IWGRP, "group"), (stat.S_IWOTH, "others")) if mode & bit]
        if who:
            loose.append(f"{what} {path} is writable by {' and '.join(who)} ({stat.filemode(mode)})")
    if loose:
        report.add(
            "warn", "access",
            "; ".join(loose) + ". On SQLite the file permissions are the only access control: anyone who can "
            "write them can rewrite runs, aliases and the audit trail (chmod go-w), or use the team backend "
            "(PostgreSQL with mlops-nb admin init-roles)",
        )  # fmt: skip
    elif paths:
        report.add("ok", "access", "single-user registry: only its owner may write the file and the artifact folder")


# ---- 1. the database ----------------------------------------------------------------------
def _check_database(engine: Engine, report: DoctorReport) -> None:
    try:
        if engine.dialect.name == "sqlite":
            _check_sqlite(engine, report)
        elif engine.dialect.name == "postgresql":
            _check_postgres(engine, report)
        else:
            report.add("note", "database", f"no integrity check for {engine.dialect.name}; tables read below")
    except Exception as exc:  # noqa: BLE001 - whatever the driver raises, the database could not be checked
        cause = " ".join(str(getattr(exc, "orig", None) or exc).split())
        report.add("damage", "database", f"cannot be checked: {cause}")


def _check_sqlite(engine: Engine, report: DoctorReport) -> None:
    with engine.connect() as conn:
        problems = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check(20)")]
        if problems == ["ok"]:
            report.add("ok", "database", "SQLite integrity_check found no damage")
        else:
            shown = "; ".join(problems[:5]) + (f"; ... ({len(problems)} problems)" if len(problems) > 5 else "")
            report.add(
                "damage", "database",
                f"SQLite integrity_check: {shown}. Restore registry.db from a backup; "
                "`sqlite3 registry.db .recover | sqlite3 recovered.db` may save what is still readable.",
            )  # fmt: skip
            return
        dangling = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
        if dangling:
            tables = sorted({r[0] for r in dangling})
            report.add("note", "database", f"{len(dangling)} rows point at missing rows (in {', '.join(tables)})")


def _check_postgres(engine: Engine, report: DoctorReport) -> None:
    from .store import schema

    with engine.connect() as conn:
        existing = set(inspect(conn).get_table_names())
        tables = [t for t in schema.metadata.sorted_tables if t.name in existing]
        for table in tables:  # a full read makes the server verify every page it has checksums for
            conn.execute(text(f'SELECT count(*) FROM (SELECT * FROM "{table.name}") AS t'))
        checksums = conn.execute(text("SHOW data_checksums")).scalar()
        failures = conn.execute(
            text("SELECT coalesce(checksum_failures, 0) FROM pg_stat_database WHERE datname = current_database()")
        ).scalar()
        if failures:
            report.add("damage", "database", f"PostgreSQL counted {failures} page checksum failures in this database")
            return
        checked = f"{len(tables)} tables read through"
        if checksums != "on":
            checked += " (the cluster has no data checksums: initdb --data-checksums makes damage detectable)"
        has_amcheck = conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'amcheck'")).first()
        if has_amcheck:
            indexes = [i["name"] for t in tables for i in inspect(conn).get_indexes(t.name) if i.get("name")]
            for name in indexes:
                conn.execute(text("SELECT bt_index_check(CAST(:i AS regclass))"), {"i": name})
            checked += f"; amcheck verified {len(indexes)} indexes"
        report.add("ok", "database", checked)
        conn.rollback()


# ---- 2. records -----------------------------------------------------------------------------
def _check_records(store, report: DoctorReport, step: Callable[[str], None]) -> None:
    step("audit log")
    try:
        broken = store.verify_audit_log()
        if broken:
            report.add("damage", "audit log", f"hash chain broken at events {', '.join(map(str, broken[:10]))}")
        else:
            report.add("ok", "audit log", "hash chain intact")
    except StoreError as exc:
        report.add("damage", "audit log", str(exc))
    step("runs")
    try:
        running = store.list_runs(status="running")
    except StoreError as exc:
        report.add("damage", "runs", str(exc))
        return
    if not running:
        report.add("ok", "runs", "none left running")
        return
    from .processes import host_name

    here = host_name()
    described = []
    for run in running[:10]:
        where = run.get("host") or "unknown host"
        if run.get("host") == here and run.get("pid"):
            where = f"pid {run['pid']} on this host, still alive"
        elif run.get("pid"):
            where = f"pid {run['pid']} on {where}"
        described.append(f"{run['id'][:8]} {run.get('name') or '-'} ({where})")
    more = f" and {len(running) - 10} more" if len(running) > 10 else ""
    report.add(
        "note", "runs",
        f"{len(running)} still running: {'; '.join(described)}{more}. Runs of processes that ended on this host "
        "are marked interrupted when a store opens; runs of another host are, when a store opens there.",
    )  # fmt: skip


def _referenced_digests(store, report: DoctorReport) -> dict[str, str]:
    """Artifact digests the records point at -> what points at them."""
    from .store import schema as t

    found: dict[str, str] = {}
    columns = [(t.model_versions, "artifact_digest", "digest", "model"), (t.job_runs, "output_digest", "id", "job run")]
    try:
        with store.engine.connect() as conn:
            for table, column, key, what in columns:
                rows = conn.execute(select(table.c[column], table.c[key]).where(table.c[column].is_not(None)))
                for digest, owner in rows:
                    found.setdefault(digest, f"{what} {owner[:12]}")
    except Exception as exc:  # noqa: BLE001 - a damaged table: reported, artifacts still checked
        report.add("damage", "artifacts", f"cannot list the artifacts records point at: {exc}")
    return found


# ---- 3. artifacts ----------------------------------------------------------------------------
def _check_artifacts(art, referenced: dict[str, str], report: DoctorReport) -> None:
    try:
        stored = set(art.digests())
    except Exception as exc:  # noqa: BLE001 - e.g. bucket unreachable
        report.add("damage", "artifacts", f"cannot list {art.url}: {exc}")
        return
    corrupt = []
    for digest in sorted(stored):
        actual = art.verify(digest)
        if actual != digest:
            corrupt.append(digest)
    missing = sorted(set(referenced) - stored)
    for digest in corrupt[:10]:
        owner = referenced.get(digest, "no record")
        report.add("damage", "artifacts", f"{digest[:12]} ({owner}) does not match its digest: restore it from a backup")
    for digest in missing[:10]:
        report.add("damage", "artifacts", f"{digest[:12]} ({referenced[digest]}) is missing from {art.url}")
    extra = len(corrupt) + len(missing) - min(len(corrupt), 10) - min(len(missing), 10)
    if extra > 0:
        report.add("damage", "artifacts", f"... and {extra} more damaged or missing artifacts")
    if not corrupt and not missing:
        report.add("ok", "artifacts", f"{len(stored)} verified against their digests")


def _tidy_temp_files(art, temp_age_s: float, report: DoctorReport) -> None:
    try:
        removed = art.remove_temp_files(temp_age_s)
        left = art.temp_files()
    except Exception as exc:  # noqa: BLE001
        report.add("note", "temporary files", f"cannot be listed: {exc}")
        return
    if removed:
        size = sum(r["size"] for r in removed)
        report.add("fixed", "temporary files", f"removed {len(removed)} left by killed writes ({_size(size)})")
    if left:
        report.add("note", "temporary files", f"{len(left)} younger than {temp_age_s:g} s left alone (writes may be in progress)")
    if not removed and not left:
        report.add("ok", "temporary files", "none")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _safe_url(url: str) -> str:
    from sqlalchemy import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return url


# ---- CLI ----------------------------------------------------------------------------------------
@click.command("doctor")
@click.option("--temp-age", type=click.FloatRange(min=0), default=DEFAULT_TEMP_AGE_S, show_default=True,
              help="Remove temporary artifact files older than this many seconds.")  # fmt: skip
def doctor_command(temp_age: float) -> None:
    """Check the registry database and every artifact; remove leftovers of killed writes.

    Exits with status 1 when anything is damaged.
    """
    started = time.time()
    report = doctor(temp_age_s=temp_age)
    click.echo(report.text() + f"  ({time.time() - started:.1f} s)")
    if report.damaged:
        raise SystemExit(1)


COMMANDS = [doctor_command]
