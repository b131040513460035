"""Registry rows: registered models, their numbered versions, aliases and promotion requests.

Every change is written in one transaction together with its audit event, so
the audit trail can never miss a change that happened (or show one that did not).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, func, select, text

from ..errors import ConcurrentChange, NotFoundError
from . import schema as t
from .engine import now, read_transaction
from .queries import rows


class RegistryStoreMixin:
    """Store methods for the model registry (mixed into :class:`SqlStore`)."""

    # ---- registered models and versions ---------------------------------------
    def register_version(
        self,
        name: str,
        model_digest: str,
        *,
        run_id: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        actor: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Add ``model_digest`` as the next version of ``name``; ``(row, created)``.

        A digest that already is a version of ``name`` returns that version
        with ``created=False``.
        """
        actor = self.acting_user(actor)

        def work(conn: Connection) -> tuple[dict[str, Any], bool]:
            self._lock_audit(conn)  # numbering is serialised (SQLite: by BEGIN IMMEDIATE already)
            stamp = now()
            self._insert_ignore(
                conn,
                t.registered_models,
                [{"name": name, "description": description, "tags": dict(tags) if tags else None,
                  "created_at": stamp, "updated_at": stamp, "user": actor}],
                ["name"],
            )
            existing = conn.execute(
                select(t.registry_versions).where(
                    t.registry_versions.c.name == name, t.registry_versions.c.model_digest == model_digest
                )
            ).mappings().first()
            if existing is not None:
                return dict(existing), False
            number = (
                conn.execute(select(func.max(t.registry_versions.c.version)).where(t.registry_versions.c.name == name)).scalar()
                or 0
            ) + 1
            row = {
                "name": name,
                "version": number,
                "model_digest": model_digest,
                "run_id": run_id,
                "description": description,
                "tags": dict(tags) if tags else None,
                "created_at": stamp,
                "user": actor,
            }
            conn.execute(t.registry_versions.insert().values(**row))
            conn.execute(t.registered_models.update().where(t.registered_models.c.name == name).values(updated_at=stamp))
            self.add_audit_event(
                "register", _target(name), actor=actor, conn=conn,
                payload={"version": number, "model_digest": model_digest, "run_id": run_id},
            )  # fmt: skip
            return row, True

        return self._write(work)

    def update_registered_model(self, name: str, *, description: str | None = None, tags: Mapping[str, str] | None = None) -> None:
        """Set the description and/or merge tags of a registered model."""

        def work(conn: Connection) -> None:
            current = self._model_row(conn, name)
            values: dict[str, Any] = {"updated_at": now()}
            if description is not None:
                values["description"] = description
            if tags:
                values["tags"] = {**(current["tags"] or {}), **dict(tags)}
            conn.execute(t.registered_models.update().where(t.registered_models.c.name == name).values(**values))

        self._write(work)

    def _model_row(self, conn: Connection, name: str) -> dict[str, Any]:
        row = conn.execute(select(t.registered_models).where(t.registered_models.c.name == name)).mappings().first()
        if row is None:
            known = conn.execute(select(t.registered_models.c.name).order_by(t.registered_models.c.name).limit(10)).scalars().all()
            hint = f" Registered models: {', '.join(known)}." if known else " No model is registered yet: use mlops_nb.register(model, name=...)."
            raise NotFoundError(f"No registered model {name!r}.{hint}", name=name)
        return dict(row)

    def get_registered_model(self, name: str) -> dict[str, Any]:
        """A registered model with ``latest_version`` and ``aliases`` (alias → version)."""
        with read_transaction(self.engine) as conn:
            row = self._model_row(conn, name)
            row["latest_version"] = conn.execute(
                select(func.max(t.registry_versions.c.version)).where(t.registry_versions.c.name == name)
            ).scalar()
            row["aliases"] = self._aliases(conn, name)
        return row

    def list_registered_models(self) -> list[dict[str, Any]]:
        """Every registered model, by name, with ``latest_version`` and ``aliases``."""
        with read_transaction(self.engine) as conn:
            latest = dict(
                conn.execute(
                    select(t.registry_versions.c.name, func.max(t.registry_versions.c.version)).group_by(
                        t.registry_versions.c.name
                    )
                ).all()
            )
            aliases: dict[str, dict[str, int]] = {}
            for r in conn.execute(select(t.model_aliases).order_by(t.model_aliases.c.alias)):
                aliases.setdefault(r.name, {})[r.alias] = r.version
            rows = conn.execute(select(t.registered_models).order_by(t.registered_models.c.name)).mappings().all()
        return [dict(r, latest_version=latest.get(r["name"]), aliases=aliases.get(r["name"], {})) for r in rows]

    def list_registry_versions(self, name: str) -> list[dict[str, Any]]:
        """Versions of ``name``, newest first, each with its model version row fields."""
        with read_transaction(self.engine) as conn:
            self._model_row(conn, name)
            rows = conn.execute(
                _version_query().where(t.registry_versions.c.name == name).order_by(t.registry_versions.c.version.desc())
            ).mappings().all()
            aliases = self._aliases(conn, name)
        return [_with_aliases(dict(r), aliases) for r in rows]

    def get_registry_version(self, name: str, version: int) -> dict[str, Any]:
        """Version ``version`` of ``name``."""
        with read_transaction(self.engine) as conn:
            self._model_row(conn, name)
            row = conn.execute(
                _version_query().where(t.registry_versions.c.name == name, t.registry_versions.c.version == int(version))
            ).mappings().first()
            if row is None:
                latest = conn.execute(
                    select(func.max(t.registry_versions.c.version)).where(t.registry_versions.c.name == name)
                ).scalar()
                raise NotFoundError(
                    f"Model {name!r} has no version {version} (latest is {latest}). List them with %mlops versions {name}.",
                    name=name,
                    version=version,
                )
            return _with_aliases(dict(row), self._aliases(conn, name))

    def registry_versions_of_digest(self, model_digest: str) -> list[dict[str, Any]]:
        """(name, version) rows under which a model version is registered."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(t.registry_versions.c.name, t.registry_versions.c.version).where(
                    t.registry_versions.c.model_digest == model_digest
                )
            ).mappings().all()
        return [dict(r) for r in rows]

    def ensure_model_version(self, record: Mapping[str, Any], run_id: str | None) -> None:
        """Insert a model version row (its artifact already stored) unless it exists."""

        def work(conn: Connection) -> None:
            row = rows(t.model_versions, [record], run_id=run_id, created_at=now())
            self._insert_ignore(conn, t.model_versions, row, ["digest"])

        self._write(work)

    # ---- aliases ---------------------------------------------------------------
    def _aliases(self, conn: Connection, name: str) -> dict[str, int]:
        rows = conn.execute(
            select(t.model_aliases.c.alias, t.model_aliases.c.version)
            .where(t.model_aliases.c.name == name)
            .order_by(t.model_aliases.c.alias)
        ).all()
        return {r.alias: r.version for r in rows}

    def get_alias(self, name: str, alias: str) -> int | None:
        """The version ``alias`` points at, or None when it is not set."""
        with read_transaction(self.engine) as conn:
            return conn.execute(
                select(t.model_aliases.c.version).where(t.model_aliases.c.name == name, t.model_aliases.c.alias == alias)
            ).scalar()

    def resolve_alias(self, name: str, alias: str) -> str:
        """The model digest behind ``name@alias``."""
        version = self.get_alias(name, alias)
        if version is None:
            model = self.get_registered_model(name)  # raises for an unknown model
            held = ", ".join(f"{a}→v{v}" for a, v in model["aliases"].items()) or "none"
            raise NotFoundError(
                f"Model {name!r} has no alias {alias!r} (aliases: {held}). Set it with promote({name!r}, VERSION, {alias!r}).",
                name=name,
                alias=alias,
            )
        return self.get_registry_version(name, version)["model_digest"]

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int | None,
        *,
        action: str,
        expected: int | None | str = "any",
        reason: str | None = None,
        payload: Mapping[str, Any] | None = None,
        actor: str | None = None,
        extra=None,
    ) -> int | None:
        """Point ``alias`` at ``version`` (None removes it) and audit it; return the previous holder.

        ``expected``: the holder the caller's checks were made against; if another
        writer moved the alias meanwhile the change is refused, not applied blindly.
        ``extra(conn)``: more writes that must commit with this change.
        """
        actor = self.acting_user(actor)
        if self.secured:  # the database checks the role and the policy, and writes the audit event
            if extra is not None:
                raise ValueError("extra writes are not allowed beside a guarded alias move")
            return self._write(
                lambda conn: _guarded_move(conn, name, alias, version, action, expected, reason, payload)
            )

        def work(conn: Connection) -> int | None:
            self._lock_audit(conn)
            self._model_row(conn, name)
            previous = conn.execute(
                select(t.model_aliases.c.version).where(t.model_aliases.c.name == name, t.model_aliases.c.alias == alias)
            ).scalar()
            if expected != "any" and previous != expected:
                raise ConcurrentChange(
                    f"{name}@{alias} moved to version {previous} while this change was being checked "
                    f"(it was {expected}). Look at %mlops versions {name} and try again.",
                    name=name, alias=alias, found=previous, expected=expected,
                )  # fmt: skip
            where = (t.model_aliases.c.name == name, t.model_aliases.c.alias == alias)
            conn.execute(t.model_aliases.delete().where(*where))
            if version is not None:
                conn.execute(
                    t.model_aliases.insert().values(name=name, alias=alias, version=int(version), updated_at=now(), user=actor)
                )
            body = {"alias": alias, "version": version, "previous_version": previous, **dict(payload or {})}
            self.add_audit_event(action, _target(name), reason=reason, payload=body, actor=actor, conn=conn)
            if extra is not None:
                extra(conn)
            return previous

        return self._write(work)

    # ---- promotion requests ----------------------------------------------------------
    def add_promotion_request(self, name: str, version: int, alias: str, *, requester: str, reason: str | None, payload) -> int:
        """Store a pending request (audited as ``promotion_requested``); return its id."""
        requester = self.acting_user(requester)
        if self.secured:  # requester and audit event from the database's session_user
            return self._write(
                lambda conn: conn.execute(
                    text("SELECT mlops_request_promotion(:n, :v, :a, :r, CAST(:p AS json))"),
                    {"n": name, "v": int(version), "a": alias, "r": reason, "p": _json(payload)},
                ).scalar_one()
            )

        def work(conn: Connection) -> int:
            # A new request for the same alias replaces any still pending.
            conn.execute(
                t.promotion_requests.update()
                .where(
                    t.promotion_requests.c.name == name,
                    t.promotion_requests.c.alias == alias,
                    t.promotion_requests.c.status == "pending",
                )
                .values(status="superseded", decided_at=now())
            )
            request_id = conn.execute(
                t.promotion_requests.insert().values(
                    name=name, version=int(version), alias=alias, requester=requester, reason=reason,
                    status="pending", approvals=[], created_at=now(),
                )  # fmt: skip
            ).inserted_primary_key[0]
            self.add_audit_event(
                "promotion_requested", _target(name), reason=reason, actor=requester, conn=conn,
                payload={"request_id": request_id, "alias": alias, "version": int(version), **dict(payload or {})},
            )  # fmt: skip
            return request_id

        return self._write(work)

    def get_promotion_request(self, request_id: int) -> dict[str, Any]:
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(t.promotion_requests).where(t.promotion_requests.c.id == int(request_id))).mappings().first()
        if row is None:
            raise NotFoundError(
                f"No promotion request {request_id}. List pending ones with mlops-nb models requests.",
                request_id=request_id,
            )
        return dict(row)

    def list_promotion_requests(self, name: str | None = None, status: str | None = "pending") -> list[dict[str, Any]]:
        query = select(t.promotion_requests).order_by(t.promotion_requests.c.id.desc())
        if name is not None:
            query = query.where(t.promotion_requests.c.name == name)
        if status is not None:
            query = query.where(t.promotion_requests.c.status == status)
        with read_transaction(self.engine) as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def approve_request(self, request_id: int, *, comment: str | None, expected: int | None, payload) -> dict[str, Any]:
        """Approve as the authenticated role through the database (team roles only).

        The database checks the approver role, the policy's approver list, that the
        requester is someone else and that the alias still has holder ``expected``;
        it moves the alias once enough approvers agreed.  ``{status, previous}``.
        """
        return self._write(
            lambda conn: conn.execute(
                text("SELECT mlops_approve(:i, :c, :e, CAST(:p AS json))"),
                {"i": int(request_id), "c": comment, "e": expected, "p": _json(payload)},
            ).scalar_one()
        )

    def update_promotion_request(self, conn: Connection, request_id: int, **values: Any) -> None:
        """Change a request inside the caller's transaction."""
        conn.execute(t.promotion_requests.update().where(t.promotion_requests.c.id == int(request_id)).values(**values))


