"""Team roles on a PostgreSQL registry: set them up, grant them, see who holds what, load the policy.

The machinery (roles, grants, SECURITY DEFINER functions, audit triggers) is in
:mod:`mlops_nb.store.roles`; this is the API the ``mlops-nb admin`` commands call.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..store import SqlStore

__all__ = ["init_roles", "grant", "revoke", "who", "load_policy", "show_policy"]


def _team_store(store: SqlStore | None) -> SqlStore:
    from ..store import get_store

    store = store or get_store()
    if store.engine.dialect.name != "postgresql":
        raise ConfigError(
            "Team roles need a PostgreSQL registry. A SQLite registry is single-user: its file's permissions "
            "are its access control (mlops-nb doctor checks them).",
            url=store.url,
        )
    return store


def _secured(store: SqlStore) -> SqlStore:
    if not store.secured:
        raise ConfigError(
            "This registry has no team roles yet: its owner runs mlops-nb admin init-roles first.", url=store.url
        )
    return store


def init_roles(*, store: SqlStore | None = None) -> list[str]:
    """Create the four team roles, their grants, the guarded functions and the audit triggers.

    Run by the role that owns the registry's tables (and may create roles); safe to run
    again, e.g. after an upgrade added tables.  Returns the team roles.
    """
    from ..store.roles import ROLES, install_roles

    store = _team_store(store)
    store._write(install_roles)
    store.secured = True
    return list(ROLES)


def grant(user: str, role: str, *, password: str | None = None, store: SqlStore | None = None) -> bool:
    """Give ``user`` the team ``role`` (reader, writer, approver, admin); True when the login role was created."""
    from ..store.roles import grant_role

    _check_role(role)
    store = _secured(_team_store(store))
    return store._write(lambda conn: grant_role(conn, user, role, password=password))


def revoke(user: str, role: str, *, store: SqlStore | None = None) -> None:
    """Take the team ``role`` away from ``user``."""
    from ..store.roles import revoke_role

    _check_role(role)
    store = _secured(_team_store(store))
    store._write(lambda conn: revoke_role(conn, user, role))


def who(*, store: SqlStore | None = None) -> dict[str, Any]:
    """``{"you": session user, "your_roles": [...], "members": {role: [users]}}``."""
    from ..store.engine import read_transaction
    from ..store.roles import members, roles_of

    store = _secured(_team_store(store))
    with read_transaction(store.engine) as conn:
        return {"you": store.session_user, "your_roles": roles_of(conn), "members": members(conn)}


def load_policy(path: str | Path, *, store: SqlStore | None = None) -> int:
    """Store ``path`` (a policy.toml) as the registry's policy in force (admins only, audited); its version."""
    from ..registry.team import read_policy_file
    from ..store.roles import load_policy_body

    store = _secured(_team_store(store))
    body = read_policy_file(path)
    return store._write(lambda conn: load_policy_body(conn, body, str(path)))


def show_policy(*, store: SqlStore | None = None) -> dict[str, Any] | None:
    """The policy in force: ``{version, body, source, loaded_by, loaded_at}``, or None."""
    from ..store.engine import read_transaction
    from ..store.roles import current_policy

    store = _secured(_team_store(store))
    with read_transaction(store.engine) as conn:
        found = current_policy(conn)
    if found is None:
        return None
    return dict(zip(("version", "body", "source", "loaded_by", "loaded_at"), found))


def _check_role(role: str) -> None:
    from ..store.roles import ROLES

    if role not in ROLES:
        raise ConfigError(f"{role!r} is not a team role: use one of {', '.join(ROLES)}.", role=role)
