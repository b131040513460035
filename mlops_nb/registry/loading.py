"""Loading a model version: artifact digest checked, then the object's fingerprint against the record."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..errors import FingerprintError, IntegrityError, ModelFormatError, MlopsError

if TYPE_CHECKING:
    from ..store import SqlStore


def load_model(ref: str, *, trust: bool | Iterable[str] = False, store: SqlStore | None = None) -> Any:
    """Load the model ``ref`` names (``NAME@ALIAS``, ``NAME:3``, a digest…).

    The artifact's bytes are checked against their digest, and the rebuilt
    object's fingerprint against the model version record, so a record
    re-pointed at another artifact is refused rather than loading another model.

    Parameters
    ----------
    trust : bool or iterable of str
        skops: extra type names to trust beyond scikit-learn's safe set (a
        refusal lists them); joblib (pickle) models need ``trust=True``.
    """
    from ..fingerprint import fingerprint
    from ..tracking.model_io import deserialize
    from ..store import get_store
    from .versions import get_model_version

    store = store or get_store()
    version = get_model_version(ref, store=store) if isinstance(ref, str) else ref
    row = store.get_model_version(version.digest)
    data = store.artifacts.get_bytes(row["artifact_digest"])  # raises IntegrityError on tampered bytes
    try:
        model = deserialize(data, row["flavor"], trust=trust)
    except MlopsError:
        raise
    except Exception as exc:  # truncated zip, wrong format, unpickling failure
        raise ModelFormatError(
            f"The artifact of {version.ref} ({row['artifact_digest'][:12]}) cannot be read as a {row['flavor']} "
            f"model: {type(exc).__name__}: {exc}. The registry may be damaged: run mlops-nb doctor.",
            ref=ref,
            artifact_digest=row["artifact_digest"],
        ) from None
    try:
        actual = fingerprint(model)
    except FingerprintError:
        actual = None  # versioned by its bytes, already verified
    if actual is not None and actual != row["digest"]:
        raise IntegrityError(
            f"The artifact behind {version.ref} holds a different model (fingerprint {actual[:12]}, "
            f"record {row['digest'][:12]}): the record was re-pointed. Refusing to load it; run mlops-nb doctor.",
            ref=ref,
            expected=row["digest"],
            actual=actual,
        )
    return model
