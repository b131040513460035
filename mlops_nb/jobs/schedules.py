"""Schedule definitions kept in the registry: add (only for validated notebooks), pause, remove."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from ..environment import current_user
from ..errors import JobError
from .notebook import check_parameter_names, file_hash, notebook_file, params_hash

if TYPE_CHECKING:
    from ..store.sql import SqlStore

CATCHUP_POLICIES = ("skip", "one", "all")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")


def check_cron(cron: str, tz: str = "UTC") -> None:
    """Refuse a cron expression croniter cannot read, or an unknown time zone."""
    if not isinstance(cron, str) or len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise JobError(
            f"Invalid cron expression {cron!r}: use five fields, minute hour day month weekday "
            "(e.g. '0 3 * * *' for 03:00 every day).",
            cron=cron,
        )
    zone(tz)


def zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise JobError(f"Unknown time zone {tz!r}: use an IANA name such as UTC or Europe/Paris.", tz=tz) from None


def next_times(cron: str, after: float, count: int = 1, tz: str = "UTC") -> list[float]:
    """The next ``count`` slots of ``cron`` strictly after epoch time ``after``."""
    it = croniter(cron, dt.datetime.fromtimestamp(after, zone(tz)))
    return [it.get_next(float) for _ in range(count)]


def add_schedule(
    notebook: str | os.PathLike[str],
    cron: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    timeout: float | None = None,
    retries: int = 0,
    kernel: str | None = None,
    catchup: str = "one",
    tz: str = "UTC",
    force: bool = False,
    reason: str | None = None,
    replace: bool = False,
    store: SqlStore | None = None,
) -> dict[str, Any]:
    """Schedule a notebook; refused unless that exact notebook passed :func:`validate`.

    Parameters
    ----------
    notebook : path
        The ``.ipynb`` file; its content hash is recorded, and a firing is
        refused if the file changed since.
    cron : str
        Five-field cron expression, read in time zone ``tz``.
    parameters : mapping, optional
        Values for the parameters cell (a passing validation with the same values is required).
    timeout : float, optional
        Wall-clock limit per attempt; the kernel is killed when it passes.
    retries : int
        Extra attempts after a failure, with exponential backoff.
    catchup : {"skip", "one", "all"}
        What to do with slots missed while no scheduler ran: record them as
        skipped, run the latest one, or run each of them.
    force : bool
        Schedule without a passing validation; recorded in the audit log with ``reason``.
    replace : bool
        Overwrite an existing schedule of the same name.

    Returns
    -------
    dict
        The stored schedule.
    """
    from ..store import get_store

    store = store or get_store()
    file = notebook_file(notebook)
    params = dict(parameters or {})
    check_cron(cron, tz)
    if catchup not in CATCHUP_POLICIES:
        raise JobError(f"catchup must be one of {', '.join(CATCHUP_POLICIES)}, got {catchup!r}.")
    if retries < 0 or (timeout is not None and timeout <= 0):
        raise JobError("retries must be >= 0 and timeout > 0 seconds.")
    name = name or re.sub(r"[^A-Za-z0-9_.\-]", "-", file.stem)
    if not _NAME.match(name):
        raise JobError(f"Invalid schedule name {name!r}: letters, digits, '_', '-', '.'; start with a letter or digit.")
    check_parameter_names(file, params)
    nb_hash = file_hash(file)
    validation = store.find_validation(nb_hash, params_hash(params), passed=True)
    if validation is None and not force:
        raise JobError(_refusal(store, file, nb_hash, params), notebook_hash=nb_hash)
    schedule = {
        "name": name, "notebook_path": str(file), "notebook_hash": nb_hash, "cron": cron, "timezone": tz,
        "parameters": params, "timeout": timeout, "retries": retries, "kernel": kernel, "catchup": catchup,
        "paused": False, "validation_id": validation["id"] if validation else None,
        "forced": validation is None, "user": current_user(),
    }  # fmt: skip
    store.save_schedule(schedule, replace=replace, reason=reason)
    return store.get_schedule(name)


def _refusal(store, file, nb_hash: str, params: Mapping[str, Any]) -> str:
    command = f"mlops-nb validate {file}" + "".join(f" -p {k} {v}" for k, v in params.items())
    last = store.find_validation(nb_hash, params_hash(params))
    if last is None:
        any_params = store.find_validation(nb_hash, passed=True)
        why = (
            "it passed validation only with other parameters"
            if any_params
            else "this exact notebook (content hash " + nb_hash[:12] + ") was never validated"
        )
    else:
        failing = [c["name"] for c in last["checks"] if c["status"] != "pass"]
        why = f"its last validation did not pass ({', '.join(failing)})"
    return (
        f"Refusing to schedule {file.name}: {why}. Run `{command}` until it passes, "
        "or add --force (recorded in the audit log)."
    )
