"""Store methods for data snapshots: their manifests and chunk lists, pins, leases and gc.

Chunks live in the artifact store; these tables say which data version lists which
chunk, so that gc is a query. A writer leases the chunks it is about to rely on before
looking whether they exist; gc deletes a chunk only inside a transaction that holds the
lease table's lock and finds neither a snapshot nor a lease naming it, so a chunk a
concurrent writer reuses is never deleted under it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select, text

from . import schema as t
from .engine import now, read_transaction

LEASE_TTL_S = 24 * 3600  # a writer that died leaves its lease; it stops protecting after a day


class SnapshotStoreMixin:
    """Mixed into :class:`~mlops_nb.store.sql.SqlStore`; uses its engine and helpers."""

    def lease_chunks(self, lease: str, chunks: Iterable[str]) -> None:
        """Protect ``chunks`` from gc until :meth:`record_snapshot` (or :meth:`release_lease`)."""
        stamp = now()
        rows = [{"lease": lease, "chunk": c, "created_at": stamp} for c in dict.fromkeys(chunks)]
        if rows:
            self._write(lambda conn: self._insert_ignore(conn, t.chunk_leases, rows, ["lease", "chunk"]))

    def release_lease(self, lease: str) -> None:
        self._write(lambda conn: conn.execute(t.chunk_leases.delete().where(t.chunk_leases.c.lease == lease)))

    def record_snapshot(self, snapshot: Mapping[str, Any], chunks: Sequence[Mapping[str, Any]], *,
                        version: Mapping[str, Any], lease: str | None = None) -> bool:  # fmt: skip
        """Record a snapshot of data version ``snapshot['digest']`` and its chunk list, once.

        ``version``: kind, shape and schema of the data version, inserted when no run
        recorded it yet (a forced snapshot). Returns False when it was already recorded.
        """
        digest = snapshot["digest"]
        stamp = now()

        def work(conn: Connection) -> bool:
            self._insert_ignore(conn, t.data_versions, [{
                "digest": digest, "kind": version.get("kind") or snapshot["kind"], "shape": version.get("shape"),
                "schema": version.get("schema"), "profile": version.get("profile"), "created_at": stamp,
            }], ["digest"])  # fmt: skip
            row = {c.name: snapshot.get(c.name) for c in t.data_snapshots.columns}
            row.update(created_at=stamp, pinned=bool(snapshot.get("pinned")), chunks=len(chunks))
            added = self._insert_ignore(conn, t.data_snapshots, [row], ["digest"]) == 1
            if added and chunks:
                conn.execute(t.snapshot_chunks.insert(), [
                    {"digest": digest, "seq": i, "chunk": c["chunk"], "rows": c.get("rows"), "size": c.get("size")}
                    for i, c in enumerate(chunks)
                ])  # fmt: skip
            if lease is not None:
                conn.execute(t.chunk_leases.delete().where(t.chunk_leases.c.lease == lease))
            return added

        return self._write(work)

    def get_snapshot(self, digest: str) -> dict[str, Any] | None:
        """The snapshot row of a data version with its ``chunk_list``, or None."""
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(t.data_snapshots).where(t.data_snapshots.c.digest == digest)).mappings().first()
            if row is None:
                return None
            chunks = conn.execute(
                select(t.snapshot_chunks.c.chunk, t.snapshot_chunks.c.rows, t.snapshot_chunks.c.size)
                .where(t.snapshot_chunks.c.digest == digest).order_by(t.snapshot_chunks.c.seq)
            ).mappings().all()  # fmt: skip
        return {**dict(row), "chunk_list": [dict(c) for c in chunks]}

    def snapshotted(self, digests: Iterable[str]) -> set[str]:
        """Which of ``digests`` have a snapshot."""
        wanted = list(dict.fromkeys(digests))
        if not wanted:
            return set()
        with read_transaction(self.engine) as conn:
            found = conn.execute(select(t.data_snapshots.c.digest).where(t.data_snapshots.c.digest.in_(wanted)))
            return {r[0] for r in found}

    def pin_snapshots(self, digests: Iterable[str]) -> int:
        """Keep the snapshots of ``digests`` through every gc; returns how many exist."""
        wanted = list(dict.fromkeys(digests))
        if not wanted:
            return 0
        return self._write(lambda conn: conn.execute(
            t.data_snapshots.update().where(t.data_snapshots.c.digest.in_(wanted)).values(pinned=True)).rowcount)  # fmt: skip

    def training_data(self, model_digests: Iterable[str]) -> set[str]:
        """Data versions read by the runs that produced ``model_digests``."""
        wanted = list(dict.fromkeys(model_digests))
        if not wanted:
            return set()
        with read_transaction(self.engine) as conn:
            found = conn.execute(
                select(t.run_data.c.digest).distinct()
                .join(t.run_models, t.run_models.c.run_id == t.run_data.c.run_id)
                .where(t.run_models.c.digest.in_(wanted), t.run_data.c.direction == "input")
            )  # fmt: skip
            return {r[0] for r in found}

    def unkept_snapshots(self, created_before: float) -> list[dict[str, Any]]:
        """Snapshots gc may drop: not pinned, older than ``created_before``, and not the training
        data of a registered model version."""
        registered = (
            select(t.run_data.c.digest)
            .join(t.run_models, t.run_models.c.run_id == t.run_data.c.run_id)
            .join(t.registry_versions, t.registry_versions.c.model_digest == t.run_models.c.digest)
            .where(t.run_data.c.direction == "input")
        )
        with read_transaction(self.engine) as conn:
            found = conn.execute(
                select(t.data_snapshots.c.digest, t.data_snapshots.c.manifest, t.data_snapshots.c.stored_bytes)
                .where(t.data_snapshots.c.pinned.is_(False) | t.data_snapshots.c.pinned.is_(None),
                       t.data_snapshots.c.created_at < created_before,
                       t.data_snapshots.c.digest.not_in(registered))
            ).mappings().all()  # fmt: skip
        return [dict(r) for r in found]

    def drop_snapshots(self, digests: Sequence[str]) -> list[str]:
        """Delete the rows of these snapshots; return their chunks no other snapshot lists."""
        if not digests:
            return []

        def work(conn: Connection) -> list[str]:
            chunks = {r[0] for r in conn.execute(
                select(t.snapshot_chunks.c.chunk).where(t.snapshot_chunks.c.digest.in_(list(digests))))}  # fmt: skip
            conn.execute(t.snapshot_chunks.delete().where(t.snapshot_chunks.c.digest.in_(list(digests))))
            conn.execute(t.data_snapshots.delete().where(t.data_snapshots.c.digest.in_(list(digests))))
            return sorted(chunks - self._referenced(conn, chunks))

        return self._write(work)

    def orphan_chunks(self, chunks: Iterable[str], *, ignoring: Sequence[str] = ()) -> list[str]:
        """Of ``chunks``, those no snapshot (but those of ``ignoring``) lists and no live lease protects."""
        wanted = set(chunks)
        with read_transaction(self.engine) as conn:
            return sorted(wanted - self._referenced(conn, wanted, ignoring))

    def delete_unreferenced(self, chunks: Sequence[str], delete: Callable[[str], int]) -> tuple[int, int]:
        """Call ``delete(chunk)`` for every chunk still unreferenced, holding the lease lock so
        that no writer can lease one meanwhile; returns (chunks deleted, bytes freed)."""

        def work(conn: Connection) -> tuple[int, int]:
            if conn.dialect.name == "postgresql":  # SQLite's IMMEDIATE transaction already excludes writers
                conn.execute(text("LOCK TABLE chunk_leases IN EXCLUSIVE MODE"))
            still = set(chunks) - self._referenced(conn, set(chunks))
            freed = 0
            for chunk in sorted(still):
                freed += delete(chunk)
            return len(still), freed

        return self._write(work)

    def _referenced(self, conn: Connection, chunks: set[str], ignoring: Sequence[str] = ()) -> set[str]:
        """Of ``chunks`` (chunk or manifest digests), those a snapshot (but those of ``ignoring``)
        lists or a live lease protects."""
        found: set[str] = set()
        live = now() - LEASE_TTL_S
        wanted = sorted(chunks)
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            listed = select(t.snapshot_chunks.c.chunk).where(t.snapshot_chunks.c.chunk.in_(part))
            if ignoring:
                listed = listed.where(t.snapshot_chunks.c.digest.not_in(list(ignoring)))
            found.update(r[0] for r in conn.execute(listed))
            manifests = select(t.data_snapshots.c.manifest).where(t.data_snapshots.c.manifest.in_(part))
            if ignoring:
                manifests = manifests.where(t.data_snapshots.c.digest.not_in(list(ignoring)))
            found.update(r[0] for r in conn.execute(manifests))
            found.update(r[0] for r in conn.execute(select(t.chunk_leases.c.chunk).where(
                t.chunk_leases.c.chunk.in_(part), t.chunk_leases.c.created_at >= live)))  # fmt: skip
        return found
