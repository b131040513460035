"""Content fingerprints: the "data version" and "model version" of mlops_nb.

:func:`fingerprint` is the hex ``xxh3_128`` digest (32 characters) of an
object's *full* logical content, never a sample. Raw buffers are hashed in
bulk; Python runs per element only for exotic objects inside object columns.

Scheme ``mlops_nb-fp-v1``: a version atom, then every component framed as
``len(tag) | tag | uint64 length-or-count | payload`` so that concatenations
cannot collide. Large payloads go into framed sub-digests, which also makes
chunked inputs (arrow chunks, array blocks) hash independently of chunking.

- numpy: dtype, shape, content in C order (strided views copied block by
  block), NaNs canonicalised, structured arrays field by field.
- object values: sorted type names, one type code per element, then one
  vectorised payload per type (str: code-point lengths + UTF-8).
- pandas: column index, row index, then per column a dtype token and content
  (masked: NA positions + data with NA slots zeroed; categorical: codes,
  categories, ordered; tz-aware: UTC instants, tz in the token; pyarrow: null
  positions, values or string lengths + bytes). An int64 index that is an
  arithmetic progression hashes like the equal RangeIndex, in O(1) for it.
- paths: a file is its size and content (not its name); a directory is every
  entry sorted by relative path. Nothing is ignored, not even ``.git``.
- scikit-learn: type, ``get_params(deep=False)`` and every other instance
  attribute (the learned state; timings and caches excluded, so an identical
  refit, or a call to ``transform``, keeps the digest).

Nothing depends on ``hash()``, ``id()`` or addresses: dicts and sets are
ordered by the digests of their keys or elements. Only arrays that provably
cannot change (read-only down to an immutable ``bytes`` buffer) have their
digest cached, by id with a weakref guard; everything else is hashed again.

Modules: :mod:`.framing` (scheme, ``feed`` dispatcher), :mod:`.objects`,
:mod:`.arrays`, :mod:`.buffers`, :mod:`.cache`, :mod:`.arrow`, :mod:`.frames`,
:mod:`.paths`, :mod:`.estimators`, :mod:`.optional` (encoders by kind of
object) and :mod:`.metadata` (:func:`data_kind`, :func:`describe`).
"""

from __future__ import annotations

import functools
import os
import pathlib
from typing import Any

import xxhash

from mlops_nb.errors import FingerprintError

from .estimators import is_fitted_estimator
from .framing import VERSION, atom, feed, type_name
from .metadata import data_kind, describe

__all__ = ["data_kind", "describe", "fingerprint", "fingerprint_path", "is_fitted_estimator"]


def fingerprint(obj: Any) -> str:
    """Return the content fingerprint of ``obj``.

    Parameters
    ----------
    obj : Any
        A DataFrame, Series, Index, numpy or pyarrow array, ``pathlib.Path``
        (file or directory), scikit-learn estimator, or a primitive or nested
        list, tuple, dict or set of these.

    Returns
    -------
    str
        32 hex characters (``xxh3_128``), equal for equal content in any
        process with the same library versions.

    Raises
    ------
    FingerprintError
        If ``obj`` or something inside it is unsupported, or a path cannot be read.
    """
    _register_encoders()
    h = xxhash.xxh3_128()
    atom(h, b"version", VERSION)
    name = type_name(type(obj))
    try:
        feed(obj, h)
    except RecursionError:
        raise FingerprintError("Cannot fingerprint a cyclic or too deeply nested structure.",
                               type_name=name) from None  # fmt: skip
    except OSError as exc:
        raise FingerprintError(f"Cannot fingerprint {obj!r}: {exc}", type_name=name) from exc
    except FingerprintError:
        raise
    except Exception as exc:  # the object's own code failed (a third-party array, a broken proxy)
        raise FingerprintError(
            f"Cannot fingerprint {name}: reading it raised {type(exc).__name__}: {exc}", type_name=name
        ) from exc
    return h.hexdigest()


@functools.cache
def _register_encoders() -> None:
    """Register the encoders with ``feed`` on the first fingerprint, not at import.

    They import numpy (0.05 s), which a kernel's first watched cell would
    otherwise pay before the notebook imports it, or when nothing needs a
    fingerprint at all. pandas' encoders register later still (see .optional).
    """
    from . import arrays, arrow, objects, optional, paths  # noqa: F401


def fingerprint_file_bytes(data: bytes) -> str:
    """The fingerprint of a file holding ``data`` (what :func:`fingerprint` gives its path), without writing it."""
    from .paths import feed_file_content

    h = xxhash.xxh3_128()
    atom(h, b"version", VERSION)
    feed_file_content([data], h)
    return h.hexdigest()


def fingerprint_path(path: str | os.PathLike[str]) -> str:
    """Fingerprint the file or directory named by ``path`` (see :func:`fingerprint`)."""
    return fingerprint(pathlib.Path(path))
