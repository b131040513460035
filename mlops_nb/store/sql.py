"""The registry store: one SQLAlchemy Core implementation for SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, text

from ..environment import current_user
from ..errors import IdentityError, NotFoundError, StoreError
from . import schema as t
from .artifacts import ArtifactStore
from .engine import (
    ensure_schema,
    make_engine,
    now,
    read_transaction,
    retrying,
    write_transaction,
)
from .jobs import JobStoreMixin
from .monitoring import MonitoringStoreMixin
from .registry import RegistryStoreMixin
from .roles import with_principal
from .snapshots import SnapshotStoreMixin
from .params import param_columns, param_value
from .queries import attach_run_extras, insert_many, newest_first, rows

_RUN_FIELDS = (
    "name", "status", "start_time", "end_time", "duration", "source", "source_hash",
    "notebook_path", "execution_count", "environment", "git_commit", "git_dirty",
    "error", "user", "job_run_id", "batch_id", "warnings", "host", "pid", "process_start",
)  # fmt: skip
_PARAM_COLUMNS = ("run_id", "key", "value", "value_type", "value_num")
_METRIC_COLUMNS = ("run_id", "key", "value", "step", "timestamp")
# The SET columns come from the parameters: one compiled statement serves every finish.
_UPDATE_RUN = t.runs.update().where(t.runs.c.id == bindparam("run_id_"))


class SqlStore(RegistryStoreMixin, JobStoreMixin, MonitoringStoreMixin, SnapshotStoreMixin):
    """Runs, data versions, model versions, drift checks and the audit log.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of the database.
    artifacts_url : str
        fsspec URL of the content-addressed artifact folder.
    """

    def __init__(self, url: str, artifacts_url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.schema_version = ensure_schema(self.engine)
        self.artifacts = ArtifactStore(artifacts_url)
        self._project_ids: dict[str, int] = {}
        # PostgreSQL: who authenticated is who acts (session_user), and whether the team roles
        # (store/roles.py) make the database enforce what each may do.  SQLite: the OS user.
        self.session_user: str | None = None
        self.secured = False
        if self.engine.dialect.name == "postgresql":
            from .roles import session_identity

            self.session_user, self.secured = session_identity(self.engine)
            claimed = os.environ.get("MLOPS_NB_USER")
            if claimed and claimed != self.session_user:
                raise IdentityError(
                    f"MLOPS_NB_USER={claimed} but this PostgreSQL registry authenticated you as "
                    f"{self.session_user}: unset MLOPS_NB_USER, or connect as {claimed} in the store URL.",
                    claimed=claimed, session_user=self.session_user,
                )  # fmt: skip

    def __repr__(self) -> str:
        return f"SqlStore({self.engine.url.render_as_string(hide_password=True)!r}, {self.artifacts.url!r})"

    def close(self) -> None:
        self.engine.dispose()

    # ---- helpers ------------------------------------------------------------
    def acting_user(self, actor: str | None = None) -> str:
        """Who acts: on PostgreSQL the authenticated role (a different ``actor`` is refused),
        on SQLite ``actor``, ``MLOPS_NB_USER`` or the OS user (a display name only)."""
        if self.session_user is None:
            return actor or current_user()
        if actor and actor != self.session_user:
            raise IdentityError(
                f"{actor!r} cannot act here: this PostgreSQL registry authenticated you as {self.session_user}, "
                f"and the database records that role. Connect as {actor} to act as {actor}.",
                claimed=actor, session_user=self.session_user,
            )  # fmt: skip
        return self.session_user

    def _write(self, fn, *args, **kwargs):
        """Run ``fn(conn, ...)`` in one write transaction, retried when busy."""

        def attempt():
            with write_transaction(self.engine) as conn:
                return fn(conn, *args, **kwargs)

        return retrying(attempt)

    def _insert_ignore(self, conn: Connection, table, rows: Sequence[Mapping[str, Any]], keys: list[str]) -> int:
        """Insert rows whose ``keys`` are new; for one row, return 1 if it was inserted, else 0.

        (With several rows the driver's executemany count is not reliable on PostgreSQL.)
        """
        if not rows:
            return 0
        import importlib  # the dialect's module, already loaded with its engine (importing both costs 30 ms)

        dialect = importlib.import_module(f"sqlalchemy.dialects.{self.engine.dialect.name}")
        statement = dialect.insert(table).on_conflict_do_nothing(index_elements=keys)
        if len(rows) == 1:  # RETURNING, since rowcount is -1 under implicit returning
            return len(conn.execute(statement.returning(*table.primary_key.columns), dict(rows[0])).all())
        conn.execute(statement, list(rows))
        return len(rows)

    def project_id(self, name: str, conn: Connection | None = None) -> int:
        """Id of project ``name``, created on first use."""
        if name in self._project_ids:
            return self._project_ids[name]

        def work(c: Connection) -> int:
            self._insert_ignore(c, t.projects, [{"name": name, "created_at": now()}], ["name"])
            return c.execute(select(t.projects.c.id).where(t.projects.c.name == name)).scalar_one()

        if conn is not None:
            # Inside the caller's transaction, which may still roll back: cached by the
            # caller once it commits.
            return work(conn)
        pid = self._project_ids[name] = self._write(work)
        return pid

    # ---- runs -----------------------------------------------------------------
    def start_run(self, run_id: str, project: str, **fields: Any) -> None:
        """Insert a run with status ``running`` so that it is visible while it runs."""
        project_id = self._write(self._insert_run, run_id, project, fields)
        self._project_ids[project] = project_id  # committed now

    def _insert_run(
        self, conn: Connection, run_id: str, project: str, fields: Mapping[str, Any], status: str = "running"
    ) -> int:
        row = {k: fields.get(k) for k in _RUN_FIELDS}
        row.update(id=run_id, status=status, user=self.session_user or fields.get("user") or current_user())
        row["start_time"] = row["start_time"] or now()
        row["project_id"] = self.project_id(project, conn)
        insert_many(conn, t.runs, tuple(row), [tuple(row.values())])
        self._write_tags(conn, run_id, fields.get("tags") or {})
        return row["project_id"]

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        params: Mapping[str, Any] | None = None,
        metrics: Iterable[tuple[str, float, int | None, float]] = (),
        tags: Mapping[str, str] | None = None,
        inputs: Sequence[Mapping[str, Any]] = (),
        outputs: Sequence[Mapping[str, Any]] = (),
        models: Sequence[Mapping[str, Any]] = (),
        start: tuple[str, Mapping[str, Any]] | None = None,
        context: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        """Write everything a run recorded in one transaction.

        ``start``: (project, fields of :meth:`start_run`) for a run never started
        in the store: its row is inserted in the same transaction.

        ``inputs``/``outputs`` items: name, digest, kind, shape, schema, profile.
        ``models`` items: name, digest, flavor, class_name, params, artifact_digest,
        artifact_size.  ``metrics`` items: (key, value, step, timestamp).
        """
        if status not in {"finished", "failed", "interrupted"}:
            raise StoreError(f"Unknown final run status {status!r}.", status=status)
        update = {k: v for k, v in fields.items() if k in _RUN_FIELDS}
        update["status"] = status
        update.setdefault("end_time", now())
        stamp = now()

        def work(conn: Connection) -> int | None:
            if start is not None:  # inserted finished: one statement instead of an insert and an update
                project_id = self._insert_run(conn, run_id, start[0], {**start[1], **update}, status)
            else:
                project_id = None
                found = conn.execute(_UPDATE_RUN, {"run_id_": run_id, **update}).rowcount
                if not found:
                    raise NotFoundError(f"Run {run_id} was never started in this store.", run_id=run_id)
            self._write_tags(conn, run_id, tags or {})
            if context:
                self._insert_ignore(conn, t.run_contexts, [{"run_id": run_id, "names": dict(context)}], ["run_id"])
            if params:
                if start is None:  # a run inserted just now has none to replace
                    conn.execute(t.params.delete().where(t.params.c.run_id == run_id))
                insert_many(conn, t.params, _PARAM_COLUMNS, [(run_id, k, *param_columns(v)) for k, v in params.items()])
            metric_rows = [(run_id, k, float(v), s, ts) for k, v, s, ts in metrics]
            if metric_rows:
                insert_many(conn, t.metrics, _METRIC_COLUMNS, metric_rows)
                latest = {r[1]: r[:4] for r in metric_rows}  # the last value of each key wins
                if start is None:
                    conn.execute(
                        t.latest_metrics.delete().where(
                            t.latest_metrics.c.run_id == run_id, t.latest_metrics.c.key.in_(list(latest))
                        )
                    )
                insert_many(conn, t.latest_metrics, _METRIC_COLUMNS[:4], list(latest.values()))
            for direction, items in (("input", inputs), ("output", outputs)):
                versions = rows(t.data_versions, items, first_run_id=run_id, created_at=stamp)
                self._insert_ignore(conn, t.data_versions, versions, ["digest"])
                if items:
                    conn.execute(t.run_data.insert(), rows(t.run_data, items, run_id=run_id, direction=direction))
            self._insert_ignore(
                conn, t.model_versions, rows(t.model_versions, models, run_id=run_id, created_at=stamp), ["digest"]
            )
            if models:
                conn.execute(t.run_models.insert(), rows(t.run_models, models, run_id=run_id))
            return project_id

        project_id = self._write(work)
        if start is not None:
            self._project_ids[start[0]] = project_id  # committed now

    def interrupt_runs(self, run_ids: Sequence[str], reason: str) -> int:
        """Mark runs still ``running`` as ``interrupted`` (their process is gone); return how many."""
        if not run_ids:
            return 0

        def work(conn: Connection) -> int:
            query = (
                t.runs.update()
                .where(t.runs.c.id.in_(list(run_ids)), t.runs.c.status == "running")
                .values(status="interrupted", end_time=now(), error=reason)
            )
            return conn.execute(query).rowcount

        return self._write(work)

    def _write_tags(self, conn: Connection, run_id: str, tags: Mapping[str, str]) -> None:
        if not tags:
            return
        conn.execute(t.run_tags.delete().where(t.run_tags.c.run_id == run_id, t.run_tags.c.key.in_(list(tags))))
        insert_many(conn, t.run_tags, ("run_id", "key", "value"), [(run_id, k, str(v)) for k, v in tags.items()])

    def _one_by_prefix(self, conn: Connection, table, key: str, prefix: str, what: str, hint: str = "") -> dict[str, Any]:
        """The one row whose ``key`` column starts with ``prefix`` (ids and digests are hex)."""
        prefix = prefix.strip().lower()
        if not prefix or any(c not in "0123456789abcdef" for c in prefix):
            raise NotFoundError(f"{prefix!r} is not a {what} id (hexadecimal).", **{key: prefix})
        rows = conn.execute(select(table).where(table.c[key].like(f"{prefix}%")).limit(2)).mappings().all()
        if not rows:
            raise NotFoundError(f"No {what} {prefix!r} in {self}.{hint}", **{key: prefix})
        if len(rows) > 1:
            raise NotFoundError(f"The {what} prefix {prefix!r} is ambiguous: give more characters.", **{key: prefix})
        return dict(rows[0])

    def resolve_run_id(self, run_id: str, conn: Connection | None = None) -> str:
        """Full id of the run whose id is or starts with ``run_id``."""
        hint = " List runs with %mlops runs or mlops-nb runs."
        if conn is not None:
            return self._one_by_prefix(conn, t.runs, "id", run_id, "run", hint)["id"]
        with read_transaction(self.engine) as c:
            return self._one_by_prefix(c, t.runs, "id", run_id, "run", hint)["id"]

    def run_status(self, run_id: str) -> str | None:
        """Status of the run with exactly this id, or None if it was never started here."""
        with read_transaction(self.engine) as conn:
            return conn.execute(select(t.runs.c.status).where(t.runs.c.id == run_id)).scalar_one_or_none()

    def get_run(self, run_id: str) -> dict[str, Any]:
        """A run with its tags, params, metrics, inputs, outputs and models."""
        with read_transaction(self.engine) as conn:
            return self._full_runs(conn, [self.resolve_run_id(run_id, conn)])[0]

    def get_runs(self, run_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Several runs (full ids) as :meth:`get_run` gives each, in the order asked, with a few
        queries in all instead of a few per run; ids not in the registry are left out."""
        if not run_ids:
            return []
        with read_transaction(self.engine) as conn:
            return self._full_runs(conn, list(run_ids))

    def _full_runs(self, conn: Connection, ids: list[str]) -> list[dict[str, Any]]:
        rows = conn.execute(
            select(t.runs, t.projects.c.name.label("project"))
            .join(t.projects, t.projects.c.id == t.runs.c.project_id)
            .where(t.runs.c.id.in_(ids))
        ).mappings().all()
        runs: dict[str, dict[str, Any]] = {}
        for row in rows:
            run = runs[row["id"]] = dict(row)
            run.pop("project_id")
            run.update(tags={}, params={}, metric_history=[], metrics={}, context=None, inputs=[], outputs=[], models=[])
        for r in conn.execute(select(t.run_tags).where(t.run_tags.c.run_id.in_(ids))):
            runs[r.run_id]["tags"][r.key] = r.value
        for r in conn.execute(select(t.params).where(t.params.c.run_id.in_(ids))):
            runs[r.run_id]["params"][r.key] = param_value(r.value, r.value_type)
        history = conn.execute(
            select(t.metrics.c.run_id, t.metrics.c.key, t.metrics.c.value, t.metrics.c.step, t.metrics.c.timestamp)
            .where(t.metrics.c.run_id.in_(ids))
            .order_by(t.metrics.c.id)
        ).mappings()
        for r in history:
            run = runs[r["run_id"]]
            run["metric_history"].append(_without(r, "run_id"))
            run["metrics"][r["key"]] = r["value"]  # last value per key
        data = conn.execute(
            select(t.run_data.c.run_id, t.run_data.c.direction, t.run_data.c.name, t.data_versions.c.digest,
                   t.data_versions.c.kind, t.data_versions.c.shape, t.data_versions.c.schema,
                   t.data_snapshots.c.manifest.label("snapshot"))
            .join(t.data_versions, t.data_versions.c.digest == t.run_data.c.digest)
            .outerjoin(t.data_snapshots, t.data_snapshots.c.digest == t.run_data.c.digest)
            .where(t.run_data.c.run_id.in_(ids))
            .order_by(t.run_data.c.name)
        ).mappings()  # fmt: skip
        for d in data:
            key = "inputs" if d["direction"] == "input" else "outputs"
            runs[d["run_id"]][key].append({k: v for k, v in d.items() if k not in ("direction", "run_id")})
        for r in conn.execute(select(t.run_contexts).where(t.run_contexts.c.run_id.in_(ids))):
            runs[r.run_id]["context"] = r.names
        models = conn.execute(
            select(t.run_models.c.run_id.label("of_run"), t.run_models.c.name, t.model_versions)
            .join(t.model_versions, t.model_versions.c.digest == t.run_models.c.digest)
            .where(t.run_models.c.run_id.in_(ids))
            .order_by(t.run_models.c.name)
        ).mappings()
        for m in models:
            runs[m["of_run"]]["models"].append(_without(m, "of_run"))
        return [runs[i] for i in ids if i in runs]

    def list_runs(
        self,
        *,
        project: str | None = None,
        name: str | None = None,
        status: str | None = None,
        batch_id: str | None = None,
        job_run_id: str | None = None,
        last: int | None = None,
    ) -> list[dict[str, Any]]:
        """Runs, newest first, each with its params, last metric values and tags."""
        query = select(t.runs, t.projects.c.name.label("project")).join(
            t.projects, t.projects.c.id == t.runs.c.project_id
        )
        query = newest_first(
            query, t.runs, last,
            (t.projects.c.name, project), (t.runs.c.name, name), (t.runs.c.status, status),
            (t.runs.c.batch_id, batch_id), (t.runs.c.job_run_id, job_run_id),
        )  # fmt: skip
        with read_transaction(self.engine) as conn:
            return attach_run_extras(conn, [dict(r) for r in conn.execute(query).mappings()])

    # ---- data and model versions ---------------------------------------------
    def get_data_version(self, digest: str) -> dict[str, Any]:
        """A data version (kind, shape, schema, profile) by digest or unique prefix."""
        return self._get_by_digest(t.data_versions, digest, "data version")

    def has_profile(self, digest: str) -> bool:
        """Whether data version ``digest`` is stored with a profile."""
        with read_transaction(self.engine) as conn:
            found = conn.execute(
                select(t.data_versions.c.digest).where(
                    t.data_versions.c.digest == digest, t.data_versions.c.profile.is_not(None)
                )
            ).first()
        return found is not None

    def get_model_version(self, digest: str) -> dict[str, Any]:
        """A model version by digest or unique prefix."""
        return self._get_by_digest(t.model_versions, digest, "model version")

    def _get_by_digest(self, table, digest: str, what: str) -> dict[str, Any]:
        with read_transaction(self.engine) as conn:
            return self._one_by_prefix(conn, table, "digest", digest, what)

    def list_model_versions(self) -> list[dict[str, Any]]:
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(t.model_versions).order_by(t.model_versions.c.created_at.desc()))
            return [dict(r) for r in rows.mappings()]

    def data_lineage(self, digest: str) -> dict[str, list[str]]:
        """Runs that produced (``produced_by``) and read (``read_by``) a data version."""
        full = self.get_data_version(digest)["digest"]
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(t.run_data.c.run_id, t.run_data.c.direction).where(t.run_data.c.digest == full)).all()
        return {
            "produced_by": sorted({r.run_id for r in rows if r.direction == "output"}),
            "read_by": sorted({r.run_id for r in rows if r.direction == "input"}),
        }

    # ---- drift checks ----------------------------------------------------------
    def add_drift_check(
        self,
        reference: str,
        current_digest: str | None,
        reference_digest: str | None,
        n_columns: int,
        n_drifted: int,
        dataset_drift: bool,
        result: dict[str, Any],
        project: str | None = None,
    ) -> int:
        """Store a drift check; return its id."""
        from ..config import project_name

        def work(conn: Connection) -> int:
            values = {
                "project_id": self.project_id(project_name(project), conn),
                "created_at": now(),
                "reference": reference,
                "reference_digest": reference_digest,
                "current_digest": current_digest,
                "n_columns": int(n_columns),
                "n_drifted": int(n_drifted),
                "dataset_drift": bool(dataset_drift),
                "result": result,
            }
            values["id"] = conn.execute(t.drift_checks.insert().values(**values)).inserted_primary_key[0]
            return values

        committed = self._write(work)
        self._project_ids[project_name(project)] = committed["project_id"]
        return committed["id"]

    def list_drift_checks(self, limit: int = 20) -> list[dict[str, Any]]:
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(t.drift_checks).order_by(t.drift_checks.c.created_at.desc(), t.drift_checks.c.id.desc()).limit(limit)
            )
            return [dict(r) for r in rows.mappings()]

    # ---- audit log -------------------------------------------------------------
    def add_audit_event(
        self,
        action: str,
        target: str,
        *,
        reason: str | None = None,
        payload: Mapping[str, Any] | None = None,
        actor: str | None = None,
        conn: Connection | None = None,
    ) -> int:
        """Append an event; each event's hash covers the previous event's hash."""

        def work(c: Connection) -> int:
            self._lock_audit(c)
            prev = c.execute(select(t.audit_events.c.hash).order_by(t.audit_events.c.id.desc()).limit(1)).scalar()
            event = {
                "timestamp": now(),
                "actor": self.session_user or actor or current_user(),  # the database's trigger stamps it too
                "action": action,
                "target": target,
                "reason": reason,
                "payload": with_principal(payload),
                "prev_hash": prev or "0" * 64,
            }
            event["hash"] = _event_hash(event)
            event["mac"] = audit_mac(event["hash"])
            return c.execute(t.audit_events.insert().values(**event)).inserted_primary_key[0]

        return work(conn) if conn is not None else self._write(work)

    def _lock_audit(self, conn: Connection) -> None:
        """Serialise appends to the audit chain (and the registry changes they record) on PostgreSQL."""
        if self.engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": 0x61756469})

    def audit_log(self, target: str | None = None) -> list[dict[str, Any]]:
        query = select(t.audit_events).order_by(t.audit_events.c.id)
        if target is not None:
            query = query.where(t.audit_events.c.target == target)
        with read_transaction(self.engine) as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def verify_audit_log(self) -> list[int]:
        """Ids of events whose hash chain is broken (empty when intact)."""
        return self.audit_breaks(self.audit_log())[0]

    def audit_breaks(self, events: Sequence[Mapping[str, Any]]) -> tuple[list[int], set[int]]:
        """``(broken ids, ids hashed by the database)`` of ``events`` (the whole log, in id order).

        On a PostgreSQL registry with team roles the database hashes each event
        (``store/roles.py``); its hash is recomputed here from the time and payload
        as the database renders them, independently of the database's function.
        """
        broken = chain_breaks(events)
        if not broken or self.engine.dialect.name != "postgresql":
            return broken, set()
        from .roles import db_event_hash, db_hash_texts

        with read_transaction(self.engine) as conn:
            texts = db_hash_texts(conn, broken)
        by_db: set[int] = set()
        prev = "0" * 64
        for event in events:
            if event["id"] in texts:
                stamp, payload = texts[event["id"]]
                fields = (event["actor"], event["action"], event["target"], event["reason"])
                if event["prev_hash"] == prev and db_event_hash(prev, stamp, *fields[:3], fields[3], payload) == event["hash"]:
                    by_db.add(event["id"])
            prev = event["hash"]
        return [i for i in broken if i not in by_db], by_db

    # ---- overview ----------------------------------------------------------------
    def summary(self) -> dict[str, int]:
        """Counts of what the registry holds."""
        with read_transaction(self.engine) as conn:
            count = lambda table: conn.execute(select(func.count()).select_from(table)).scalar_one()  # noqa: E731
            return {
                "projects": count(t.projects),
                "runs": count(t.runs),
                "data_versions": count(t.data_versions),
                "model_versions": count(t.model_versions),
                "metrics": count(t.metrics),
                "drift_checks": count(t.drift_checks),
            }


def chain_breaks(events: Sequence[Mapping[str, Any]]) -> list[int]:
    """Ids of events (in id order) whose hash or link to the previous event is wrong."""
    broken, prev = [], "0" * 64
    for event in events:
        if event["prev_hash"] != prev or _event_hash(event) != event["hash"]:
            broken.append(event["id"])
        prev = event["hash"]
    return broken


def audit_mac(event_hash: str, key: str | None = None) -> str | None:
    """HMAC of an event hash with the audit key (``MLOPS_NB_AUDIT_KEY``); None without a key."""
    key = key if key is not None else os.environ.get("MLOPS_NB_AUDIT_KEY")
    if not key:
        return None
    return hmac.new(key.encode(), event_hash.encode(), hashlib.sha256).hexdigest()


def _event_hash(event: Mapping[str, Any]) -> str:
    body = {k: event[k] for k in ("timestamp", "actor", "action", "target", "reason", "payload", "prev_hash")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _without(mapping: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}
