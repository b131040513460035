"""Moving aliases: promote (through the policy's gates and approvals), approve, roll back, remove.

Every outcome, refusals included, is written to the audit trail in the same
transaction as the change it describes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ApprovalError, ConcurrentChange, PermissionDenied, PromotionRefused, RegistryError
from ..store.engine import now
from .policy import Gate, evaluate, load_policy
from .team import note_advisory_approvals
from .versions import ModelVersion, check_alias, check_name, get_model_version

if TYPE_CHECKING:
    from ..store import SqlStore

# Audit actions that moved an alias, in the order they can be replayed.
ALIAS_ACTIONS = ("promote", "rollback", "alias_removed")
_ATTEMPTS = 5


@dataclass
class Promotion:
    """What a promotion, approval or rollback did."""

    name: str
    alias: str
    version: int
    previous_version: int | None
    status: str  # promoted / pending_approval / rolled_back / removed / unchanged
    request_id: int | None = None
    gates: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __repr__(self) -> str:
        was = f" (was v{self.previous_version})" if self.previous_version is not None else ""
        if self.status == "pending_approval":
            return f"<Promotion {self.name}@{self.alias} → v{self.version} waiting for approval: request {self.request_id}>"
        if self.status == "unchanged":
            return f"<Promotion {self.name}@{self.alias} at v{self.version}, not v{self.previous_version}: unchanged>"
        return f"<Promotion {self.name}@{self.alias} → v{self.version}{was}: {self.status}>"


def promote(
    name: str,
    version: int | str,
    alias: str,
    *,
    reason: str | None = None,
    policy=None,
    actor: str | None = None,
    direct: bool = False,
    store: SqlStore | None = None,
) -> Promotion:
    """Point ``name@alias`` at ``version`` if the policy's gates pass.

    ``direct``: move an alias whose policy names approvers without a request (on a
    team registry only an admin may; the move is audited with the admin's name).

    Raises
    ------
    PromotionRefused
        A gate failed; ``gates`` lists every gate with its outcome.  The refusal is audited.

    When the alias needs approvers, a promotion request is stored instead and
    the result has ``status="pending_approval"`` and a ``request_id``.
    """
    store = store or _store()
    check_name(name)
    check_alias(alias)
    actor = store.acting_user(actor)
    rules = load_policy(policy, store)
    # Another writer moving the alias after our gates ran: check again against the new holder.
    return _again_if_moved(
        lambda: _promote_once(name, _version_number(version), alias, rules, reason, actor, store, direct)
    )


def _again_if_moved(change: Callable[[], Promotion]) -> Promotion:
    """Run ``change`` again (up to ``_ATTEMPTS`` times) when the alias moved under it."""
    for attempt in range(_ATTEMPTS):
        try:
            return change()
        except ConcurrentChange:
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _promote_once(
    name: str, number: int, alias: str, policy, reason, actor: str, store: SqlStore, direct: bool = False
) -> Promotion:
    rules = policy.for_alias(alias)
    note_advisory_approvals(store, rules.approvers)
    candidate = get_model_version(f"{name}:{number}", store=store)
    holder_number = store.get_alias(name, alias)
    if holder_number == candidate.version:  # already there: nothing to check or record
        return Promotion(name, alias, candidate.version, holder_number, "promoted")
    gates = _check(rules, candidate, holder_number, store)
    failed = [g for g in gates if not g.passed]
    if failed:
        store.add_audit_event(
            "promotion_refused", f"model:{name}", reason=reason, actor=actor,
            payload={"alias": alias, "version": candidate.version, "current": holder_number, "gates": _dicts(gates)},
        )  # fmt: skip
        raise PromotionRefused(
            f"Promotion of {name}:{candidate.version} to {alias!r} refused: "
            + "; ".join(f"{g.gate}: {g.detail}" for g in failed)
            + ". Fix the model or its lineage, or change the policy"
            + (f" ({policy.path})" if policy.path else "")
            + ".",
            name=name, alias=alias, version=candidate.version, gates=_dicts(gates),
        )  # fmt: skip
    if rules.approvers and not direct:
        request_id = store.add_promotion_request(
            name, candidate.version, alias, requester=actor, reason=reason,
            payload={"gates": _dicts(gates), "approvers": rules.approvers, "current": holder_number},
        )  # fmt: skip
        return Promotion(name, alias, candidate.version, holder_number, "pending_approval", request_id, _dicts(gates))
    previous = store.set_alias(
        name, alias, candidate.version, action="promote", expected=holder_number, reason=reason, actor=actor,
        payload={"gates": _dicts(gates), **({"direct": True} if rules.approvers else {})},
    )  # fmt: skip
    return Promotion(name, alias, candidate.version, previous, "promoted", gates=_dicts(gates))


def approve(
    request_id: int,
    *,
    actor: str | None = None,
    comment: str | None = None,
    policy=None,
    store: SqlStore | None = None,
) -> Promotion:
    """Approve a pending promotion request; the alias moves once enough approvers agreed.

    The approver must be listed in the policy and must not be the requester.
    The gates are checked again, since the current holder may have changed.
    """
    store = store or _store()
    actor = store.acting_user(actor)
    request = store.get_promotion_request(request_id)
    name, alias, number = request["name"], request["alias"], request["version"]
    if request["status"] != "pending":
        raise ApprovalError(f"Promotion request {request_id} is {request['status']}, not pending.", request_id=request_id)
    rules = load_policy(policy, store).for_alias(alias)
    note_advisory_approvals(store, rules.approvers)
    problem = None
    if actor == request["requester"]:
        problem = f"{actor} requested this promotion and cannot also approve it; ask one of: {', '.join(rules.approvers)}"
    elif rules.approvers and actor not in rules.approvers:
        problem = f"{actor} is not an approver for {alias!r} (approvers: {', '.join(rules.approvers)})"
    elif any(a["user"] == actor for a in request["approvals"] or []):
        problem = f"{actor} already approved request {request_id}"
    if problem:
        try:
            store.add_audit_event(
                "approval_refused", f"model:{name}", actor=actor, reason=problem,
                payload={"request_id": request_id, "alias": alias, "version": number},
            )  # fmt: skip
        except PermissionDenied:
            pass  # a reader cannot write the audit trail either; the refusal still stands
        raise ApprovalError(f"Approval refused: {problem}.", request_id=request_id, actor=actor)
    approvals = [*(request["approvals"] or []), {"user": actor, "at": now(), "comment": comment}]
    candidate = get_model_version(f"{name}:{number}", store=store)
    holder_number = store.get_alias(name, alias)
    gates = _check(rules, candidate, holder_number, store)
    failed = [g for g in gates if not g.passed]
    if failed:
        store.add_audit_event(
            "promotion_refused", f"model:{name}", actor=actor,
            payload={"request_id": request_id, "alias": alias, "version": number, "gates": _dicts(gates)},
        )  # fmt: skip
        raise PromotionRefused(
            f"Request {request_id} approved by {actor}, but {name}:{number} no longer passes: "
            + "; ".join(f"{g.gate}: {g.detail}" for g in failed) + ".",
            name=name, alias=alias, version=number, gates=_dicts(gates),
        )  # fmt: skip
    if store.secured:  # the database checks the approver again and moves the alias
        return _approve_in_database(store, request, comment, holder_number, gates)
    if len(approvals) < max(1, rules.min_approvals):

        def record(conn):
            store.update_promotion_request(conn, request_id, approvals=approvals)
            store.add_audit_event(
                "approve", f"model:{name}", actor=actor, reason=comment, conn=conn,
                payload={"request_id": request_id, "alias": alias, "version": number, "approvals": len(approvals)},
            )  # fmt: skip

        store._write(record)
        return Promotion(name, alias, number, holder_number, "pending_approval", request_id, _dicts(gates))
    previous = store.set_alias(
        name, alias, number, action="promote", expected=holder_number, reason=request["reason"], actor=actor,
        payload={"request_id": request_id, "requester": request["requester"], "approvers": [a["user"] for a in approvals], "gates": _dicts(gates)},
        extra=lambda conn: store.update_promotion_request(conn, request_id, approvals=approvals, status="approved", decided_at=now()),
    )  # fmt: skip
    return Promotion(name, alias, number, previous, "promoted", request_id, _dicts(gates))


def _approve_in_database(store: SqlStore, request, comment, holder_number, gates) -> Promotion:
    name, alias, number, request_id = request["name"], request["alias"], request["version"], request["id"]
    result = store.approve_request(request_id, comment=comment, expected=holder_number, payload={"gates": _dicts(gates)})
    if result["status"] == "moved":
        raise ConcurrentChange(
            f"{name}@{alias} moved to version {result['previous']} while the approval was being checked "
            f"(it was {holder_number}). Approve again to check the gates against the new holder.",
            name=name, alias=alias, found=result["previous"], expected=holder_number,
        )  # fmt: skip
    return Promotion(name, alias, number, result["previous"], result["status"], request_id, _dicts(gates))


def alias_history(name: str, alias: str, *, store: SqlStore | None = None) -> list[int]:
    """Holders of ``name@alias`` as a stack replayed from the audit trail (current holder last)."""
    store = store or _store()
    stack: list[int] = []
    for event in store.audit_log(f"model:{name}"):
        payload = event.get("payload") or {}
        if event["action"] not in ALIAS_ACTIONS or payload.get("alias") != alias:
            continue
        if event["action"] == "promote":
            stack.append(payload["version"])
        elif event["action"] == "rollback":
            if stack:
                stack.pop()
        else:
            stack.clear()
    return stack


def rollback(
    name: str,
    alias: str,
    *,
    from_version: int | str | None = None,
    reason: str | None = None,
    actor: str | None = None,
    store: SqlStore | None = None,
) -> Promotion:
    """Point ``name@alias`` back at the version that held it before the current one.

    The previous holder passed its gates when it was promoted, so a rollback
    needs no approval; it is audited like any other move.  ``from_version``:
    only if the alias still points at that version (a job undoing its own
    promotion while others may move the alias); if it has moved on, nothing
    changes and the result's status is ``unchanged``.
    """
    store = store or _store()
    check_name(name)
    check_alias(alias)
    expected = None if from_version is None else _version_number(from_version)
    # The holder is read inside: a rollback run a moment later would have seen the new one.
    return _again_if_moved(lambda: _rollback_once(name, alias, expected, reason, store.acting_user(actor), store))


def _rollback_once(
    name: str, alias: str, expected: int | None, reason: str | None, actor: str, store: SqlStore
) -> Promotion:
    current = store.get_alias(name, alias)
    if expected is not None and current != expected:
        return Promotion(name, alias, current, expected, "unchanged")  # type: ignore[arg-type]
    if current is None:
        store.resolve_alias(name, alias)  # raises: no such alias
    stack = alias_history(name, alias, store=store)
    moved = store.get_alias(name, alias)
    if moved != current:  # another writer moved it while its history was read: read both again
        raise ConcurrentChange(
            f"{name}@{alias} moved to version {moved} during the rollback (it was {current}).",
            name=name, alias=alias, found=moved, expected=current,
        )  # fmt: skip
    while len(stack) >= 2 and stack[-1] != current:
        stack.pop()
    if len(stack) < 2:
        raise RegistryError(
            f"{name}@{alias} (v{current}) has no earlier holder to roll back to. "
            f"Promote a version explicitly: promote({name!r}, VERSION, {alias!r}).",
            name=name, alias=alias,
        )  # fmt: skip
    target = stack[-2]
    previous = store.set_alias(name, alias, target, action="rollback", expected=current, reason=reason, actor=actor)
    return Promotion(name, alias, target, previous, "rolled_back")


def remove_alias(name: str, alias: str, *, reason: str | None = None, actor: str | None = None, store: SqlStore | None = None) -> Promotion:
    """Remove ``name@alias`` (audited)."""
    store = store or _store()
    current = store.get_alias(name, alias)
    if current is None:
        store.resolve_alias(name, alias)
    store.set_alias(name, alias, None, action="alias_removed", expected=current, reason=reason, actor=store.acting_user(actor))
    return Promotion(name, alias, current, current, "removed")


def _check(rules, candidate: ModelVersion, holder_number: int | None, store: SqlStore) -> list[Gate]:
    holder = get_model_version(f"{candidate.name}:{holder_number}", store=store) if holder_number is not None else None
    return evaluate(rules, candidate, holder, store)


def _version_number(version: int | str) -> int:
    try:
        number = int(str(version).lstrip("v"))
    except ValueError:
        raise RegistryError(f"{version!r} is not a version number (1, 2, 3…).", version=version) from None
    return number


def _dicts(gates: list[Gate]) -> list[dict[str, Any]]:
    return [g.to_dict() for g in gates]


def _store():
    from ..store import get_store

    return get_store()
