"""Data objects as Arrow tables and back, exactly: the same fingerprint after the round trip.

A DataFrame or Series keeps pandas' own metadata (dtypes such as categoricals, nullable
integers, pyarrow strings, tz-aware datetimes, and the index) in the manifest, not in
each chunk, so that a chunk's bytes depend on its rows alone. A numpy array is a table of
one fixed-size binary column, one row per leading-axis slice, with its dtype and shape in
the manifest: exact for every dtype that has no Python objects.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np

from ..errors import SnapshotError


def to_table(obj: Any) -> tuple[Any, dict[str, Any]]:
    """``(table, meta)``: the rows to chunk and what it takes to rebuild ``obj`` from them."""
    import pandas as pd
    import pyarrow as pa

    if isinstance(obj, pd.DataFrame | pd.Series):
        frame = obj.to_frame() if isinstance(obj, pd.Series) else obj
        if frame.columns.duplicated().any():
            raise SnapshotError("it has duplicate column names; rename them to keep a snapshot")
        try:
            table = pa.Table.from_pandas(frame, preserve_index=None)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise SnapshotError(f"pyarrow cannot store one of its columns ({exc})") from None
        meta = {
            "kind": "series" if isinstance(obj, pd.Series) else "dataframe",
            "strings": _string_dtypes(frame),
            # neither is in Arrow's pandas metadata: an index's frequency, an empty column's categories
            "index_freq": getattr(getattr(frame.index, "freq", None), "freqstr", None),
            "empty_categories": _empty_categories(frame),
            "pandas": table.schema.metadata[b"pandas"].decode() if table.schema.metadata else None,
            "series_name": _json_name(obj.name) if isinstance(obj, pd.Series) else None,
            "series_unnamed": isinstance(obj, pd.Series) and obj.name is None,
        }
        return table.replace_schema_metadata(None), meta
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise SnapshotError("it is an array of Python objects; convert it to a typed array or a DataFrame")
        arr = obj if obj.ndim else obj.reshape(1)
        rows = arr.shape[0]
        width = arr.dtype.itemsize * int(np.prod(arr.shape[1:], dtype=np.int64))
        raw = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
        if width == 0 or rows == 0:
            column = pa.array([], type=pa.binary(max(width, 1)))
        else:
            column = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), rows, [None, pa.py_buffer(raw)])
        meta = {"kind": "array", "dtype": _dtype_text(obj.dtype), "shape": list(obj.shape)}
        return pa.table({"rows": column}), meta
    raise SnapshotError(f"{type(obj).__name__} objects cannot be snapshotted (DataFrames, Series and arrays can)")


def from_table(table: Any, meta: dict[str, Any]) -> Any:
    """Rebuild the object :func:`to_table` took apart."""
    import pyarrow as pa

    if meta["kind"] == "array":
        dtype = _dtype_from_text(meta["dtype"])
        shape = tuple(meta["shape"])
        column = table.column("rows").combine_chunks() if table.num_rows else None
        if column is None:
            return np.zeros(shape, dtype=dtype)
        raw = np.frombuffer(column.buffers()[1], np.uint8)[column.offset * column.type.byte_width :]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        out = raw[: count * dtype.itemsize].view(dtype).reshape(shape).copy()
        return out
    if meta.get("pandas"):
        table = table.replace_schema_metadata({b"pandas": meta["pandas"].encode()})
    import pandas as pd

    frame = _restore_strings(table.to_pandas(), meta.get("strings") or {})
    for position, categories in (meta.get("empty_categories") or {}).items():
        i = int(position)
        frame.isetitem(i, frame.iloc[:, i].cat.set_categories(categories))
    if meta.get("index_freq"):
        frame.index = type(frame.index)(frame.index, freq=meta["index_freq"])
    if meta["kind"] == "series":
        series = frame.iloc[:, 0]
        series.name = None if meta.get("series_unnamed") else _name_from_json(meta.get("series_name"))
        return series
    return frame if isinstance(frame, pd.DataFrame) else pa.table(frame).to_pandas()


def _string_dtypes(frame: Any) -> dict[str, list]:
    """Storage and missing-value marker of each pandas string column (by position): Arrow's
    pandas metadata says only "string", and pandas reads that back with its default storage."""
    import pandas as pd

    out = {}
    for i, dtype in enumerate(frame.dtypes):
        if isinstance(dtype, pd.StringDtype):
            na = getattr(dtype, "na_value", pd.NA)
            out[str(i)] = [dtype.storage, "NA" if na is pd.NA else "nan"]
    return out


def _empty_categories(frame: Any) -> dict[str, list]:
    """Categories of categorical columns of a frame with no rows (no chunk carries them then)."""
    import pandas as pd

    if len(frame):
        return {}
    return {str(i): pd.Series(d.categories).tolist() for i, d in enumerate(frame.dtypes)
            if isinstance(d, pd.CategoricalDtype)}  # fmt: skip


def _restore_strings(frame: Any, strings: dict[str, list]) -> Any:
    import pandas as pd

    for position, (storage, na) in strings.items():
        i = int(position)
        kwargs = {"na_value": np.nan} if na == "nan" else {}
        try:
            dtype = pd.StringDtype(storage, **kwargs)
        except TypeError:  # pandas < 2.3 has no na_value: its one string dtype per storage
            dtype = pd.StringDtype(storage)
        if frame.dtypes.iloc[i] != dtype or getattr(frame.dtypes.iloc[i], "storage", None) != storage:
            frame.isetitem(i, frame.iloc[:, i].astype(dtype))
    return frame


def schema_bytes(schema: Any) -> str:
    """An Arrow schema as text for a manifest."""
    return base64.b64encode(schema.serialize().to_pybytes()).decode()


def schema_from_text(text: str) -> Any:
    import pyarrow as pa

    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def _dtype_text(dtype: np.dtype) -> Any:
    return dtype.descr if dtype.fields else dtype.str


def _dtype_from_text(text: Any) -> np.dtype:
    if isinstance(text, list):
        return np.dtype([tuple(field) if not isinstance(field[1], list) else (field[0], _dtype_from_text(field[1]))
                         for field in text])  # fmt: skip
    return np.dtype(text)


def _json_name(name: Any) -> Any:
    try:
        json.dumps(name)
        return name
    except TypeError:
        return str(name)


def _name_from_json(name: Any) -> Any:
    return tuple(name) if isinstance(name, list) else name
