"""``drift(reference, current)``: per-column tests and the dataset verdict.

Edge cases and their defined results (no NaN flag, no crash):

* Missing values (None, NaN, NaT, pd.NA) and +-inf are left out of every
  test. Each row reports the missing shares on both sides and their change;
  with ``missing_threshold=x`` a column whose missing share changed by at
  least ``x`` (absolute) is flagged drifted even when its test is not.
* A side with no value left (all missing), or an empty current frame: the
  test is not run (``test``/``statistic``/``p_value``/``distance`` None),
  ``status`` says why, and the column is drifted only through
  ``missing_threshold``. An empty current frame also adds a report warning.
* Categories unseen in the reference: listed in ``unseen_categories`` with
  their share of current rows (``unseen_share``); the chi-square then uses
  the contingency form (finite) - see :mod:`mlops_nb.drift.stattests`.
* Constant columns and a single category: tests are defined (KS D = 0 or 1,
  Wasserstein normed by ``max(std, 0.001)``, chi-square/z-test p = 1 when
  both sides hold the same single value).
* Columns on one side only: DriftError listing them, unless ``columns=``
  selects columns present on both sides.
* Object columns of mixed types: categorical, compared by text label.
  Datetimes: compared as timestamps. Booleans: two categories.
* Sides of different types: compared as categorical (numbers vs booleans as
  numerical); the note says so. A profile reference that cannot be read in
  the current type gives ``status="incomparable"`` and ``drifted=True``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping

import numpy as np
import pandas as pd

from mlops_nb import allocator
from mlops_nb.profiling import coltypes as ct
from mlops_nb.drift import stattests as st
from mlops_nb.profiling.dists import SKETCH_NOTE, CatCounts, SketchDist
from mlops_nb.drift.histograms import histogram
from mlops_nb.drift.report import DriftReport
from mlops_nb.drift.sides import Incomparable, profile_side, raw_side
from mlops_nb.errors import DriftError, MlopsError
from mlops_nb.profiling.profile import as_frame, column_key, is_profile

class PreparedReference:
    """A reference (DataFrame or profile) with per-column sides cached, so that
    several current batches (``drift_over_time``) reuse the sorted reference."""

    def __init__(self, reference: Any, label: str | None = None) -> None:
        self.profile = reference if is_profile(reference) else None
        self.frame = None if self.profile is not None else as_frame(reference)
        if self.profile is None and self.frame is None:
            raise DriftError(
                f"The reference must be a DataFrame, a Series, a profile from build_profile(), "
                f"or a 'run:ID' / 'model:DIGEST' string, not {type(reference).__name__}.",
                reference_type=type(reference).__name__,
            )
        if self.frame is not None and self.frame.columns.duplicated().any():
            dups = sorted({str(c) for c in self.frame.columns[self.frame.columns.duplicated()]})
            raise DriftError(f"The reference has duplicate column names {dups}; rename them first.", columns=dups)
        source = (self.profile or {}).get("source", {}) if self.profile else {}
        self.label = label or source.get("ref") or ("profile" if self.profile else "dataframe")
        self.digest = source.get("digest")
        self.note: str | None = source.get("note")
        self.obj = reference
        self._cache: dict = {}

    @classmethod
    def from_any(cls, reference: Any, label: str | None = None, store: Any = None) -> "PreparedReference":
        """``reference`` prepared: returned as is when already prepared; a string
        (``"run:ID"``, ``"model:DIGEST"``, ...) is resolved first and names the
        reference unless ``label`` is given."""
        if isinstance(reference, cls):
            return reference
        if isinstance(reference, str):
            from mlops_nb.drift.reference import resolve_reference

            label = label or reference
            reference = resolve_reference(reference, store=store)
        return cls(reference, label)

    @property
    def kind(self) -> str:
        return "profile" if self.profile is not None else "data"

    def names(self) -> list:
        if self.profile is not None:
            return list(self.profile["columns"])
        return list(self.frame.columns)

    def rows(self) -> int:
        if self.profile is not None:
            return int(self.profile.get("n_rows", 0))
        return len(self.frame)

    def ref_type(self, name) -> tuple[str, str | None]:
        if self.profile is not None:
            ptype = self.profile["columns"][name].get("type", ct.CATEGORICAL)
            return (ptype if ptype in ct.TYPES else ct.CATEGORICAL), None
        key = ("type", name)
        if key not in self._cache:
            self._cache[key] = ct.detect_type(self.frame[name])
        return self._cache[key]

    def side(self, name, ctype: str):
        key = ("side", name, ctype)
        if key not in self._cache:
            if self.profile is not None:
                self._cache[key] = profile_side(self.profile["columns"][name], ctype, name)
            else:
                self._cache[key] = raw_side(self.frame[name], ctype)
        return self._cache[key]

    def column_rows(self, name) -> int:
        if self.profile is not None:
            return int(self.profile["columns"][name].get("count", 0))
        return len(self.frame)


def drift(
    reference: Any,
    current: Any,
    *,
    columns: list | None = None,
    column_types: Mapping[Any, str] | None = None,
    method: str | Mapping[Any, str] | None = None,
    threshold: float | Mapping[Any, float] | None = None,
    drift_share: float = 0.5,
    missing_threshold: float | None = None,
    reference_label: str | None = None,
    store: Any = None,
    workers: int | None = None,
) -> DriftReport:
    """Compare ``current`` data with ``reference`` column by column.

    Parameters
    ----------
    reference : DataFrame, Series, profile dict, or str
        The baseline. A profile (see :mod:`mlops_nb.profiling.profile`) stands in for
        the raw data. Strings are resolved with
        :func:`mlops_nb.drift.reference.resolve_reference`: ``"run:ID"``,
        ``"run:ID:NAME"``, ``"model:DIGEST"``, ``"data:DIGEST"``.
    current : DataFrame or Series
        The data to check.
    columns : list, optional
        Columns to compare (default: all; then both sides must have the same).
    column_types : dict, optional
        Column -> ``numerical``/``categorical``/``boolean``/``datetime``,
        overriding detection.
    method : str or dict, optional
        Test for all columns, or column -> test; others use Evidently's rule.
        One of ``ks``, ``chisquare``, ``ztest``, ``wasserstein``,
        ``jensenshannon``, ``psi``, ``hellinger``.
    threshold : float or dict, optional
        Threshold for all columns, or column -> threshold (default: the
        test's own, 0.05 for p-values, 0.1 for distances).
    drift_share : float
        Dataset drift when the share of drifted columns is >= this.
    missing_threshold : float, optional
        Also flag a column whose missing share changed by at least this much.
    reference_label : str, optional
        How the reference is named in the report and the registry.
    """
    return compare(
        PreparedReference.from_any(reference, reference_label, store),
        current,
        columns=columns,
        column_types=column_types,
        method=method,
        threshold=threshold,
        drift_share=drift_share,
        missing_threshold=missing_threshold,
        workers=workers,
    )


def compare(
    prepared: PreparedReference,
    current: Any,
    *,
    columns=None,
    column_types=None,
    method=None,
    threshold=None,
    drift_share: float = 0.5,
    missing_threshold: float | None = None,
    workers: int | None = None,
    exclude: tuple = (),
) -> DriftReport:
    """Drift of ``current`` against an already prepared reference."""
    if is_profile(current):
        raise DriftError(
            "The current data must be a DataFrame or Series, not a profile: tests need the current values.",
        )
    frame = as_frame(current)
    if frame is None:
        raise DriftError(
            f"The current data must be a DataFrame or Series, not {type(current).__name__}.",
            current_type=type(current).__name__,
        )
    if frame.columns.duplicated().any():
        dups = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise DriftError(f"The current data has duplicate column names {dups}; rename them first.", columns=dups)
    if not 0 < float(drift_share) <= 1:
        raise DriftError(f"drift_share must be in (0, 1], got {drift_share!r}.", drift_share=drift_share)
    if missing_threshold is not None and not 0 < float(missing_threshold) <= 1:
        raise DriftError(
            f"missing_threshold must be in (0, 1], got {missing_threshold!r}.", missing_threshold=missing_threshold
        )
    pairs = _match_columns(prepared, frame, columns, exclude)
    names = [cur for _, cur in pairs]
    methods = _per_column(method, names, "method", lambda v, c: st.canonical(v, c))
    thresholds = _per_column(threshold, names, "threshold", _check_threshold)
    types = _per_column(column_types, names, "column_types", ct.check_type_name, allow_scalar=False)
    opts = {
        "missing_threshold": missing_threshold,
        "methods": methods,
        "thresholds": thresholds,
        "types": types,
    }

    def work(pair):
        ref_name, cur_name = pair
        try:
            return _column(prepared, ref_name, frame[cur_name], cur_name, opts)
        except MlopsError:
            raise
        except Exception as exc:
            raise DriftError(
                f"Could not compute drift for column {cur_name!r} ({type(exc).__name__}: {exc}). "
                f"Exclude it with columns=... or set its type with column_types=..., and report the problem.",
                column=cur_name,
            ) from exc

    allocator.tune()
    n_workers = workers or min(4, os.cpu_count() or 1)
    if n_workers > 1 and len(pairs) > 1 and len(frame) * len(pairs) >= 200_000:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            results = list(pool.map(work, pairs))
    else:
        results = [work(p) for p in pairs]
    warnings = []
    if len(frame) == 0:
        warnings.append("The current data has no rows: no test was run.")
    return DriftReport(
        [r for r, _ in results],
        {row["column"]: h for row, h in results if h is not None},
        drift_share=float(drift_share),
        options={
            "method": method if not isinstance(method, Mapping) else dict(methods),
            "threshold": threshold if not isinstance(threshold, Mapping) else dict(thresholds),
            "column_types": dict(types),
            "drift_share": float(drift_share),
            "missing_threshold": missing_threshold,
        },
        reference_label=prepared.label,
        reference_kind=prepared.kind,
        reference_digest=prepared.digest,
        reference_rows=prepared.rows(),
        reference_note=getattr(prepared, "note", None),
        current_rows=len(frame),
        warnings=warnings,
        current=current,
        reference=prepared.obj if prepared.frame is not None else None,
    )


def _check_threshold(value, column):
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not np.isfinite(v) or v < 0:
        raise DriftError(f"Threshold for column {column!r} must be a number >= 0, got {value!r}.", column=column)
    return v


def _per_column(option, names: list, what: str, check, allow_scalar: bool = True) -> dict:
    if option is None:
        return {}
    if isinstance(option, Mapping):
        unknown = [k for k in option if k not in names and column_key(k) not in {column_key(n) for n in names}]
        if unknown:
            raise DriftError(
                f"{what} names columns that are not compared: {unknown}. Compared columns: {names[:20]}.",
                columns=unknown,
            )
        by_key = {column_key(k): v for k, v in option.items()}
        return {n: check(by_key[column_key(n)], n) for n in names if column_key(n) in by_key}
    if not allow_scalar:
        raise DriftError(f"{what} must be a dict of column -> value.", option=what)
    return {n: check(option, n) for n in names}


def _match_columns(prepared: PreparedReference, frame: pd.DataFrame, columns, exclude) -> list[tuple]:
    """(reference name, current name) pairs, or DriftError naming what is missing."""
    ref_by_key = {column_key(n): n for n in prepared.names()}
    cur_by_key = {column_key(c): c for c in frame.columns}
    if columns is None:
        excluded = {column_key(e) for e in exclude}
        keys = [k for k in ref_by_key if k not in excluded]
        not_in_ref = [k for k in cur_by_key if k not in ref_by_key and k not in excluded]
    else:
        if isinstance(columns, (str, bytes)) or not hasattr(columns, "__iter__"):
            columns = [columns]
        keys = [column_key(c) for c in columns]
        not_in_ref = [k for k in keys if k not in ref_by_key]
    not_in_cur = [k for k in keys if k not in cur_by_key]
    if not_in_ref or not_in_cur:
        if columns is None:  # all columns compared: both sides must have the same
            field, ref_keys, cur_keys = "only_in", not_in_cur, not_in_ref
            ref_label, cur_label = "only in the reference", "only in the current data"
            head = "The reference and current data have different columns ("
            tail = "). Pass columns=[...] to choose the columns to compare."
        else:
            field, ref_keys, cur_keys = "missing_in", not_in_ref, not_in_cur
            ref_label, cur_label = "not in the reference", "not in the current data"
            head, tail = "Some requested columns are missing (", ")."
        raise DriftError(
            head + _sides(ref_label, ref_keys, cur_label, cur_keys) + tail,
            **{f"{field}_reference": ref_keys, f"{field}_current": cur_keys},
        )
    return [(ref_by_key[k], cur_by_key[k]) for k in keys]


def _sides(ref_label: str, ref_keys: list, cur_label: str, cur_keys: list) -> str:
    """'label: keys' for each side that has keys, joined for an error message."""
    return "; ".join(f"{label}: {keys}" for label, keys in ((ref_label, ref_keys), (cur_label, cur_keys)) if keys)


def _column(prepared: PreparedReference, ref_name, cur: pd.Series, name, opts) -> tuple[dict, dict | None]:
    rtype, rnote = prepared.ref_type(ref_name)
    ctype_cur, cnote = ct.detect_type(cur)
    notes = list(dict.fromkeys(n for n in (rnote, cnote) if n))  # both sides may say the same
    if name in opts["types"]:
        ctype = opts["types"][name]
    else:
        ctype, mnote = ct.combine_types(rtype, ctype_cur)
        if mnote:
            notes.append(mnote)
    ref_rows = prepared.column_rows(ref_name)
    cur_rows = len(cur)
    row: dict[str, Any] = {
        "column": column_key(name),
        "type": ctype,
        "test": None,
        "statistic": None,
        "p_value": None,
        "distance": None,
        "score": None,
        "threshold": None,
        "drifted": False,
        "test_drifted": False,
        "severity": None,
        "ref_rows": ref_rows,
        "cur_rows": cur_rows,
        "ref_count": 0,
        "cur_count": 0,
        "ref_missing_share": None,
        "cur_missing_share": None,
        "missing_change": None,
        "missing_drift": False,
        "unseen_categories": [],
        "unseen_share": 0.0,
        "status": "ok",
        "reference": prepared.kind,
        "note": None,
    }
    try:
        ref_side, ref_missing = prepared.side(ref_name, ctype)
    except Incomparable as exc:
        row.update(status="incomparable", drifted=True, note="; ".join(notes + [str(exc)]))
        return row, None
    values = ct.to_float(cur, ctype) if ctype in (ct.NUMERICAL, ct.DATETIME) else None  # converted once
    cur_side, cur_missing = raw_side(cur, ctype, values)
    unreadable = ct.unreadable_count(cur, values)
    if unreadable:
        notes.append(f"{unreadable} current values could not be read as {ctype} and count as missing")
    row["ref_count"] = ref_side.n if ref_side is not None else 0
    row["cur_count"] = cur_side.n if cur_side is not None else 0
    if ref_rows:
        row["ref_missing_share"] = ref_missing / ref_rows
    if cur_rows:
        row["cur_missing_share"] = cur_missing / cur_rows
    if row["ref_missing_share"] is not None and row["cur_missing_share"] is not None:
        change = row["cur_missing_share"] - row["ref_missing_share"]
        row["missing_change"] = change
        mt = opts["missing_threshold"]
        row["missing_drift"] = bool(mt is not None and abs(change) >= mt - 1e-12)
    if cur_rows == 0:
        row["status"] = "empty current"
    elif cur_side is None:
        row["status"] = "no current values"
    elif ref_side is None:
        row["status"] = "no reference values"
    if row["status"] != "ok":
        row["drifted"] = row["missing_drift"]
        row["note"] = "; ".join(notes) or None
        return row, None

    # categorical sides: align the counts once for the test choice, the test, unseen fields and histogram
    al = st.aligned_counts(ref_side, cur_side, name) if isinstance(ref_side, CatCounts) else None
    name_test = opts["methods"].get(name)
    if name_test is None:
        n_values = len(al.keys) if al is not None else st.n_distinct(ref_side, cur_side)
        name_test = st.default_test(ctype, ref_side.n, n_values)
    outcome = st.run_test(name_test, ref_side, cur_side, ctype, name, aligned=al)
    spec = st.SPECS[name_test]
    thr = opts["thresholds"].get(name, spec.default_threshold)
    score = outcome.p_value if spec.kind == "p_value" else outcome.distance
    if score is None or not np.isfinite(score):  # defensive: every test above is defined
        row.update(test=name_test, status="undefined", drifted=row["missing_drift"],
                   note="; ".join(notes + [f"{name_test} gave no finite value"]))  # fmt: skip
        return row, histogram(ref_side, cur_side, ctype, aligned=al)
    test_drifted = st.decide(name_test, score, thr)
    row.update(
        test=name_test,
        statistic=outcome.statistic,
        p_value=outcome.p_value,
        distance=outcome.distance,
        score=score,
        threshold=thr,
        test_drifted=test_drifted,
        drifted=bool(test_drifted or row["missing_drift"]),
    )
    if name_test == "psi":
        row["severity"] = st.psi_severity(outcome.distance)
    if outcome.note:
        notes.append(outcome.note)
    if al is not None:
        row["unseen_categories"] = al.unseen[:50]
        row["unseen_share"] = al.unseen_count / cur_side.n
        if len(al.unseen) > 50:
            notes.append(f"{len(al.unseen)} unseen categories (first 50 listed)")
        if al.pooled:
            notes.append(
                f"{al.pooled} current categor{'y' if al.pooled == 1 else 'ies'} outside the profile's top "
                f"categories pooled as (other)"
            )
    if isinstance(ref_side, SketchDist):
        notes.append(SKETCH_NOTE)
    row["note"] = "; ".join(notes) or None
    return row, histogram(ref_side, cur_side, ctype, aligned=al)
