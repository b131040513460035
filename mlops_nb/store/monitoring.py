"""Store methods for monitors, their checks and alerts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, func, select

from ..errors import MonitorError, NotFoundError
from . import schema as t
from .engine import now, read_transaction

_MONITOR_FIELDS = {c.name for c in t.monitors.columns}
_CHECK_FIELDS = {c.name for c in t.monitor_checks.columns}
_ALERT_FIELDS = {c.name for c in t.alerts.columns}

#: Firings of monitor NAME are recorded in job_firings as ``monitor:NAME``.
FIRING_PREFIX = "monitor:"


class MonitoringStoreMixin:
    """Mixed into :class:`~mlops_nb.store.sql.SqlStore`; uses its engine and helpers."""

    # ---- monitors ------------------------------------------------------------------
    def save_monitor(self, monitor: Mapping[str, Any], *, replace: bool = False) -> None:
        """Create (or with ``replace`` overwrite) a monitor, with an audit event, atomically."""
        row = {k: v for k, v in monitor.items() if k in _MONITOR_FIELDS}
        stamp = now()
        row.setdefault("created_at", stamp)
        row["updated_at"] = stamp
        name = row["name"]

        def work(conn: Connection) -> None:
            exists = conn.execute(select(t.monitors.c.name).where(t.monitors.c.name == name)).first()
            if exists and not replace:
                raise MonitorError(
                    f"A monitor named {name!r} already exists: choose another name, or remove it first "
                    f"(mlops-nb monitor remove {name}).",
                    name=name,
                )  # fmt: skip
            if exists:
                conn.execute(t.monitors.delete().where(t.monitors.c.name == name))
            conn.execute(t.monitors.insert().values(**row))
            payload = {k: row.get(k) for k in ("model", "data", "cron", "drift_share", "metric", "metric_min", "metric_max", "retrain")}
            self.add_audit_event("monitor.add", f"monitor:{name}", payload=payload, conn=conn)

        self._write(work)

    def get_monitor(self, name: str) -> dict[str, Any]:
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(t.monitors).where(t.monitors.c.name == name)).mappings().first()
        if row is None:
            raise NotFoundError(f"No monitor named {name!r}. List them with: mlops-nb monitor list.", name=name)
        return dict(row)

    def list_monitors(self) -> list[dict[str, Any]]:
        """Every monitor with the slot and status of its latest firing."""
        firings = t.job_firings
        latest = (
            select(firings.c.schedule_name, func.max(firings.c.slot).label("slot"))
            .where(firings.c.schedule_name.like(f"{FIRING_PREFIX}%"))
            .group_by(firings.c.schedule_name)
            .subquery()
        )
        query = (
            select(t.monitors, firings.c.slot.label("last_slot"), firings.c.status.label("last_status"))
            .outerjoin(latest, latest.c.schedule_name == FIRING_PREFIX + t.monitors.c.name)
            .outerjoin(firings, (firings.c.schedule_name == latest.c.schedule_name) & (firings.c.slot == latest.c.slot))
            .order_by(t.monitors.c.name)
        )
        with read_transaction(self.engine) as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def set_monitor_paused(self, name: str, paused: bool) -> None:
        def work(conn: Connection) -> None:
            table = t.monitors
            if not conn.execute(table.update().where(table.c.name == name).values(paused=paused, updated_at=now())).rowcount:
                raise NotFoundError(f"No monitor named {name!r}.", name=name)
            self.add_audit_event("monitor.pause" if paused else "monitor.resume", f"monitor:{name}", conn=conn)

        self._write(work)

    def remove_monitor(self, name: str) -> None:
        """Delete a monitor; its checks and alerts stay as history."""

        def work(conn: Connection) -> None:
            if not conn.execute(t.monitors.delete().where(t.monitors.c.name == name)).rowcount:
                raise NotFoundError(f"No monitor named {name!r}.", name=name)
            self.add_audit_event("monitor.remove", f"monitor:{name}", conn=conn)

        self._write(work)

    # ---- checks ----------------------------------------------------------------------
    def add_monitor_check(self, record: Mapping[str, Any]) -> int:
        row = {k: v for k, v in record.items() if k in _CHECK_FIELDS and k != "id"}
        row.setdefault("created_at", now())
        return self._write(lambda conn: conn.execute(t.monitor_checks.insert().values(**row)).inserted_primary_key[0])

    def update_monitor_check(self, check_id: int, **fields: Any) -> None:
        update = {k: v for k, v in fields.items() if k in _CHECK_FIELDS and k != "id"}
        self._write(lambda conn: conn.execute(t.monitor_checks.update().where(t.monitor_checks.c.id == check_id).values(**update)))

    def finish_monitor_check(
        self,
        check_id: int,
        fields: Mapping[str, Any],
        *,
        audit: Mapping[str, Any] | None = None,
        alert: Mapping[str, Any] | None = None,
    ) -> int | None:
        """Record a check's outcome, its audit event and its alert in one transaction; the alert's id.

        Applied once: a check that has ended already is left alone (a replay from the spool after
        a write whose acknowledgement was lost adds no second event or alert).
        """
        update = {k: v for k, v in fields.items() if k in _CHECK_FIELDS and k != "id"}
        update.setdefault("ended_at", now())

        def work(conn: Connection) -> int | None:
            table = t.monitor_checks
            ended = conn.execute(select(table.c.ended_at).where(table.c.id == check_id)).first()
            if ended is None:
                raise NotFoundError(f"Monitor check {check_id} was never started in this store.", check_id=check_id)
            if ended[0] is not None:
                found = conn.execute(select(t.alerts.c.id).where(t.alerts.c.check_id == check_id)).scalar()
                return found
            conn.execute(table.update().where(table.c.id == check_id).values(**update))
            if audit is not None:
                self.add_audit_event(conn=conn, **audit)
            if alert is None:
                return None
            row = {k: v for k, v in alert.items() if k in _ALERT_FIELDS and k != "id"}
            row.setdefault("created_at", now())
            row.setdefault("acknowledged", False)
            return conn.execute(t.alerts.insert().values(**row)).inserted_primary_key[0]

        return self._write(work)

    def list_monitor_checks(self, monitor: str | None = None, *, last: int | None = None) -> list[dict[str, Any]]:
        """Checks, newest first."""
        table = t.monitor_checks
        query = select(table)
        if monitor is not None:
            query = query.where(table.c.monitor == monitor)
        query = query.order_by(table.c.created_at.desc(), table.c.id.desc())
        if last is not None:
            query = query.limit(last)
        with read_transaction(self.engine) as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # ---- alerts ----------------------------------------------------------------------
    def add_alert(self, record: Mapping[str, Any]) -> int:
        row = {k: v for k, v in record.items() if k in _ALERT_FIELDS and k != "id"}
        row.setdefault("created_at", now())
        row.setdefault("acknowledged", False)
        return self._write(lambda conn: conn.execute(t.alerts.insert().values(**row)).inserted_primary_key[0])

    def list_alerts(
        self, monitor: str | None = None, *, model: str | None = None, last: int | None = None, unacknowledged: bool = False
    ) -> list[dict[str, Any]]:
        """Alerts, newest first (of one monitor, or about one registered model)."""
        query = select(t.alerts)
        if monitor is not None:
            query = query.where(t.alerts.c.monitor == monitor)
        if model is not None:
            query = query.where(t.alerts.c.model == model)
        if unacknowledged:
            query = query.where(t.alerts.c.acknowledged.is_(False))
        query = query.order_by(t.alerts.c.created_at.desc(), t.alerts.c.id.desc())
        if last is not None:
            query = query.limit(last)
        with read_transaction(self.engine) as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def acknowledge_alert(self, alert_id: int) -> None:
        def work(conn: Connection) -> None:
            if not conn.execute(t.alerts.update().where(t.alerts.c.id == alert_id).values(acknowledged=True)).rowcount:
                raise NotFoundError(f"No alert {alert_id}.", alert_id=alert_id)
            self.add_audit_event("alert.acknowledge", f"alert:{alert_id}", conn=conn)

        self._write(work)
