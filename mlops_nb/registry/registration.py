"""Registering a model: the next version of a name, and optionally an alias at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, RegistryError
from .promotion import promote
from .versions import ModelVersion, check_name, get_model_version

if TYPE_CHECKING:
    from ..store import SqlStore


def register(
    model: Any,
    *,
    name: str,
    alias: str | None = None,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    reason: str | None = None,
    store: SqlStore | None = None,
) -> ModelVersion:
    """Register a model as the next version of ``name``.

    Parameters
    ----------
    model : estimator, str
        A fitted model object, or a model version digest / ``model:DIGEST`` /
        another reference.  An object not yet in the registry is stored now (in
        the active run when there is one).
    alias : str, optional
        Promote the new version to this alias at once (the promotion policy applies).

    Registering a model version already registered under ``name`` returns that
    version (with a note) instead of adding a duplicate.
    """
    if store is None:
        from ..store import get_store

        store = get_store()
    check_name(name)
    digest, run_id = _model_digest(model, store)
    row, created = store.register_version(name, digest, run_id=run_id, description=description, tags=tags)
    store.pin_snapshots(store.training_data([digest]))  # gc keeps the data it was trained on
    version = get_model_version(f"{name}:{row['version']}", store=store)
    if not created:
        print(f"note: model {digest[:8]} already is {name} version {row['version']}; nothing added.")
    if alias is not None:
        promote(name, version.version, alias, reason=reason or "set at registration", store=store)
        version = get_model_version(f"{name}:{row['version']}", store=store)
    return version


def _model_digest(model: Any, store: SqlStore) -> tuple[str, str | None]:
    if isinstance(model, str):
        version = get_model_version(model, store=store)
        return version.digest, version.run_id
    if isinstance(model, ModelVersion):
        return model.digest, model.run_id
    from ..errors import FingerprintError
    from ..fingerprint import fingerprint
    from ..tracking.model_io import model_record
    from ..tracking.run import active_run

    _check_model_object(model)
    try:
        digest = fingerprint(model)
    except FingerprintError:
        digest = None  # versioned by its bytes: model_record decides
    if digest is not None:
        try:  # already stored (by its tracked run): nothing to serialise again
            existing = store.get_model_version(digest)
            return existing["digest"], existing.get("run_id")
        except NotFoundError:
            pass
    record = model_record("model", model, store.artifacts, digest)
    run = active_run()
    run_id = run.id if run is not None and run.store is store else None
    store.ensure_model_version(record, run_id)
    return record["digest"], run_id


def _check_model_object(model: Any) -> None:
    """Refuse what cannot be a model version: non-models and unfitted estimators."""
    kind = type(model).__name__
    predicts = any(hasattr(model, m) for m in ("predict", "predict_proba", "fit_predict"))
    if not (predicts or (hasattr(model, "fit") and hasattr(model, "transform"))):
        raise RegistryError(
            f"A {kind} is not a model (no predict or transform method): register a fitted estimator, "
            "or a model version's digest.",
            type_name=kind,
        )
    if hasattr(model, "get_params") and hasattr(model, "fit"):
        try:
            from sklearn.exceptions import NotFittedError
            from sklearn.utils.validation import check_is_fitted
        except ImportError:  # pragma: no cover - scikit-learn is a dependency
            return
        try:
            check_is_fitted(model)
        except NotFittedError:
            raise RegistryError(f"This {kind} is not fitted yet: call fit() before registering it.", type_name=kind) from None
        except Exception:  # not a scikit-learn estimator after all: nothing to check
            pass
