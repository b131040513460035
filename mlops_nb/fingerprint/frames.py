"""pandas DataFrame, Series, Index, ExtensionArray and extension dtypes.

A frame is its column index, row index, then per column a dtype token and
content (masked: NA positions + data with NA slots zeroed; categorical: codes,
categories, ordered; tz-aware: UTC instants, tz in the token; pyarrow: see
:mod:`.arrow`). An int64 index that is an arithmetic progression hashes like
the equal RangeIndex, in O(1) for it.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pandas as pd
import xxhash

from .arrays import array_content, feed_ndarray, np_dtype_token
from .arrow import arrow_content
from .buffers import BLOCK
from .framing import U64, atom, container, feed
from .objects import feed_objects, feed_repr


def _dtype_token(dtype: Any) -> str:
    if isinstance(dtype, np.dtype):
        return "np:" + np_dtype_token(dtype)
    token = f"pd:{type(dtype).__name__}:{dtype}"
    if isinstance(dtype, pd.StringDtype):  # "string" prints the same for both storages
        token += f":{dtype.storage}"
    return token


feed.register(pd.api.extensions.ExtensionDtype, lambda o, h: atom(h, b"pddtype", _dtype_token(o).encode()))
for _t in (pd.Period, pd.Interval, type(pd.NA), type(pd.NaT)):  # exact, deterministic reprs
    feed.register(_t, feed_repr)


def _column_content(arr: Any, dtype: Any) -> bytes:
    """Digest of one column or index level (the dtype token is framed by the caller)."""
    if isinstance(dtype, (np.dtype, pd.SparseDtype)):
        return array_content(np.asarray(arr))
    sub = xxhash.xxh3_128()
    if isinstance(dtype, pd.CategoricalDtype):
        feed_ndarray(np.asarray(arr.codes), sub)
        _feed_index(dtype.categories, sub)
        feed(bool(dtype.ordered), sub)
    elif isinstance(dtype, pd.DatetimeTZDtype):
        feed_ndarray(np.asarray(arr, dtype=dtype.base), sub)  # UTC instants
    elif isinstance(dtype, pd.PeriodDtype):
        feed_ndarray(np.asarray(arr.asi8), sub)
    elif isinstance(dtype, pd.ArrowDtype) or (
        isinstance(dtype, pd.StringDtype) and dtype.storage.startswith("pyarrow")  # or "pyarrow_numpy"
    ):
        chunked = arr.__arrow_array__()
        atom(sub, b"arrow", arrow_content(chunked.chunks, chunked.type))
    elif isinstance(arr, (pd.arrays.IntegerArray, pd.arrays.FloatingArray, pd.arrays.BooleanArray)):
        np_dtype = dtype.numpy_dtype
        feed_ndarray(np.flatnonzero(np.asarray(arr.isna(), dtype=bool)), sub)
        feed_ndarray(arr.to_numpy(dtype=np_dtype, na_value=np_dtype.type(0)), sub)
    else:  # other extension arrays (python strings, intervals...): NA positions + objects
        mask = np.asarray(arr.isna(), dtype=bool)
        values = np.array(arr, dtype=object)
        values[mask] = None
        feed_ndarray(np.flatnonzero(mask), sub)
        feed_objects(values, sub)
    return sub.digest()


def _feed_column(arr: Any, dtype: Any, h: Any) -> None:
    container(h, b"column", 3)
    atom(h, b"dtype", _dtype_token(dtype).encode())
    atom(h, b"len", U64.pack(len(arr)))
    atom(h, b"content", _column_content(arr, dtype))


def _as_range(idx: pd.Index) -> tuple[int, int, int] | None:
    """``(start, step, length)`` if ``idx`` is an int64 arithmetic progression, else None.

    O(1) for a RangeIndex; a materialised int64 index pays one pass only when
    its endpoints already fit a progression.
    """
    if isinstance(idx, pd.RangeIndex):
        start, step, n = idx.start, idx.step, len(idx)
    elif idx.dtype == np.dtype("int64"):
        x, n = np.asarray(idx), len(idx)
        start, step = (int(x[0]) if n else 0), (int(x[1]) - int(x[0]) if n > 1 else 1)
        if n > 1 and (step == 0 or not -(2**63) <= step < 2**63 or int(x[-1]) != start + (n - 1) * step):
            return None
        for i in range(0, n, BLOCK // 8):  # exact: every expected value fits in int64
            j = min(n, i + BLOCK // 8)
            if not np.array_equal(x[i:j], start + step * np.arange(i, j, dtype=np.int64)):
                return None
    else:
        return None
    return (start if n else 0, step if n > 1 else 1, n)


@feed.register(pd.Index)
def _feed_index(idx: pd.Index, h: Any) -> None:
    if isinstance(idx, pd.MultiIndex):  # level values: (levels, codes) is not canonical
        container(h, b"MultiIndex", 1 + idx.nlevels)
        feed(list(idx.names), h)
        for i in range(idx.nlevels):
            level = idx.get_level_values(i)
            _feed_column(level.array, level.dtype, h)
        return
    container(h, b"Index", 2)
    feed(list(idx.names), h)
    rng = _as_range(idx)
    if rng is not None:
        atom(h, b"range", struct.pack("<qqQ", *rng))
    else:
        _feed_column(idx.array, idx.dtype, h)


@feed.register(pd.Series)
def _(s: pd.Series, h: Any) -> None:
    container(h, b"Series", 3)
    feed(s.name, h)
    _feed_index(s.index, h)
    _feed_column(s.array, s.dtype, h)


@feed.register(pd.DataFrame)
def _(df: pd.DataFrame, h: Any) -> None:
    container(h, b"DataFrame", 2 + df.shape[1])
    _feed_index(df.columns, h)
    _feed_index(df.index, h)
    for i in range(df.shape[1]):  # column by column: block layout cannot matter
        col = df.iloc[:, i]
        _feed_column(col.array, col.dtype, h)


@feed.register(pd.api.extensions.ExtensionArray)
def _(arr: Any, h: Any) -> None:
    numpy_backed = getattr(pd.arrays, "NumpyExtensionArray", None) or pd.arrays.PandasArray  # pandas < 2.1
    # StringArray is numpy-backed too, but its dtype has no numpy_dtype.
    plain = isinstance(arr, numpy_backed) and hasattr(arr.dtype, "numpy_dtype")
    dtype = arr.dtype.numpy_dtype if plain else arr.dtype
    container(h, b"ExtensionArray", 1)
    _feed_column(arr, dtype, h)
