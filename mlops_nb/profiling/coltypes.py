"""Column types for drift: detection and conversion of raw columns.

Every column is one of four types:

``numerical``
    Numbers (any numpy or nullable integer/float dtype, timedeltas as
    seconds, object columns holding only numbers).
``categorical``
    Strings, ``category`` dtype and object columns of mixed types. Values are
    compared by a normalised text label (``1``, ``1.0`` and ``"1"`` are the
    same category; ``True`` is ``"True"``), which is also what a stored
    profile keeps, so a profile and the raw data agree.
``boolean``
    ``bool``/``boolean`` dtype or object columns of only ``True``/``False``;
    tested like a two-category column (labels ``"False"``/``"True"``).
``datetime``
    ``datetime64`` (any unit, any time zone: converted to UTC) and object
    columns of ``datetime``/``date`` values; compared as timestamps
    (seconds since the epoch) with the numerical rules.

Missing values (None, NaN, NaT, pd.NA) and +-inf are excluded from every
test and counted as missing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from mlops_nb.errors import DriftError

NUMERICAL = "numerical"
CATEGORICAL = "categorical"
BOOLEAN = "boolean"
DATETIME = "datetime"
TYPES = (NUMERICAL, CATEGORICAL, BOOLEAN, DATETIME)

_NUMERIC_INFERRED = {"integer", "floating", "mixed-integer-float", "decimal"}
_DATETIME_INFERRED = {"datetime64", "datetime", "date"}


def check_type_name(name: Any, column: Any = None) -> str:
    """Return ``name`` if it is a valid column type, else raise DriftError."""
    if name in TYPES:
        return name
    where = f" for column {column!r}" if column is not None else ""
    raise DriftError(
        f"Unknown column type {name!r}{where}; use one of {', '.join(TYPES)}.",
        column=column,
        type=name,
    )


def detect_type(series: pd.Series) -> tuple[str, str | None]:
    """Detect the drift type of a column.

    Returns ``(type, note)`` where ``note`` explains a non-obvious choice
    (for example an object column of mixed types), or is None.
    """
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return BOOLEAN, None
    if isinstance(dtype, pd.CategoricalDtype):
        return CATEGORICAL, None
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return DATETIME, None
    if pd.api.types.is_timedelta64_dtype(dtype):
        return NUMERICAL, "timedelta compared in seconds"
    if pd.api.types.is_numeric_dtype(dtype):
        return NUMERICAL, None
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return CATEGORICAL, None
    if pd.api.types.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        if inferred == "boolean":
            return BOOLEAN, None
        if inferred in _NUMERIC_INFERRED:
            return NUMERICAL, None
        if inferred in _DATETIME_INFERRED:
            return DATETIME, None
        if inferred in ("mixed", "mixed-integer"):
            return CATEGORICAL, "object column of mixed types: compared by text label"
        return CATEGORICAL, None
    return CATEGORICAL, f"dtype {dtype} compared by text label"


def combine_types(ref_type: str, cur_type: str) -> tuple[str, str | None]:
    """Type used when the reference and current sides disagree."""
    if ref_type == cur_type:
        return ref_type, None
    pair = {ref_type, cur_type}
    if pair == {NUMERICAL, BOOLEAN}:
        chosen = NUMERICAL
    else:
        chosen = CATEGORICAL
    note = f"type differs: reference {ref_type}, current {cur_type}; compared as {chosen}"
    return chosen, note


def label(value: Any) -> str:
    """Normalised text label of a category value (shared with profiles)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isfinite(f) and f.is_integer() and abs(f) < 2**53:
            return str(int(f))
        return repr(f)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _datetime_seconds(series: pd.Series) -> np.ndarray:
    """Datetime column as float seconds since the epoch (UTC); NaT -> NaN."""
    if not pd.api.types.is_datetime64_any_dtype(series.dtype):
        series = pd.to_datetime(series, utc=True, errors="coerce")
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    arr = series.to_numpy()
    if arr.dtype.kind != "M":
        arr = arr.astype("datetime64[ns]")
    unit, _ = np.datetime_data(arr.dtype)
    scale = np.timedelta64(1, unit) / np.timedelta64(1, "s")
    out = arr.view(np.int64).astype(np.float64) * scale
    out[np.isnat(arr)] = np.nan
    return out


