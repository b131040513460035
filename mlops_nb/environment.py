"""Where and with what a run executed: Python, key packages, git state, notebook path."""

from __future__ import annotations

import functools
import getpass
import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
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


def current_user() -> str:
    """Who is acting: ``MLOPS_NB_USER``, else the OS user ("unknown" without a passwd entry)."""
    try:
        return os.environ.get("MLOPS_NB_USER") or getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


def git_state(path: str | os.PathLike[str] | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git work tree containing ``path``; (None, None) outside one."""
    cwd = Path(path or os.getcwd())
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit.stdout.strip(), bool(status.stdout.strip()) if status.returncode == 0 else None


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
