"""Where the registry lives and which project a run belongs to.

Resolution order for the store and artifact locations, first match wins:

1. explicit arguments (``get_store(url, artifacts)``, ``%mlops init --store``),
2. :func:`init` earlier in this process,
3. ``MLOPS_NB_STORE_URL`` / ``MLOPS_NB_ARTIFACTS_URL``,
4. ``MLOPS_NB_HOME``: a folder holding ``registry.db`` and ``artifacts/``,
5. ``./.mlops/`` in the current working directory (the notebook's folder).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

DEFAULT_PROJECT = "default"

#: Numeric scalars bound to names matching this pattern are recorded as metrics.
DEFAULT_METRIC_PATTERN = (
    r"(^|_)(accuracy|acc|precision|recall|f1|auc|roc_auc|rmse|mse|mae|mape|r2"
    r"|loss|logloss|log_loss|score|error)$"
)


@dataclass
class Settings:
    """Process-wide settings changed by :func:`init` and :func:`configure`."""

    store_url: str | None = None
    artifacts_url: str | None = None
    project: str | None = None
    #: Whether opening a store may create a registry that does not exist yet.  Read-only
    #: commands (``mlops-nb summary``...) turn it off so that they never leave an empty one behind.
    create_store: bool = True
    metric_pattern: str = field(
        default_factory=lambda: os.environ.get("MLOPS_NB_METRIC_PATTERN", DEFAULT_METRIC_PATTERN)
    )
    #: Whether tracked runs keep the bytes of their data versions (snapshots), not only fingerprints.
    snapshots: bool = field(default_factory=lambda: os.environ.get("MLOPS_NB_SNAPSHOTS", "1").strip().lower()
                            not in {"0", "false", "no", "off"})  # fmt: skip
    #: Most bytes (in memory) of data one run snapshots; larger versions are noted and skipped.
    #: (Read when a run snapshots, so that a mistyped value is a note there, not an import error.)
    snapshot_max: str | int = field(default_factory=lambda: os.environ.get("MLOPS_NB_SNAPSHOT_MAX", "2GB"))


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20,
          "gib": 2**30, "tib": 2**40}  # fmt: skip


def parse_size(text: str | int, source: str = "size") -> int:
    """``"2GB"``, ``"500 MiB"`` or a number of bytes, as bytes; a ConfigError when it is none of them."""
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ConfigError(f"{source} must be a size such as 2GB, 500MB or 1073741824 (bytes), got {text!r}.",
                          value=text)  # fmt: skip
    return int(float(match.group(1)) * _UNITS[unit])


settings = Settings()


def home_dir() -> Path:
    """Folder of the embedded default store (``registry.db`` + ``artifacts/``)."""
    env = os.environ.get("MLOPS_NB_HOME")
    return _resolved(env, os.getcwd()) if env else _resolved(".", os.getcwd()) / ".mlops"


@functools.lru_cache(maxsize=64)
def _resolved(path: str, cwd: str) -> Path:
    # Every run asks for its store's location: resolving (an lstat per folder) once is enough.
    return (Path(cwd) / Path(path).expanduser()).resolve()


def store_url(explicit: str | None = None) -> str:
    """The SQLAlchemy URL of the registry database."""
    url = explicit or settings.store_url or os.environ.get("MLOPS_NB_STORE_URL")
    if url:
        return _check_url(url, "store")
    return f"sqlite:///{home_dir() / 'registry.db'}"


def store_source(explicit: str | None = None) -> str:
    """Where :func:`store_url` took the location from, for messages."""
    if explicit or settings.store_url:
        return "given with --store or init(store=...)"
    if os.environ.get("MLOPS_NB_STORE_URL"):
        return "from MLOPS_NB_STORE_URL"
    if os.environ.get("MLOPS_NB_HOME"):
        return "in MLOPS_NB_HOME"
    return f"in .mlops/ of the current folder {Path.cwd()}, since neither --store, MLOPS_NB_STORE_URL nor MLOPS_NB_HOME is set"


def artifacts_url(explicit: str | None = None, store: str | None = None) -> str:
    """The fsspec URL of the content-addressed artifact folder.

    When only a SQLite store path was given, artifacts go beside it.
    """
    url = explicit or settings.artifacts_url or os.environ.get("MLOPS_NB_ARTIFACTS_URL")
    if url:
        return url
    if store and store.startswith("sqlite:///") and store != "sqlite:///:memory:":
        return str(_resolved(store[len("sqlite:///"):], os.getcwd()).parent / "artifacts")
    return str(home_dir() / "artifacts")


def project_name(explicit: str | None = None) -> str:
    """The active project: argument, :func:`init`, ``MLOPS_NB_PROJECT`` or ``default``."""
    return explicit or settings.project or os.environ.get("MLOPS_NB_PROJECT") or DEFAULT_PROJECT


def init(project: str | None = None, store: str | None = None, artifacts: str | None = None) -> None:
    """Choose the project and, optionally, the store for this process.

    Parameters
    ----------
    project : str, optional
        Project that new runs belong to.
    store : str, optional
        SQLAlchemy URL (``sqlite:///path.db``, ``postgresql+psycopg://...``).
    artifacts : str, optional
        fsspec URL of the artifact folder (local path, ``s3://bucket/prefix``...).
        When a different store is given without it, artifacts go to that store's
        default folder (beside a SQLite file).
    """
    if project is not None:
        if not re.fullmatch(r"[\w.\- ]{1,200}", project):
            raise ConfigError(
                f"Invalid project name {project!r}: use letters, digits, '_', '-', '.' or spaces.",
                project=project,
            )
        settings.project = project
    if store is not None:
        checked = _check_url(store, "store")
        if artifacts is None and checked != store_url():
            # A new store brings its own artifact folder (beside a SQLite file, else the
            # environment's or the home folder's): never keep writing beside the old store.
            settings.artifacts_url = None
        settings.store_url = checked
    if artifacts is not None:
        settings.artifacts_url = artifacts


def configure(*, metric_pattern: str | None = None, snapshots: bool | None = None,
              snapshot_max: str | int | None = None) -> None:  # fmt: skip
    """Change capture settings for this process.

    ``metric_pattern``: a regex for metric-like names; ``snapshots``: keep the bytes of
    data versions (default on); ``snapshot_max``: most data one run snapshots (``"2GB"``).
    """
    if metric_pattern is not None:
        metric_regex(metric_pattern, source="metric_pattern")
        settings.metric_pattern = metric_pattern
    if snapshots is not None:
        settings.snapshots = bool(snapshots)
    if snapshot_max is not None:
        settings.snapshot_max = parse_size(snapshot_max, "snapshot_max")  # checked now: a clear error here


@functools.lru_cache(maxsize=8)
def metric_regex(pattern: str, source: str = "MLOPS_NB_METRIC_PATTERN") -> re.Pattern[str]:
    """``pattern`` compiled (case-insensitive), or a ConfigError naming where it came from."""
    try:
        return re.compile(pattern, flags=re.IGNORECASE)
    except re.error as exc:
        raise ConfigError(
            f"{source} is not a valid regular expression ({exc}): {pattern!r}. Fix it or unset it; the default "
            "matches names such as accuracy, val_loss or test_rmse.",
            pattern=pattern,
        ) from None


def reset() -> None:
    """Forget :func:`init` and :func:`configure` settings (mainly for tests)."""
    settings.__init__()  # type: ignore[misc]  # in place: modules hold a reference to it


def _check_url(url: str, what: str) -> str:
    if "://" not in url:
        # A bare path is the friendliest way to say "a SQLite file here".
        path = Path(url).expanduser().resolve()
        if path.suffix in {".db", ".sqlite", ".sqlite3"}:
            return f"sqlite:///{path}"
        raise ConfigError(
            f"The {what} URL {url!r} is not a URL: use e.g. sqlite:///path/registry.db "
            "or postgresql+psycopg://user@host/dbname.",
            url=url,
        )
    return url