def to_float(series: pd.Series, ctype: str) -> np.ndarray:
    """Raw column as a float64 array; missing values as NaN (inf kept)."""
    if ctype == DATETIME:
        return _datetime_seconds(series)
    dtype = series.dtype
    if pd.api.types.is_timedelta64_dtype(dtype):
        arr = series.to_numpy()
        out = arr.astype("timedelta64[ns]").view(np.int64).astype(np.float64) / 1e9
        out[np.isnat(arr)] = np.nan
        return out
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return _datetime_seconds(series)
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        if isinstance(dtype, pd.CategoricalDtype):
            series = series.astype(object)
        else:
            return series.to_numpy(dtype=np.float64, na_value=np.nan)
    converted = pd.to_numeric(series.astype(object), errors="coerce")
    return converted.to_numpy(dtype=np.float64, na_value=np.nan)


def unreadable_count(series: pd.Series, values: np.ndarray | None) -> int:
    """Values of a text/object column that became missing when read as numbers or
    datetimes (``column_types`` overrides); 0 for other columns.

    ``values`` is ``to_float(series, ctype)`` for a numerical or datetime
    reading, None for a categorical one.
    """
    if values is None or not (
        pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype)
    ):
        return 0
    return int(np.count_nonzero(np.isnan(values) & ~series.isna().to_numpy(dtype=bool)))


def finite_sorted(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Sorted finite values and the number of missing (NaN/inf) entries."""
    mask = np.isfinite(values)
    n_missing = int(values.size - np.count_nonzero(mask))
    kept = values[mask] if n_missing else values.copy()
    kept.sort()
    return kept, n_missing


def category_counts(series: pd.Series) -> tuple[list[str], np.ndarray, int]:
    """Counts per normalised label and the number of missing values.

    Labels are sorted by descending count, then by label.
    """
    n_missing = int(series.isna().sum())
    if isinstance(series.dtype, pd.CategoricalDtype):
        vc = series.value_counts(dropna=True, sort=False)
        vc = vc[vc > 0]
    elif pd.api.types.is_bool_dtype(series.dtype) and not series.hasnans:
        n_true = int(np.count_nonzero(series.to_numpy(dtype=bool)))
        vc = pd.Series([len(series) - n_true, n_true], index=[False, True])
        vc = vc[vc > 0]
    else:
        try:
            vc = series.value_counts(dropna=True, sort=False)
        except TypeError:  # unhashable values (lists, dicts): count their text form
            vc = series[series.notna()].map(label).value_counts(sort=False)
    if pd.api.types.is_object_dtype(series.dtype) and len(vc):
        # +-inf inside an object column counts as missing too
        inf_mask = np.array([isinstance(v, (float, np.floating)) and math.isinf(v) for v in vc.index])
        if inf_mask.any():
            n_missing += int(vc[inf_mask].sum())
            vc = vc[~inf_mask]
    labels, counts = merge_labels(vc.index, vc.to_numpy())
    return labels, counts, n_missing


def merge_labels(keys, counts) -> tuple[list[str], np.ndarray]:
    """Counts of ``keys`` summed per text :func:`label`, sorted by descending
    count, then by label; the counts as int64."""
    agg: dict[str, int] = {}
    for key, count in zip(keys, counts):
        lab = label(key)
        agg[lab] = agg.get(lab, 0) + int(count)
    items = sorted(agg.items(), key=lambda kv: (-kv[1], kv[0]))
    return [k for k, _ in items], np.array([v for _, v in items], dtype=np.int64)
