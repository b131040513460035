"""Saving and loading models as content-addressed artifacts.

scikit-learn estimators are stored with skops (no arbitrary code on load);
objects skops cannot handle fall back to joblib, whose loading runs pickle and
therefore needs ``trust=True``.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import FingerprintError, ModelFormatError
from ..fingerprint import fingerprint

FLAVORS = ("skops", "joblib")


def serialize(model: Any) -> tuple[bytes, str]:
    """Bytes and flavor of ``model``: skops when it can, else joblib."""
    import skops.io

    try:
        with _compact_schema():
            return skops.io.dumps(model), "skops"
    except Exception:  # skops refuses some custom objects; keep the model anyway
        import joblib

        buffer = io.BytesIO()
        try:
            joblib.dump(model, buffer)
        except Exception as exc:
            raise ModelFormatError(
                f"Cannot save {type(model).__name__}: neither skops nor joblib can serialise it ({exc}).",
                class_name=type(model).__name__,
            ) from None
        return buffer.getvalue(), "joblib"


def deserialize(data: bytes, flavor: str, *, trust: bool | Iterable[str] = False) -> Any:
    """Rebuild a model from bytes written by :func:`serialize`.

    Parameters
    ----------
    trust : bool or iterable of str
        skops: extra type names to trust beyond scikit-learn's safe set (``True``
        trusts every type the file names).  joblib: must be ``True`` because
        loading runs pickle.
    """
    if flavor == "skops":
        import skops.io

        untrusted = skops.io.get_untrusted_types(data=data)
        # scikit-learn's own compiled internals (tree structures, losses) are
        # trusted like its estimators; anything else must be named by the user.
        allowed = untrusted if trust is True else [*(trust or []), *(u for u in untrusted if u.startswith("sklearn."))]
        missing = sorted(set(untrusted) - set(allowed))
        if missing:
            raise ModelFormatError(
                "The model file names types that are not trusted by default: "
                f"{', '.join(missing)}. If you trust its origin, load it with trust={missing!r} "
                "(or trust=True).",
                untrusted=missing,
            )
        return skops.io.loads(data, trusted=allowed)
    if flavor == "joblib":
        if trust is not True:
            raise ModelFormatError(
                "This model was stored with joblib (pickle); loading it can run arbitrary code. "
                "Load it with trust=True only if you trust where it came from.",
                flavor=flavor,
            )
        import joblib

        return joblib.load(io.BytesIO(data))
    raise ModelFormatError(f"Unknown model flavor {flavor!r}; known: {', '.join(FLAVORS)}.", flavor=flavor)


def model_params(model: Any) -> dict[str, Any]:
    """``get_params(deep=False)`` as JSON-friendly values (estimators become their class name)."""
    try:
        params = model.get_params(deep=False)
    except Exception:
        return {}
    return {k: _plain(v) for k, v in params.items()}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "get_params"):
        return type(value).__name__
    if hasattr(value, "item"):  # numpy scalar
        try:
            return value.item()
        except Exception:
            pass
    return repr(value)


def model_record(name: str, model: Any, artifacts, digest: str | None = None) -> dict[str, Any]:
    """Store ``model`` in ``artifacts``; return the row the store keeps for it.

    ``digest``: its fingerprint when the caller has it already.
    """
    data, flavor = serialize(model)
    artifact_digest = artifacts.put_bytes(data)
    if digest is None:
        try:
            digest = fingerprint(model)
        except FingerprintError:
            # Objects we cannot fingerprint structurally are versioned by their bytes.
            digest = artifact_digest[:32]
    cls = type(model)
    return {
        "name": name,
        "digest": digest,
        "flavor": flavor,
        "class_name": f"{cls.__module__}.{cls.__qualname__}",
        "params": model_params(model),
        "artifact_digest": artifact_digest,
        "artifact_size": len(data),
    }


class _CompactJson:
    """``json`` as skops' writer sees it inside :func:`_compact_schema`: ``dumps`` without ``indent``."""

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        kwargs.pop("indent", None)
        return json.dumps(obj, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(json, name)


_schema_lock = threading.Lock()


@contextlib.contextmanager
def _compact_schema() -> Iterator[None]:
    """Let skops write its ``schema.json`` without indentation while this block runs.

    skops writes it with ``json.dumps(state, indent=2)``, and ``indent`` turns off json's C
    encoder: for a 1,000-tree forest that is a third of the save (0.5 of 1.3 s of CPU), paid
    by the recorder while the kernel waits to exit. The same JSON without the whitespace loads
    the same (skops reads it with ``json.loads``). Where skops' writer is not where this expects
    it (another version), nothing is changed.
    """
    try:
        from skops.io import _persist
    except ImportError:
        yield
        return
    if getattr(_persist, "json", None) is not json:
        yield
        return
    with _schema_lock:
        _persist.json = _CompactJson()
        try:
            yield
        finally:
            _persist.json = json
