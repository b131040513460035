"""Where and with what a run executed: Python, key packages, git state, notebook path."""

from __future__ import annotations

import contextvars
import functools
import getpass
import os
import platform
import subprocess
import sys
import threading
import time
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


#: The person a shared process acts for (the sidebar's Jupyter user when several share one server
#: and one database role): recorded in audit events beside the authenticated actor.
on_behalf_of: contextvars.ContextVar[str | None] = contextvars.ContextVar("mlops_nb_on_behalf_of", default=None)


def current_user() -> str:
    """Who is acting: ``MLOPS_NB_USER``, else the OS user ("unknown" without a passwd entry)."""
    try:
        return os.environ.get("MLOPS_NB_USER") or getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


_NO_GIT_S = 10.0
_no_git: dict[Path, float] = {}  # cwd -> when it was last found outside any work tree


def prefetch_git_state(path: str | os.PathLike[str] | None = None) -> Any:
    """A Future of :func:`git_state` of ``path``, taken in a thread from now (a run starting), so
    that the ``git status`` it waits for overlaps the run's own work; None outside a work tree."""
    cwd = Path(path or os.getcwd())
    if not any(os.environ.get(v) for v in ("GIT_DIR", "GIT_WORK_TREE")) and _gitdir(cwd) is None:
        return None  # no process to wait for
    from concurrent.futures import Future

    future: Future = Future()

    def work() -> None:
        try:
            future.set_result(_git_status(cwd))
        except BaseException as exc:  # handed to whoever asks for the result
            future.set_exception(exc)

    threading.Thread(target=work, name="mlops-git-state", daemon=True).start()
    return future


def git_state(path: str | os.PathLike[str] | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git work tree containing ``path``; (None, None) outside one.

    Outside a work tree no process is started (a few ``stat`` calls tell, and
    the answer is kept :data:`_NO_GIT_S` seconds); inside one, a single ``git
    status`` gives both, every time: an edit between two runs must show.
    """
    cwd = Path(path or os.getcwd())
    if not any(os.environ.get(v) for v in ("GIT_DIR", "GIT_WORK_TREE")) and _gitdir(cwd) is None:
        return None, None
    return _git_status(cwd)


def _git_status(cwd: Path) -> tuple[str | None, bool | None]:
    try:
        done = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None, None
    if done.returncode != 0:
        return None, None
    lines = done.stdout.splitlines()
    commit = next((line.split()[2] for line in lines if line.startswith("# branch.oid ")), None)
    if commit is None or commit == "(initial)":  # a repository without a commit yet
        return None, None
    return commit, any(not line.startswith("#") for line in lines if line.strip())


def _gitdir(cwd: Path) -> Path | None:
    """The git directory of the work tree holding ``cwd`` (``.git``, or where a ``.git`` file points)."""
    if time.monotonic() - _no_git.get(cwd, -_NO_GIT_S) < _NO_GIT_S:
        return None
    try:
        folder = cwd.resolve()
    except OSError:
        return None
    for parent in (folder, *folder.parents):
        dot_git = parent / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():  # a linked work tree or a submodule: "gitdir: PATH"
            text = dot_git.read_text(errors="replace").strip()
            if text.startswith("gitdir:"):
                return (parent / text.partition(":")[2].strip()).resolve()
    _no_git[cwd] = time.monotonic()
    return None


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
