"""Data versions you can get back: snapshots with chunk-level deduplication.

>>> import mlops_nb
>>> mlops_nb.snapshot(df, name="train")           # keep these bytes now
'data:4d3508ff...'
>>> mlops_nb.load_data("run:e3cb8076/df")        # the exact frame that run read
>>> mlops_nb.load_data("model:churn@production/train")

Tracked runs snapshot their inputs by themselves (see :mod:`mlops_nb.snapshots.policy`); registering a model
pins the data it was trained on, so ``gc`` keeps it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import SnapshotError
from .references import resolve

__all__ = ["snapshot", "load_data", "export_data", "gc", "snapshot_info", "snapshot_table"]


def _store(store: Any = None) -> Any:
    if store is not None:
        return store
    from ..store import get_store

    return get_store()


def snapshot(obj: Any, name: str | None = None, *, store: Any = None) -> str:
    """Store the bytes of ``obj`` (a DataFrame, Series, array or file path) now; return ``data:DIGEST``.

    Inside a run (``with mlops_nb.track():``, a tracked cell) it is also recorded as
    an input of that run under ``name``.
    """
    from ..fingerprint import data_kind
    from ..tracking.capture import data_record
    from ..snapshots.background import write_now
    from ..snapshots.policy import Item, frozen_copy

    kind = "file" if isinstance(obj, str | os.PathLike) else data_kind(obj)
    if kind not in {"dataframe", "series", "array", "file"}:
        raise SnapshotError(
            f"Cannot snapshot a {type(obj).__name__}: pass a DataFrame, Series, numpy array or a file path.",
            type_name=type(obj).__name__,
        )
    if kind == "file":
        obj = Path(obj)
        if not obj.is_file():
            raise SnapshotError(f"Cannot snapshot {obj}: it is not an existing file.", path=str(obj))
    from ..tracking import active_run

    run = active_run()
    label = name or "data"
    if run is not None:
        run.log_input(label, obj)
        record = run.inputs[label]
    else:
        record = data_record(label, obj)
    digest = record["digest"]
    s = _store(store if store is not None else run.store if run is not None else None)
    notes = write_now([Item(record, frozen_copy(obj))], s.url, s.artifacts.url)
    if notes:
        raise SnapshotError(notes[0].removeprefix("mlops: "), digest=digest)
    return f"data:{digest}"


def load_data(ref: str, *, store: Any = None) -> Any:
    """The exact object a data reference names, rebuilt from its snapshot.

    ``data:DIGEST``, ``run:ID/NAME``, ``model:NAME@ALIAS/train``: see
    :mod:`.references`. A reference naming several versions (``model:REF/train`` of
    a run that read ``X`` and ``y``) returns a dict of name -> object. A file comes
    back as its bytes (see :func:`export_data` to write it out).
    """
    from ..snapshots.storage import read_snapshot

    s = _store(store)
    found = resolve(ref, s)
    objects = {name: read_snapshot(record["digest"], s) for name, record in found.items()}
    return next(iter(objects.values())) if len(objects) == 1 else objects


def export_data(ref: str, path: str | os.PathLike[str], *, store: Any = None) -> Path:
    """Write the data version ``ref`` names to ``path`` (.parquet, .csv, .npy, or any name for a file)."""
    import numpy as np

    obj = load_data(ref, store=store)
    if isinstance(obj, dict):
        raise SnapshotError(
            f"{ref!r} names {len(obj)} data versions ({', '.join(obj)}): name one, e.g. {ref.split('/')[0]}/"
            f"{next(iter(obj))}.", reference=ref)  # fmt: skip
    target = Path(path)
    suffix = target.suffix.lower()
    tmp = target.with_name(f".{target.name}.tmp")
    if isinstance(obj, bytes):
        tmp.write_bytes(obj)
    elif isinstance(obj, np.ndarray):
        if suffix not in {".npy", ""}:
            raise SnapshotError(f"{ref!r} is a numpy array: export it to a .npy file.", reference=ref)
        with open(tmp, "wb") as f:
            np.save(f, obj)
    elif suffix == ".parquet":
        frame = obj.to_frame(name=obj.name if obj.name is not None else "value") if obj.ndim == 1 else obj
        frame.to_parquet(tmp)
    elif suffix == ".csv":
        obj.to_csv(tmp)
    else:
        raise SnapshotError(f"Export to {target.name}: use a .parquet or .csv file for a table.", path=str(target))
    os.replace(tmp, target)
    return target


def snapshot_info(ref: str, *, store: Any = None) -> list[dict[str, Any]]:
    """Snapshot rows (chunks, bytes in memory, stored, new) of the versions ``ref`` names."""
    s = _store(store)
    out = []
    for name, record in resolve(ref, s).items():
        row = s.get_snapshot(record["digest"])
        out.append({"name": name, "digest": record["digest"], "snapshot": row})
    return out


def snapshot_table(ref: str, *, store: Any = None) -> str:
    """:func:`snapshot_info` as a table (``mlops-nb data show``, ``%mlops data show``)."""
    from ..report import size_text, table_text

    rows = []
    for item in snapshot_info(ref, store=store):
        snap = item["snapshot"]
        if snap is None:
            rows.append([item["name"], item["digest"][:12], "-", "-", "-", "-", "no snapshot (fingerprint only)"])
            continue
        kept = f"{size_text(snap['stored_bytes'])} stored, {size_text(snap['new_bytes'])} new" + (", pinned" if snap["pinned"] else "")
        rows.append([item["name"], item["digest"][:12], snap["kind"], snap["rows"], snap["chunks"], size_text(snap["nbytes"]), kept])
    return table_text(["name", "digest", "kind", "rows", "chunks", "in memory", "snapshot"], rows)


def gc(*, keep_days: float = 30.0, dry_run: bool = False, store: Any = None) -> dict[str, Any]:
    """Remove snapshot chunks no kept version lists: see :func:`mlops_nb.data.collect.collect`."""
    from .collect import collect

    return collect(_store(store), keep_days=keep_days, dry_run=dry_run)
