"""Turn one column - raw or from a profile - into a side the tests work on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlops_nb.profiling import coltypes as ct
from mlops_nb.profiling.dists import CatCounts, ExactDist, SketchDist, sketch_below


class Incomparable(Exception):
    """The two sides of a column cannot be compared (reported, not raised)."""


def raw_side(series: pd.Series, ctype: str, values: np.ndarray | None = None):
    """``(side or None, n_missing)`` for a raw column; None when no value is left.

    ``values``: ``ct.to_float(series, ctype)`` when the caller has it already
    (numerical and datetime readings only).
    """
    if ctype in (ct.NUMERICAL, ct.DATETIME):
        kept, n_missing = ct.finite_sorted(ct.to_float(series, ctype) if values is None else values)
        return (ExactDist(kept) if kept.size else None), n_missing
    labels, counts, n_missing = ct.category_counts(series)
    return (CatCounts(labels, counts) if labels else None), n_missing


def profile_side(col: dict, ctype: str, column=None):
    """``(side or None, n_missing)`` for a profile column read as ``ctype``."""
    if "error" in col:
        raise Incomparable(f"the reference profile could not describe this column ({col['error']})")
    ptype = col.get("type")
    n_missing = int(col.get("missing", 0))
    numeric_profile = ptype in (ct.NUMERICAL, ct.DATETIME)
    want_numeric = ctype in (ct.NUMERICAL, ct.DATETIME)
    if numeric_profile and want_numeric:
        return _numeric_from_profile(col), n_missing
    if not numeric_profile and not want_numeric:
        labels = list(col.get("values", []))
        if not labels and not col.get("other"):
            return None, n_missing
        return CatCounts(labels, np.array(col.get("counts", []), dtype=np.int64), col.get("other", 0)), n_missing
    if numeric_profile:  # numbers read as categories: needs exact values
        if "values" not in col:
            raise Incomparable(
                f"the reference profile has a {ptype} quantile sketch; the current column is "
                f"{ctype}, so per-category counts are not available"
            )
        if not col["values"]:
            return None, n_missing
        return CatCounts(*ct.merge_labels(col["values"], col["counts"])), n_missing
    # categories read as numbers (boolean profile vs numerical current)
    values = []
    for lab in col.get("values", []):
        try:
            values.append({"True": 1.0, "False": 0.0}.get(lab, None) if lab in ("True", "False") else float(lab))
        except ValueError:
            raise Incomparable(f"reference category {lab!r} is not a number") from None
    if col.get("other"):
        raise Incomparable("the reference profile pooled some categories; they cannot be read as numbers")
    if not values:
        return None, n_missing
    order = np.argsort(values)
    return ExactDist(np.asarray(values)[order], np.asarray(col["counts"], dtype=np.int64)[order]), n_missing


def _numeric_from_profile(col: dict):
    if "values" in col:
        if not col["values"]:
            return None
        values = np.asarray(col["values"], dtype=np.float64)
        order = np.argsort(values, kind="stable")
        return ExactDist(values[order], np.asarray(col["counts"], dtype=np.int64)[order])
    sketch = col.get("sketch") or {}
    knots = np.asarray(sketch.get("knots", []), dtype=np.float64)
    equal = np.asarray(sketch.get("equal", []), dtype=np.float64)
    between = np.asarray(sketch.get("between", []), dtype=np.float64)
    if knots.size < 1 or not (knots.size == equal.size == between.size + 1) or np.any(np.diff(knots) <= 0):
        raise Incomparable("the reference profile's sketch is malformed")
    below = sketch_below(equal, between)
    n = int(col["count"]) - int(col.get("missing", 0))
    std = col.get("std")
    mean = col.get("mean")
    return SketchDist(
        knots,
        below,
        equal,
        n,
        mean if mean is not None else float(np.mean(knots)),
        std if std is not None else float(np.std(knots)),
        int(col.get("n_unique", n)),
    )
