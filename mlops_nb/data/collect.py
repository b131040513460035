"""Garbage collection of snapshot chunks (``mlops-nb gc``).

Kept: snapshots pinned (a registered model was trained on them), the training data of any
registered model version, and every snapshot of the last ``keep_days`` days. The others'
rows are dropped first; then each chunk no remaining snapshot lists and no writer has
leased is deleted under the lease lock (see :mod:`mlops_nb.store.snapshots`), so a chunk a
concurrent writer is reusing survives.
"""

from __future__ import annotations

import time
from typing import Any


def collect(store: Any, *, keep_days: float = 30.0, dry_run: bool = False, among: Any = None) -> dict[str, Any]:
    """Drop unkept snapshots and delete their orphan chunks; return what was (or would be) freed.

    ``among``: only these data versions are candidates (a traffic log expiring its own batches).
    """
    if keep_days < 0:
        from ..errors import SnapshotError

        raise SnapshotError(f"keep_days must be >= 0, got {keep_days}.", keep_days=keep_days)
    cutoff = time.time() - keep_days * 86400
    victims = store.unkept_snapshots(cutoff)
    if among is not None:
        wanted = set(among)
        victims = [v for v in victims if v["digest"] in wanted]
    digests = [v["digest"] for v in victims]
    manifests = [v["manifest"] for v in victims]
    if dry_run:
        chunks = _chunks_of(store, digests)
        orphans = store.orphan_chunks(chunks, ignoring=digests)
        size = sum(_size(store, c) for c in orphans + store.orphan_chunks(manifests, ignoring=digests))
        return {"versions": len(digests), "chunks": len(orphans), "bytes": size, "dry_run": True, "digests": digests}
    orphans = store.drop_snapshots(digests)
    deleted, freed = store.delete_unreferenced(orphans, store.artifacts.delete)
    # a manifest too is deleted only if no snapshot (re-made meanwhile) lists it and no writer leased it
    freed += store.delete_unreferenced(manifests, store.artifacts.delete)[1]
    return {"versions": len(digests), "chunks": deleted, "bytes": freed, "dry_run": False, "digests": digests}


def _chunks_of(store: Any, digests: list[str]) -> set[str]:
    chunks: set[str] = set()
    for digest in digests:
        row = store.get_snapshot(digest)
        if row is not None:
            chunks.update(c["chunk"] for c in row["chunk_list"])
    return chunks


def _size(store: Any, digest: str) -> int:
    try:
        return int(store.artifacts.fs.size(store.artifacts.path(digest)) or 0)
    except FileNotFoundError:
        return 0
