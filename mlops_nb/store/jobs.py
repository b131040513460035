"""Store methods for notebook jobs (validations, job runs, batches, schedules)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, func, select

from ..errors import JobError, NotFoundError
from . import schema as t
from .engine import now, read_transaction
from .queries import newest_first, rows

_JOB_RUN_FIELDS = {c.name for c in t.job_runs.columns}
_SCHEDULE_FIELDS = {c.name for c in t.job_schedules.columns}
_FIRING_FIELDS = {c.name for c in t.job_firings.columns}


class JobStoreMixin:
    """Mixed into :class:`~mlops_nb.store.sql.SqlStore`; uses its engine and helpers."""

    # ---- validations -------------------------------------------------------------
    def add_validation(self, record: Mapping[str, Any]) -> str:
        """Store a validation result (``id``, hashes, ``passed``, ``checks``...); return its id."""
        (row,) = rows(t.job_validations, [record])
        row["created_at"] = row["created_at"] or now()
        self._write(lambda conn: conn.execute(t.job_validations.insert().values(**row)))
        return row["id"]

    def find_validation(
        self, notebook_hash: str, params_hash: str | None = None, *, passed: bool | None = None
    ) -> dict[str, Any] | None:
        """Newest validation of a notebook content hash (and parameters), or None."""
        table = t.job_validations
        query = select(table).where(table.c.notebook_hash == notebook_hash)
        if params_hash is not None:
            query = query.where(table.c.params_hash == params_hash)
        if passed is not None:
            query = query.where(table.c.passed == passed)
        with read_transaction(self.engine) as conn:
            row = conn.execute(query.order_by(table.c.created_at.desc()).limit(1)).mappings().first()
        return dict(row) if row else None

    # ---- job runs ------------------------------------------------------------------
    def start_job_run(self, job_run_id: str, **fields: Any) -> None:
        """Insert a job run with status ``running`` before its notebook starts."""
        row = {k: v for k, v in fields.items() if k in _JOB_RUN_FIELDS}
        row.update(id=job_run_id, status="running")
        row.setdefault("start_time", now())
        self._write(lambda conn: conn.execute(t.job_runs.insert().values(**row)))

    def finish_job_run(self, job_run_id: str, **fields: Any) -> None:
        """Record the outcome of a job run (status, end time, output, runs...)."""
        update = {k: v for k, v in fields.items() if k in _JOB_RUN_FIELDS and k != "id"}
        update.setdefault("end_time", now())

        def work(conn: Connection) -> None:
            if not conn.execute(t.job_runs.update().where(t.job_runs.c.id == job_run_id).values(**update)).rowcount:
                raise NotFoundError(f"Job run {job_run_id} was never started in this store.", job_run_id=job_run_id)

        self._write(work)

    def get_job_run(self, job_run_id: str) -> dict[str, Any]:
        """One job run by id or unique id prefix."""
        with read_transaction(self.engine) as conn:
            return self._one_by_prefix(conn, t.job_runs, "id", job_run_id, "job run")

    def list_job_runs(
        self,
        *,
        batch_id: str | None = None,
        schedule_name: str | None = None,
        firing_id: int | None = None,
        status: str | None = None,
        last: int | None = None,
    ) -> list[dict[str, Any]]:
        """Job runs, newest first."""
        table = t.job_runs
        query = newest_first(
            select(table), table, last, (table.c.schedule_name, schedule_name),
            (table.c.firing_id, firing_id), (table.c.status, status),
        )  # fmt: skip
        with read_transaction(self.engine) as conn:
            if batch_id is not None:  # a prefix, as job listings show batch ids
                full = self._one_by_prefix(conn, t.job_batches, "id", batch_id, "batch")["id"]
                query = query.where(table.c.batch_id == full)
            return [dict(r) for r in conn.execute(query).mappings()]

    # ---- batches -------------------------------------------------------------------
    def start_batch(self, batch_id: str, **fields: Any) -> None:
        (row,) = rows(t.job_batches, [fields], id=batch_id, status="running", start_time=fields.get("start_time") or now())
        self._write(lambda conn: conn.execute(t.job_batches.insert().values(**row)))

    def finish_batch(self, batch_id: str, *, status: str, n_failed: int) -> None:
        self._write(
            lambda conn: conn.execute(
                t.job_batches.update()
                .where(t.job_batches.c.id == batch_id)
                .values(status=status, n_failed=n_failed, end_time=now())
            )
        )

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        """One batch by id or unique id prefix (as ``jobs list`` shows it)."""
        with read_transaction(self.engine) as conn:
            return self._one_by_prefix(conn, t.job_batches, "id", batch_id, "batch")

    def list_batches(self, last: int | None = None) -> list[dict[str, Any]]:
        """Batches, newest first."""
        with read_transaction(self.engine) as conn:
            query = newest_first(select(t.job_batches), t.job_batches, last)
            return [dict(r) for r in conn.execute(query).mappings()]

    # ---- schedules -------------------------------------------------------------------
    def save_schedule(self, schedule: Mapping[str, Any], *, replace: bool = False, reason: str | None = None) -> None:
        """Create (or with ``replace`` overwrite) a schedule, with an audit event, atomically."""
        row = {k: v for k, v in schedule.items() if k in _SCHEDULE_FIELDS}
        stamp = now()
        row.setdefault("created_at", stamp)
        row["updated_at"] = stamp
        name = row["name"]

        def work(conn: Connection) -> None:
            exists = conn.execute(select(t.job_schedules.c.name).where(t.job_schedules.c.name == name)).first()
            if exists and not replace:
                raise JobError(
                    f"A schedule named {name!r} already exists: choose another --name, or "
                    f"remove it first (mlops-nb schedule remove {name}).",
                    name=name,
                )
            if exists:
                conn.execute(t.job_schedules.delete().where(t.job_schedules.c.name == name))
            conn.execute(t.job_schedules.insert().values(**row))
            payload = {k: row.get(k) for k in ("notebook_path", "notebook_hash", "cron", "parameters", "forced")}
            action = "schedule.add.forced" if row.get("forced") else "schedule.add"
            self.add_audit_event(action, f"schedule:{name}", reason=reason, payload=payload, conn=conn)

        self._write(work)

    def get_schedule(self, name: str) -> dict[str, Any]:
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(t.job_schedules).where(t.job_schedules.c.name == name)).mappings().first()
        if row is None:
            raise NotFoundError(
                f"No schedule named {name!r}. List schedules with: mlops-nb schedule list.", name=name
            )
        return dict(row)

    def list_schedules(self) -> list[dict[str, Any]]:
        """Every schedule with the slot and status of its latest firing."""
        latest = (
            select(t.job_firings.c.schedule_name, func.max(t.job_firings.c.slot).label("slot"))
            .group_by(t.job_firings.c.schedule_name)
            .subquery()
        )
        query = (
            select(t.job_schedules, t.job_firings.c.slot.label("last_slot"), t.job_firings.c.status.label("last_status"))
            .outerjoin(latest, latest.c.schedule_name == t.job_schedules.c.name)
            .outerjoin(
                t.job_firings,
                (t.job_firings.c.schedule_name == latest.c.schedule_name) & (t.job_firings.c.slot == latest.c.slot),
            )
            .order_by(t.job_schedules.c.name)
        )
        with read_transaction(self.engine) as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def set_schedule_paused(self, name: str, paused: bool) -> None:
        def work(conn: Connection) -> None:
            table = t.job_schedules
            found = conn.execute(
                table.update().where(table.c.name == name).values(paused=paused, updated_at=now())
            ).rowcount
            if not found:
                raise NotFoundError(f"No schedule named {name!r}.", name=name)
            self.add_audit_event("schedule.pause" if paused else "schedule.resume", f"schedule:{name}", conn=conn)

        self._write(work)

    def remove_schedule(self, name: str) -> None:
        """Delete a schedule; its firings and job runs stay as history."""

        def work(conn: Connection) -> None:
            if not conn.execute(t.job_schedules.delete().where(t.job_schedules.c.name == name)).rowcount:
                raise NotFoundError(f"No schedule named {name!r}.", name=name)
            self.add_audit_event("schedule.remove", f"schedule:{name}", conn=conn)

        self._write(work)

    # ---- firings ---------------------------------------------------------------------
    def last_slot(self, name: str) -> float | None:
        """The latest slot ever claimed for a schedule (None before the first firing)."""
        with read_transaction(self.engine) as conn:
            return conn.execute(
                select(func.max(t.job_firings.c.slot)).where(t.job_firings.c.schedule_name == name)
            ).scalar()

    def claim_firing(self, name: str, slot: float, owner: str, status: str = "pending") -> int | None:
        """Record a firing of ``name`` at ``slot``; its id, or None when the slot was already claimed."""

        def work(conn: Connection) -> int | None:
            row = {
                "schedule_name": name, "slot": slot, "status": status, "attempts": 0,
                "job_run_ids": [], "owner": owner, "created_at": now(),
            }  # fmt: skip
            # The unique constraint on (schedule, slot) decides between schedulers racing for a slot.
            if not self._insert_ignore(conn, t.job_firings, [row], ["schedule_name", "slot"]):
                return None
            return conn.execute(
                select(t.job_firings.c.id).where(t.job_firings.c.schedule_name == name, t.job_firings.c.slot == slot)
            ).scalar_one()

        return self._write(work)

    def request_firing(self, name: str, reason: str | None = None) -> int:
        """A manual trigger: a firing of ``name`` at the current time, status ``requested``,
        which the next scheduler tick claims and runs like a due slot; its id."""

        def work(conn: Connection) -> int:
            schedule = conn.execute(
                select(t.job_schedules.c.paused).where(t.job_schedules.c.name == name)
            ).first()
            if schedule is None:
                raise NotFoundError(f"No schedule named {name!r}. List them with mlops-nb schedule list.", name=name)
            if schedule.paused:
                raise JobError(f"Schedule {name!r} is paused: resume it first (mlops-nb schedule resume {name}).", name=name)
            stamp = now()
            row = {
                "schedule_name": name, "slot": stamp, "status": "requested", "attempts": 0,
                "job_run_ids": [], "owner": None, "created_at": stamp,
            }  # fmt: skip
            firing_id = conn.execute(t.job_firings.insert().values(**row)).inserted_primary_key[0]
            self.add_audit_event("schedule.trigger", f"schedule:{name}", reason=reason, payload={"firing": firing_id}, conn=conn)
            return firing_id

        return self._write(work)

    def claim_requested(self, name: str, owner: str) -> list[int]:
        """Claim the manual triggers of ``name`` for ``owner``; the ids this owner won."""
        table = t.job_firings
        with read_transaction(self.engine) as conn:  # the usual case, nothing requested, takes no write lock
            ids = conn.execute(
                select(table.c.id).where(table.c.schedule_name == name, table.c.status == "requested").order_by(table.c.slot)
            ).scalars().all()
        if not ids:
            return []

        def work(conn: Connection) -> list[int]:
            claim = table.update().where(table.c.status == "requested").values(status="pending", owner=owner)
            # The status condition makes two schedulers' claims exclusive.
            return [i for i in ids if conn.execute(claim.where(table.c.id == i)).rowcount]

        return self._write(work)

    def update_firing(self, firing_id: int, **fields: Any) -> None:
        update = {k: v for k, v in fields.items() if k in _FIRING_FIELDS and k != "id"}
        self._write(
            lambda conn: conn.execute(t.job_firings.update().where(t.job_firings.c.id == firing_id).values(**update))
        )

    def get_firing(self, firing_id: int) -> dict[str, Any]:
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(t.job_firings).where(t.job_firings.c.id == firing_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"No firing {firing_id}.", firing_id=firing_id)
        return dict(row)

    def list_firings(self, name: str | None = None, *, status: str | None = None, last: int | None = None) -> list[dict[str, Any]]:
        """Firings, newest slot first."""
        query = select(t.job_firings)
        if name is not None:
            query = query.where(t.job_firings.c.schedule_name == name)
        if status is not None:
            query = query.where(t.job_firings.c.status == status)
        query = query.order_by(t.job_firings.c.slot.desc(), t.job_firings.c.id.desc())
        if last is not None:
            query = query.limit(last)
        with read_transaction(self.engine) as conn:
            return [dict(r) for r in conn.execute(query).mappings()]
