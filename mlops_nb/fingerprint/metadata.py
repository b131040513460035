"""Kind, shape and schema of the data objects mlops_nb versions (no hashing here)."""

from __future__ import annotations

import os
import pathlib
import sys
from typing import Any

from .paths import walk


def data_kind(obj: Any) -> str | None:
    """Return the kind of a data object we version, else None (never raises).

    Returns
    -------
    str or None
        ``"dataframe"``, ``"series"``, ``"array"`` (numpy), ``"file"`` or
        ``"directory"`` (an existing ``pathlib.Path``; plain strings are None).
    """
    pd = sys.modules.get("pandas")  # never imported here: a frame exists only if pandas does
    try:  # isinstance asks a proxy's __class__, which may raise anything
        if pd is not None and isinstance(obj, pd.DataFrame):
            return "dataframe"
        if pd is not None and isinstance(obj, pd.Series):
            return "series"
        np = sys.modules.get("numpy")
        if np is not None and isinstance(obj, np.ndarray):
            return "array"
        if isinstance(obj, pathlib.Path):
            return "file" if obj.is_file() else "directory" if obj.is_dir() else None
    except Exception:
        return None
    return None


def describe(obj: Any) -> dict[str, Any]:
    """Kind, shape and schema of a data object.

    Returns
    -------
    dict
        ``{"kind", "shape", "schema"}``. Schemas: frames ``{column: dtype}``,
        series ``{name: dtype}``, arrays ``{"dtype": ...}``, files
        ``{"size": bytes}``, directories ``{"files": n, "size": bytes}``
        (paths have shape None). Other objects: kind, shape and schema None.
    """
    kind, shape, schema = data_kind(obj), None, None
    if kind == "dataframe":
        shape, schema = list(obj.shape), {str(c): str(t) for c, t in obj.dtypes.items()}
    elif kind == "series":
        shape, schema = list(obj.shape), {str(obj.name): str(obj.dtype)}
    elif kind == "array":
        shape, schema = [int(n) for n in obj.shape], {"dtype": str(obj.dtype)}
    elif kind == "file":
        schema = {"size": obj.stat().st_size}
    elif kind == "directory":
        files = [full for _, k, full in walk(obj) if k == "file"]
        schema = {"files": len(files), "size": sum(os.path.getsize(f) for f in files)}
    return {"kind": kind, "shape": shape, "schema": schema}
