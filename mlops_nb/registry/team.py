"""Policy files loaded into a team registry; the SQLite note on approvals.

On a PostgreSQL registry with team roles (``mlops-nb admin init-roles``) the policy
is a row of ``mlops_policies``, loaded by an admin from a ``policy.toml`` and audited
(:func:`policy.database_policy` reads it).  The database checks approvers against it,
so a writer cannot loosen it by editing a local file; the client reads the same row to
evaluate the metric and lineage gates.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PolicyError
from .policy import Policy

if TYPE_CHECKING:
    from ..store import SqlStore

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_noted = False


def read_policy_file(path: str | Path) -> dict:
    """The TOML file at ``path`` as a checked policy body."""
    path = Path(path).expanduser()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(f"The policy file {str(path)!r} does not exist.", path=str(path)) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"Cannot read the policy file {str(path)!r}: {exc}.", path=str(path)) from None
    Policy.from_dict(data, str(path))  # refuses unknown keys and bad values before the database sees them
    return data


def note_advisory_approvals(store: SqlStore, approvers: list[str]) -> None:
    """Say once per process that approvals on SQLite are advisory (names are self-declared)."""
    global _noted
    if _noted or not approvers or store.engine.dialect.name != "sqlite":
        return
    _noted = True
    print(
        "Note: on a SQLite registry approvals are advisory: user names come from MLOPS_NB_USER or the OS, "
        "and the file's permissions are the only access control. For enforced approvals use the team "
        "backend (PostgreSQL with mlops-nb admin init-roles).",
        file=sys.stderr,
    )
