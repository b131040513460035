"""Which data versions of a run are snapshotted, and the copies their bytes are taken from.

By default: the inputs of a finished run that produced a model or a metric (what it takes
to retrain it or check its numbers), up to ``MLOPS_NB_SNAPSHOT_MAX`` bytes per run (2 GB).
Each is copied at the end of the cell, so the cell after it may change the object freely:
pandas' copy-on-write makes that copy free for frames (a deep copy on pandas < 3).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import config
from ..report import size_text
from ..errors import ConfigError

DEFAULT_MAX = 2 * 10**9


@dataclass
class Item:
    """One data version to snapshot: its record (name, digest, kind, shape, schema, profile)
    and a copy of its object, or the path of a file."""

    record: dict[str, Any]
    obj: Any


@dataclass
class Plan:
    items: list[Item] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def enabled() -> bool:
    return bool(config.settings.snapshots)


def size_cap() -> tuple[int, str | None]:
    """Bytes one run may snapshot, and a note when the setting could not be read."""
    try:
        return config.parse_size(config.settings.snapshot_max, "MLOPS_NB_SNAPSHOT_MAX"), None
    except ConfigError as exc:
        return DEFAULT_MAX, f"{exc} Using 2GB."


def plan(records: list[dict[str, Any]], objects: dict[str, Any], *, produced: bool,
         force: bool = False) -> Plan:  # fmt: skip
    """What to snapshot of ``records`` (data versions, with their objects by digest).

    ``produced``: the run made a model or a metric. ``force``: snapshot whatever the policy.
    """
    out = Plan()
    if not force and (not enabled() or not produced):
        return out
    cap, note = size_cap()
    if note:
        out.notes.append(note)
    used = 0
    for record in records:
        obj = objects.get(record["digest"])
        if obj is None or record.get("kind") not in {"dataframe", "series", "array", "file"}:
            continue
        size = nbytes(obj)
        if used + size > cap and not force:
            out.notes.append(
                f"data {record['name']} ({size_text(size)}) not snapshotted: over the {size_text(cap)} per run "
                "(raise MLOPS_NB_SNAPSHOT_MAX, or keep it with mlops_nb.snapshot(obj))."
            )
            continue
        try:
            copy = frozen_copy(obj)
        except Exception as exc:  # a copy that fails must not cost the run
            out.notes.append(f"data {record['name']} not snapshotted: copying it failed ({exc}).")
            continue
        used += size
        out.items.append(Item(dict(record), copy))
    return out


def nbytes(obj: Any) -> int:
    """Bytes of ``obj`` in memory (shallow for Python strings: an estimate is enough here)."""
    if isinstance(obj, str | os.PathLike):
        try:
            return Path(obj).stat().st_size
        except OSError:
            return 0
    usage = getattr(obj, "memory_usage", None)
    if usage is not None:
        try:
            total = usage(index=True, deep=False)
            return int(total.sum()) if hasattr(total, "sum") else int(total)
        except TypeError:
            return int(usage(index=True))
    return int(getattr(obj, "nbytes", 0))


def frozen_copy(obj: Any) -> Any:
    """A copy later changes to ``obj`` cannot reach (a path stays a path: the file is read and
    checked against its fingerprint when written)."""
    if isinstance(obj, str | os.PathLike):
        return Path(obj)
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.copy()
    import pandas as pd

    if isinstance(obj, pd.DataFrame | pd.Series):
        return obj.copy(deep=not _copy_on_write(pd))
    raise TypeError(f"{type(obj).__name__} is not data that can be snapshotted")


def _copy_on_write(pd: Any) -> bool:
    if int(pd.__version__.split(".")[0]) >= 3:
        return True
    try:
        return bool(pd.options.mode.copy_on_write is True)
    except AttributeError:
        return False
