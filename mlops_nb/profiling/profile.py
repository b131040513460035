"""Compact data profiles kept per data version, usable as drift references.

``build_profile(df)`` returns a small JSON-serialisable dict (a few KB per
column) that :func:`mlops_nb.drift` accepts in place of the reference
DataFrame::

    {"format": "mlops_nb.profile", "version": 1, "kind": "dataframe",
     "n_rows": 1000000, "n_columns": 25,
     "columns": {"age": {...}, "city": {...}}}

Per column (name as ``str``), always: ``type`` (numerical / categorical /
boolean / datetime, see :mod:`mlops_nb.profiling.coltypes`), ``dtype``, ``count``
(rows), ``missing`` (NaN, None, NaT and +-inf), ``n_unique``. Then:

numerical and datetime (datetimes as seconds since the epoch, UTC)
    ``min``, ``max``, ``mean``, ``std`` (population, ddof=0, as Evidently
    norms the Wasserstein distance), and either the exact distinct
    ``values`` with ``counts`` (when there are at most 128 distinct values
    or at most 256 non-missing rows: every test is then exact), or a
    ``sketch``: ``knots`` = the data values at the ranks of
    :data:`mlops_nb.profiling.dists.PROBS` (0.5 % steps plus 1e-4, 5e-4, 1e-3,
    2e-3 in each tail; minimum and maximum included; 10 significant digits),
    ``equal`` = rows equal to each knot, ``between`` = rows strictly between
    consecutive knots. About 5 KB of JSON per column at most.
categorical and boolean
    the most frequent ``values`` (normalised text labels) with ``counts``,
    at most 100 of them and at most 2,000 characters of labels, and
    ``other``: the count of all remaining values.

How drift uses a profile reference, and the approximation:

* Per-value tests (chisquare, ztest, and JS/PSI/Hellinger on few values) use
  the exact counts. Current categories outside a truncated top-K are pooled
  with the profile's ``other`` count instead of being called unseen.
* With a sketch, the reference CDF is exact at the knots (point masses
  included) and linear between them. KS's D and the Wasserstein distance are
  integrated exactly against that CDF; histogram shares for JS/PSI/Hellinger
  are read from it; Hellinger's Sturges bin count uses an estimate of the
  pooled distinct values. Measured over 1,000+ column comparisons on
  scikit-learn datasets (median and random splits) and synthetic data with
  point masses and heavy tails (tests/test_drift_profile.py), profile minus
  raw stays within: KS D +-0.005, normed Wasserstein +-0.01, Jensen-Shannon
  +-0.02, Hellinger +-0.02, PSI +-(0.05 + 25 %). P-values follow D through
  the same distribution as scipy (exact for samples up to 10,000, else
  asymptotic), so tiny p-values can differ a lot in relative terms;
  decisions can differ only for scores close to the threshold.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from mlops_nb import allocator
from mlops_nb.profiling import coltypes as ct
from mlops_nb.profiling.dists import ExactDist, build_sketch

FORMAT = "mlops_nb.profile"  # the stored format tag, kept when the module moved
VERSION = 1
EXACT_MAX_UNIQUE = 128
EXACT_MAX_ROWS = 256
TOP_K = 100
LABEL_BUDGET = 2000
_PARALLEL_ROWS = 100_000


def is_profile(obj: Any) -> bool:
    """True for a dict produced by :func:`build_profile`."""
    return isinstance(obj, dict) and obj.get("format") == FORMAT and isinstance(obj.get("columns"), dict)


def column_key(name: Any) -> str:
    """Key of a column in a profile (column names as text)."""
    return name if isinstance(name, str) else str(name)


def as_frame(obj: Any) -> pd.DataFrame | None:
    """DataFrame view of a DataFrame or Series (a Series named None -> 'value')."""
    if isinstance(obj, pd.DataFrame):
        return obj
    if isinstance(obj, pd.Series):
        return obj.to_frame(name=obj.name if obj.name is not None else "value")
    return None


def build_profile(obj: Any) -> dict | None:
    """Profile of a DataFrame or Series, or None for any other object."""
    frame = as_frame(obj)
    if frame is None:
        return None
    names: list[str] = []
    series: list[pd.Series] = []
    skipped: list[str] = []
    for i, name in enumerate(frame.columns):
        key = column_key(name)
        if key in names:
            skipped.append(key)
            continue
        names.append(key)
        series.append(frame.iloc[:, i])
    allocator.tune()
    workers = min(4, os.cpu_count() or 1)
    if len(frame) >= _PARALLEL_ROWS and len(series) > 1 and workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            cols = list(pool.map(_safe_column_profile, series))
    else:
        cols = [_safe_column_profile(s) for s in series]
    out = {
        "format": FORMAT,
        "version": VERSION,
        "kind": "series" if isinstance(obj, pd.Series) else "dataframe",
        "n_rows": int(len(frame)),
        "n_columns": len(names),
        "columns": dict(zip(names, cols)),
    }
    if skipped:
        out["skipped_duplicate_columns"] = skipped
    return out


def _safe_column_profile(s: pd.Series) -> dict:
    try:
        return column_profile(s)
    except Exception as exc:  # never break capture because of one odd column
        return {
            "type": "unknown",
            "dtype": str(s.dtype),
            "count": int(len(s)),
            "error": f"{type(exc).__name__}: {exc}",
        }


def column_profile(s: pd.Series, ctype: str | None = None) -> dict:
    """Profile of one column (type detected unless given)."""
    if ctype is None:
        ctype, _ = ct.detect_type(s)
    base = {"type": ctype, "dtype": str(s.dtype), "count": int(len(s))}
    if ctype in (ct.NUMERICAL, ct.DATETIME):
        base.update(_numeric_profile(ct.to_float(s, ctype)))
        if ctype == ct.DATETIME:
            base["unit"] = "s"
        return base
    labels, counts, n_missing = ct.category_counts(s)
    keep, used = 0, 0
    while keep < min(len(labels), TOP_K) and used + len(labels[keep]) <= LABEL_BUDGET:
        used += len(labels[keep])
        keep += 1
    base.update(
        missing=n_missing,
        n_unique=len(labels),
        values=labels[:keep],
        counts=counts[:keep].tolist(),
        other=int(counts[keep:].sum()),
    )
    return base


def _numeric_profile(values: np.ndarray) -> dict:
    kept, n_missing = ct.finite_sorted(values)
    out: dict[str, Any] = {"missing": n_missing}
    if kept.size == 0:
        out.update(n_unique=0, min=None, max=None, mean=None, std=None, values=[], counts=[])
        return out
    dist = ExactDist(kept)
    uniq, cnt = dist.unique()
    out.update(
        n_unique=int(uniq.size),
        min=float(kept[0]),
        max=float(kept[-1]),
        mean=_finite_or_none(dist.mean()),
        std=_finite_or_none(dist.std()),
    )
    if uniq.size <= EXACT_MAX_UNIQUE or kept.size <= EXACT_MAX_ROWS:
        out["values"] = uniq.tolist()
        out["counts"] = cnt.tolist()
    else:
        out["sketch"] = build_sketch(kept)
    return out


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
