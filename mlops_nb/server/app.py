"""Configuration of the sidebar API (``c.MlopsNb.*``); :mod:`mlops_nb.server` registers it.

The registry is found as a kernel started by this server would find it:
``MlopsNb.store_url`` / ``MlopsNb.artifacts_url`` (traitlets config) first,
then ``MLOPS_NB_STORE_URL`` / ``MLOPS_NB_ARTIFACTS_URL`` / ``MLOPS_NB_HOME``,
else ``<server root_dir>/.mlops/`` — the folder a notebook at the root writes
to by default.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, TypeVar

from traitlets import Dict, Int, Unicode
from traitlets.config import LoggingConfigurable

from ..errors import Forbidden, NotFoundError

T = TypeVar("T")

#: URL prefix of every endpoint, below the server's base_url.
API_PREFIX = "mlops-nb/api"
#: What each team role includes (as the database's roles: store/roles.py).
_INCLUDES = {"reader": {"reader"}, "writer": {"reader", "writer"}, "approver": {"reader", "approver"},
             "admin": {"reader", "writer", "approver", "admin"}}  # fmt: skip


class MlopsNb(LoggingConfigurable):
    """Settings of the mlops_nb server extension (``c.MlopsNb.store_url = ...``)."""

    store_url = Unicode(
        "", config=True,
        help="SQLAlchemy URL of the registry; default: as the kernel finds it (env, else <root_dir>/.mlops/).",
    )  # fmt: skip
    artifacts_url = Unicode("", config=True, help="fsspec URL of the artifact folder (default: beside the store).")
    max_results = Int(500, config=True, help="Largest page of runs one request may ask for.")
    roles = Dict(
        {}, config=True,
        help="Team roles of Jupyter users for the sidebar's writes, e.g. {'ana': ['writer'], 'li': ['approver'], "
        "'*': ['reader']} ('*': everyone else). Empty: no check here (the database's roles still apply).",
    )  # fmt: skip

    def __init__(self, root_dir: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root_given = Path(root_dir).expanduser().absolute()  # as kernels see it (symlinks kept)
        self.root_dir = self.root_given.resolve()
        # One worker: store calls are short, and SQLite prefers one writer; the
        # event loop of the server never waits on the database.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlops-nb-api")

    # ---- where the registry is ---------------------------------------------------------
    def locations(self) -> tuple[str, str | None]:
        """(store URL, artifacts URL or None for "beside the store")."""
        from .. import config

        if self.store_url:
            return self.store_url, self.artifacts_url or None
        if os.environ.get("MLOPS_NB_STORE_URL") or os.environ.get("MLOPS_NB_HOME"):
            return config.store_url(), self.artifacts_url or None
        home = self.root_dir / ".mlops"
        return f"sqlite:///{home / 'registry.db'}", self.artifacts_url or str(home / "artifacts")

    def registry_info(self) -> dict[str, Any]:
        url, _ = self.locations()
        return {"store_url": _hide_password(url), "exists": self._exists(url)}

    def spool_info(self) -> dict[str, Any]:
        """What waits in the local spool for this registry (see :func:`.views.spool_waiting`)."""
        from .views import spool_waiting

        url, _ = self.locations()
        return spool_waiting(url, _hide_password(url))

    def store(self):
        """The registry store; NotFoundError when its SQLite file does not exist yet.

        The server never creates a registry: an empty folder stays empty until
        a notebook records something.
        """
        from ..store import get_store

        url, artifacts = self.locations()
        if not self._exists(url):
            raise NotFoundError(
                f"No registry yet at {_hide_password(url)}: run a %%mlops track cell in a notebook under "
                "this server's root, or set MLOPS_NB_HOME / c.MlopsNb.store_url.",
                store_url=url,
            )
        return get_store(url, artifacts)

    @staticmethod
    def _exists(url: str) -> bool:
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            return Path(url[len("sqlite:///"):]).exists()
        return True  # a server database: opening it tells

    # ---- who may do what -------------------------------------------------------------------
    def roles_of(self, user: str) -> set[str] | None:
        """The team roles ``c.MlopsNb.roles`` gives ``user`` (with what they include); None: no mapping."""
        if not self.roles:
            return None
        given = self.roles.get(user, self.roles.get("*", []))
        given = [given] if isinstance(given, str) else list(given)
        return set().union(*(_INCLUDES.get(r, set()) for r in given))

    def require(self, user: str, role: str, action: str) -> None:
        """Raise :class:`Forbidden` saying why, when the mapping does not give ``user`` the ``role``."""
        held = self.roles_of(user)
        if held is None or role in held:
            return
        listed = ", ".join(sorted(held)) or "no role"
        raise Forbidden(
            f"{user} may not {action}: it needs the {role} role, and c.MlopsNb.roles gives {user} {listed}. "
            "Ask whoever runs this Jupyter server.",
            user=user, role=role,
        )  # fmt: skip

    # ---- running store calls off the event loop ---------------------------------------
    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        self._executor.shutdown(wait=False)

    # ---- notebook paths -------------------------------------------------------------------
    def notebook_candidates(self, api_path: str) -> list[str]:
        """The forms a kernel may have recorded for the notebook at ``api_path``.

        jupyter_server hands kernels the absolute OS path (``JPY_SESSION_NAME``);
        older set-ups recorded the path relative to the root.
        """
        rel = api_path.strip("/")
        absolute = self.root_given / rel
        forms = {rel, str(absolute), str(self.root_dir / rel), os.path.realpath(absolute)}
        return sorted(forms)


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL: shown as given (it has no password)
        return url
