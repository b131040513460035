"""Data references: which data versions ``data:DIGEST``, ``run:ID/NAME`` and
``model:NAME@ALIAS/train`` name.

``run:`` and ``model:`` accept ``:`` as well as ``/`` before the input name, as the drift
references do. Without a name, ``run:ID`` is every input of the run and
``model:REF/train`` every input of the run that trained it.
"""

from __future__ import annotations

from typing import Any

from ..errors import MlopsError, NotFoundError, SnapshotError

USAGE = "use data:DIGEST, run:RUN_ID/NAME or model:NAME@ALIAS/train (or model:NAME:VERSION/NAME)"


def resolve(ref: str, store: Any) -> dict[str, dict[str, Any]]:
    """``{name: data record}`` of the versions ``ref`` names (one entry for a single version)."""
    if not isinstance(ref, str) or ":" not in ref:
        raise SnapshotError(f"Cannot read the data reference {ref!r}: {USAGE}.", reference=ref)
    kind, _, rest = ref.strip().partition(":")
    kind = kind.lower()
    if kind == "data":
        try:
            row = store.get_data_version(rest.strip())
        except NotFoundError as exc:
            raise SnapshotError(f"{exc}", reference=ref) from None
        return {row["digest"][:12]: row}
    if kind == "run":
        run_id, name = _split(rest)
        return _inputs_of(store, run_id, name, ref, outputs=True)
    if kind == "model":
        model_ref, name = _split_model(rest)
        from ..registry.versions import trained_version

        try:
            version = trained_version(model_ref, store=store)
        except MlopsError as exc:
            raise SnapshotError(f"Cannot resolve {ref!r}: {exc}", reference=ref) from None
        return _inputs_of(store, version.run_id, None if name in (None, "train") else name, ref, outputs=False)
    raise SnapshotError(f"Unknown data reference kind {kind!r} in {ref!r}: {USAGE}.", reference=ref)


def _split(rest: str) -> tuple[str, str | None]:
    for sep in ("/", ":"):
        if sep in rest:
            head, _, tail = rest.partition(sep)
            return head.strip(), tail.strip() or None
    return rest.strip(), None


def _split_model(rest: str) -> tuple[str, str | None]:
    if "/" in rest:
        head, _, tail = rest.partition("/")
        return head.strip(), tail.strip() or None
    from ..drift.reference import split_model_reference

    return split_model_reference(rest)


def _inputs_of(store: Any, run_id: str, name: str | None, ref: str, *, outputs: bool) -> dict[str, dict[str, Any]]:
    try:
        run = store.get_run(run_id)
    except MlopsError as exc:
        raise SnapshotError(f"Cannot resolve {ref!r}: {exc}", reference=ref) from None
    inputs = {r["name"]: r for r in run.get("inputs", [])}
    produced = {r["name"]: r for r in run.get("outputs", [])} if outputs else {}
    if name is None:
        if not inputs:
            raise SnapshotError(f"Run {run['id'][:8]} recorded no data input.", reference=ref, run_id=run["id"])
        return inputs
    record = inputs.get(name) or produced.get(name)
    if record is None:
        known = sorted(inputs) + [f"{n} (output)" for n in sorted(produced)]
        raise SnapshotError(
            f"Run {run['id'][:8]} has no data named {name!r}; it recorded {', '.join(known) or 'no data'}.",
            reference=ref, run_id=run["id"],
        )  # fmt: skip
    return {name: record}
