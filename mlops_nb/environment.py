"""Where and with what a run executed: Python, key packages, user, notebook path (git state: :mod:`.gitstate`)."""

from __future__ import annotations

import contextvars
import functools
import getpass
import os
import platform
import sys
from collections.abc import Mapping
from importlib import metadata
from typing import Any

KEY_PACKAGES = (
    "mlops_nb", "numpy", "pandas", "scipy", "scikit-learn", "skops", "xgboost", "lightgbm",
    "catboost", "torch", "tensorflow", "statsmodels", "pyarrow", "ipykernel", "papermill",
)  # fmt: skip


@functools.lru_cache(maxsize=1)
def environment() -> dict[str, Any]:
    """Python version, platform and versions of the key installed packages.

    Cached per process: a package already imported cannot change version
    without a kernel restart.
    """
    packages = {}
    for name in KEY_PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "executable": sys.executable,
        "packages": packages,
    }


#: The person a shared process acts for (the sidebar's Jupyter user when several share one server
#: and one database role): recorded in audit events beside the authenticated actor.
on_behalf_of: contextvars.ContextVar[str | None] = contextvars.ContextVar("mlops_nb_on_behalf_of", default=None)


def current_user() -> str:
    """Who is acting: ``MLOPS_NB_USER``, else the OS user ("unknown" without a passwd entry)."""
    return os.environ.get("MLOPS_NB_USER") or _os_user()


@functools.cache
def _os_user() -> str:
    """``getpass.getuser()``, asked once per process: a run asks who acts every time."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


def notebook_path(user_ns: Mapping[str, Any] | None = None) -> str | None:
    """Path of the running notebook when it can be known, else None (never a wrong name).

    Sources, in order: ``MLOPS_NB_NOTEBOOK`` (set by our job runner), VS Code's
    ``__vsc_ipynb_file__``, ipykernel's ``__session__`` (JupyterLab), ``JPY_SESSION_NAME``.
    """
    ns = user_ns or {}
    for candidate in (
        os.environ.get("MLOPS_NB_NOTEBOOK"),
        ns.get("__vsc_ipynb_file__"),
        ns.get("__session__"),
        os.environ.get("JPY_SESSION_NAME"),
    ):
        if isinstance(candidate, str) and candidate.endswith(".ipynb"):
            return candidate
    return None
