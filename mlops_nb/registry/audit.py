"""The audit trail: list, verify, export, and the chain head to keep elsewhere.

Each event's hash covers the previous event's hash, so editing, deleting or
reordering an event breaks the chain.  Two attacks a bare chain cannot see are
closed here: deleting the newest events (keep the head printed by
:func:`audit_head` somewhere else — a commit, a ticket — and verify against it)
and rewriting the chain forward with recomputed hashes (set
``MLOPS_NB_AUDIT_KEY``: each event then carries an HMAC that cannot be
recomputed without the key).
"""

from __future__ import annotations

import csv
import hmac
import io
import json
import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import AuditError
from ..store.sql import audit_mac

if TYPE_CHECKING:
    from ..store import SqlStore

@dataclass
class AuditVerification:
    """Result of :func:`verify_audit`; ``ok`` is False when anything is wrong."""

    n_events: int
    head: str | None
    broken: list[int] = field(default_factory=list)  # events whose hash or link is wrong
    bad_mac: list[int] = field(default_factory=list)  # events whose HMAC does not match the key
    unkeyed: list[int] = field(default_factory=list)  # events without an HMAC although a key is set
    head_problem: str | None = None

    @property
    def ok(self) -> bool:
        return not (self.broken or self.bad_mac or self.unkeyed or self.head_problem)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def __str__(self) -> str:
        if self.ok:
            return f"audit trail intact: {self.n_events} events, head {self.head}"
        parts = []
        if self.broken:
            parts.append(f"chain broken at event(s) {_ids(self.broken)} (edited, deleted or reordered)")
        if self.bad_mac:
            parts.append(f"HMAC mismatch at event(s) {_ids(self.bad_mac)} (rewritten without the key)")
        if self.unkeyed:
            parts.append(f"event(s) {_ids(self.unkeyed)} carry no HMAC although MLOPS_NB_AUDIT_KEY is set")
        if self.head_problem:
            parts.append(self.head_problem)
        return "audit trail DAMAGED: " + "; ".join(parts)


def audit(name: str | None = None, *, store: SqlStore | None = None) -> list[dict[str, Any]]:
    """Audit events in order, all of them or those of registered model ``name``."""
    store = store or _store()
    return store.audit_log(f"model:{name}" if name else None)


def audit_head(*, store: SqlStore | None = None) -> str:
    """``ID:HASH`` of the newest event: keep it elsewhere and pass it to :func:`verify_audit`."""
    events = (store or _store()).audit_log()
    if not events:
        raise AuditError("The audit trail is empty: there is no head to keep yet.")
    return f"{events[-1]['id']}:{events[-1]['hash']}"


def verify_audit(*, head: str | None = None, key: str | None = None, store: SqlStore | None = None) -> AuditVerification:
    """Check the chain, the HMACs (with ``key`` or ``MLOPS_NB_AUDIT_KEY``) and a head kept earlier."""
    store = store or _store()
    events = store.audit_log()
    key = key if key is not None else os.environ.get("MLOPS_NB_AUDIT_KEY")
    result = AuditVerification(n_events=len(events), head=f"{events[-1]['id']}:{events[-1]['hash']}" if events else None)
    # Events a team registry's database hashed carry no client HMAC: nobody but its owner can write them.
    result.broken, by_database = store.audit_breaks(events)
    for event in events if key else ():
        if event["id"] in by_database:
            continue
        if not event.get("mac"):
            result.unkeyed.append(event["id"])
        elif not hmac.compare_digest(event["mac"], audit_mac(event["hash"], key)):
            result.bad_mac.append(event["id"])
    if head:
        result.head_problem = _check_head(head, events)
    return result


def _check_head(head: str, events: list[dict[str, Any]]) -> str | None:
    event_id, _, digest = head.strip().partition(":")
    if not event_id.isdigit() or len(digest) != 64:
        raise AuditError(f"{head!r} is not an audit head: use the ID:HASH printed by mlops-nb audit head.", head=head)
    by_id = {e["id"]: e for e in events}
    kept = by_id.get(int(event_id))
    if kept is None:
        newest = events[-1]["id"] if events else 0
        return f"event {event_id} of the kept head is missing (newest now {newest}): events were deleted"
    if kept["hash"] != digest:
        return f"event {event_id} no longer has the kept hash: the chain was rewritten"
    return None


def export_audit(fmt: str = "jsonl", *, name: str | None = None, store: SqlStore | None = None) -> str:
    """The audit events as JSON lines or CSV text."""
    events = audit(name, store=store)
    if fmt == "jsonl":
        return "".join(json.dumps(e, sort_keys=True, default=str) + "\n" for e in events)
    if fmt == "csv":
        out = io.StringIO()
        columns = ["id", "timestamp", "actor", "action", "target", "reason", "payload", "prev_hash", "hash", "mac"]
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for e in events:
            writer.writerow({**e, "payload": json.dumps(e.get("payload"), sort_keys=True, default=str)})
        return out.getvalue()
    raise AuditError(f"Unknown export format {fmt!r}: use jsonl or csv.", format=fmt)


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids[:10])) + (f" (+{len(ids) - 10})" if len(ids) > 10 else "")


def _store():
    from ..store import get_store

    return get_store()
