"""Resolve what a drift reference names into a DataFrame or a stored profile.

Accepted references:

* a DataFrame or Series (returned as is);
* a profile dict from :func:`mlops_nb.profiling.profile.build_profile` (returned as is);
* ``"run:RUN_ID"`` / ``"run:RUN_ID:NAME"``: a DataFrame input of that run,
  taken from its stored profile (no raw data needed). NAME picks an input
  (a DataFrame or a Series). Without NAME, the candidates are the run's
  DataFrame inputs, or its Series inputs when it recorded no DataFrame; with
  several candidates the largest (rows x columns) is used. No warning is
  raised: the choice is recorded in the report (``report.reference_note``,
  shown under the verdict), e.g. "input 'train' (largest of 2 DataFrame
  inputs: train, holdout; choose with run:ID:NAME)";
* ``"model:DIGEST"``: the training data of that model version (the inputs of
  the run that produced it; ``"model:DIGEST:NAME"`` picks one);
* ``"data:DIGEST"``: a data version's stored profile;
* ``"model:NAME@ALIAS"`` / ``"model:NAME:VERSION"`` (``[:INPUT]``): the training
  data of a registered model version.

A resolved profile carries ``profile["source"] = {"ref", "digest", "name",
"run_id", "note"}`` so the report and the registry say which data
was used (``note``: which input of a run was taken, and why).
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from mlops_nb.errors import DriftError, MlopsError
from mlops_nb.profiling.profile import is_profile

_FRAME_KINDS = {"dataframe", "series"}
_HEX = re.compile(r"^[0-9a-fA-F]{4,64}$")


def resolve_reference(ref: Any, store: Any = None) -> pd.DataFrame | pd.Series | dict:
    """The DataFrame/Series or profile dict that ``ref`` names."""
    if isinstance(ref, (pd.DataFrame, pd.Series)):
        return ref
    if isinstance(ref, dict):
        if is_profile(ref):
            return ref
        raise DriftError(
            "This dict is not a data profile: build one with mlops_nb.profiling.profile.build_profile(df).",
            keys=sorted(map(str, ref))[:10],
        )
    if not isinstance(ref, str):
        raise DriftError(
            f"Cannot use a {type(ref).__name__} as drift reference: pass a DataFrame, a profile, "
            "'run:RUN_ID', 'model:DIGEST' or 'data:DIGEST'.",
            reference_type=type(ref).__name__,
        )
    kind, sep, rest = ref.strip().partition(":")
    if not sep or not rest:
        raise DriftError(
            f"Reference {ref!r} is not understood: use 'run:RUN_ID[:INPUT]', 'model:DIGEST', "
            "'model:NAME@ALIAS' or 'data:DIGEST'.",
            reference=ref,
        )
    store = store if store is not None else _default_store()
    kind = kind.lower()
    if kind == "run":
        run_id, _, name = rest.partition(":")
        return _from_run(store, run_id, name or None, ref)
    if kind == "model":
        model_ref, name = split_model_reference(rest)
        from mlops_nb.registry.versions import trained_version

        try:
            version = trained_version(model_ref, store=store)
        except MlopsError as exc:
            raise DriftError(f"Cannot use {ref!r} as drift reference: {exc} Pass the training DataFrame or a "
                             "'run:RUN_ID' reference instead.", reference=ref) from None  # fmt: skip
        return _from_run(store, version.run_id, name, ref)
    if kind == "data":
        return _profile_of(store, rest, ref, name=None, run_id=None)
    raise DriftError(
        f"Unknown reference kind {kind!r} in {ref!r}: use run:, model: or data:.",
        reference=ref,
    )


def _default_store():
    from mlops_nb.store import get_store

    return get_store()


def split_model_reference(rest: str) -> tuple[str, str | None]:
    """``NAME@ALIAS[:INPUT]``, ``NAME:VERSION[:INPUT]`` or ``DIGEST[:INPUT]`` → (model reference, input name)."""
    parts = rest.split(":")
    if "@" in parts[0] or _HEX.match(parts[0]):
        return parts[0], ":".join(parts[1:]) or None
    if len(parts) >= 2 and parts[1].isdigit():
        return f"{parts[0]}:{parts[1]}", ":".join(parts[2:]) or None
    return parts[0], ":".join(parts[1:]) or None


def _from_run(store, run_id: str, name: str | None, ref: str) -> dict:
    run = store.get_run(run_id)
    inputs = [i for i in run.get("inputs", []) if i.get("kind") in _FRAME_KINDS]
    full_id = run.get("id", run_id)
    if not inputs:
        raise DriftError(
            f"Run {full_id} recorded no DataFrame or Series input, so it has no reference data. "
            "Pass the reference DataFrame instead.",
            reference=ref,
            run_id=full_id,
        )
    if name is not None:
        chosen = [i for i in inputs if i.get("name") == name]
        if not chosen:
            raise DriftError(
                f"Run {full_id} has no DataFrame input named {name!r}; its inputs are "
                f"{[i.get('name') for i in inputs]}.",
                reference=ref,
                run_id=full_id,
            )
        pick = chosen[0]
        note = f"input {pick.get('name')!r}"
    else:
        # Series inputs (often the target) are candidates only when the run recorded no DataFrame
        frames = [i for i in inputs if i.get("kind") == "dataframe"]
        candidates = frames or inputs
        what = "DataFrame" if frames else "Series"
        pick = max(candidates, key=_size)
        note = f"input {pick.get('name')!r}"
        if len(candidates) > 1:
            names = ", ".join(str(i.get("name")) for i in candidates)
            note += (
                f" (largest of {len(candidates)} {what} inputs: {names}; "
                f"choose with run:{str(full_id)[:8]}:NAME)"
            )
    return _profile_of(store, pick["digest"], ref, name=pick.get("name"), run_id=full_id, note=note)


def _size(record: dict) -> int:
    shape = record.get("shape") or [0]
    total = 1
    for s in shape:
        total *= int(s or 0)
    return total


def _profile_of(store, digest: str, ref: str, *, name, run_id, note: str | None = None) -> dict:
    version = store.get_data_version(digest)
    profile = version.get("profile")  # a JSON column: a dict decoded afresh on every read
    if not is_profile(profile):
        raise DriftError(
            f"Data version {version.get('digest', digest)} ({name or 'unnamed'}) has no stored profile "
            "(it was recorded before profiles existed, or is not a DataFrame). Pass the DataFrame itself.",
            reference=ref,
            digest=version.get("digest", digest),
        )
    source = {"ref": ref, "digest": version.get("digest", digest), "name": name, "run_id": run_id, "note": note}
    return {**profile, "source": source}