def _guarded_move(conn: Connection, name, alias, version, action, expected, reason, payload) -> int | None:
    result = conn.execute(
        text("SELECT mlops_move_alias(:n, :a, :v, :act, :e, :check, :r, CAST(:p AS json))"),
        {"n": name, "a": alias, "v": None if version is None else int(version), "act": action,
         "e": None if expected == "any" else expected, "check": expected != "any", "r": reason, "p": _json(payload)},
    ).scalar_one()  # fmt: skip
    if not result["moved"]:
        raise ConcurrentChange(
            f"{name}@{alias} moved to version {result['previous']} while this change was being checked "
            f"(it was {expected}). Look at %mlops versions {name} and try again.",
            name=name, alias=alias, found=result["previous"], expected=expected,
        )  # fmt: skip
    return result["previous"]


def _json(value: Any) -> str | None:
    import json

    from .roles import with_principal

    value = with_principal(value)
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def _target(name: str) -> str:
    return f"model:{name}"


def _version_query():
    mv = t.model_versions
    return select(
        t.registry_versions,
        mv.c.flavor, mv.c.class_name, mv.c.params, mv.c.artifact_digest, mv.c.artifact_size,
        mv.c.run_id.label("training_run_id"),
    ).join(mv, mv.c.digest == t.registry_versions.c.model_digest)  # fmt: skip


def _with_aliases(row: dict[str, Any], aliases: Mapping[str, int]) -> dict[str, Any]:
    row["aliases"] = sorted(a for a, v in aliases.items() if v == row["version"])
    if row.get("run_id") is None:
        row["run_id"] = row.get("training_run_id")
    row.pop("training_run_id", None)
    return row

