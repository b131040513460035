"""Run parameters stored with their type, so ``True`` comes back as ``True`` (not ``"true"``)."""

from __future__ import annotations

import json
import math
from typing import Any

#: The columns :func:`param_columns` gives, in its order.
PARAM_FIELDS = ("value", "value_type", "value_num")


def param_columns(value: Any) -> tuple[str | None, str, float | None]:
    """The ``value``, ``value_type`` and ``value_num`` columns (:data:`PARAM_FIELDS`) of one parameter value."""
    if value is None:
        return None, "null", None
    if isinstance(value, bool):
        return json.dumps(value), "bool", float(value)
    if isinstance(value, str):
        return value, "str", None
    if hasattr(value, "item") and not isinstance(value, (list, dict)):
        try:  # numpy scalars
            value = value.item()
        except Exception:
            pass
    if isinstance(value, bool):
        return param_columns(value)
    # int.__repr__ and float.__repr__ are what json.dumps writes for them (at a tenth of its cost)
    if isinstance(value, int):
        return int.__repr__(value), "int", float(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return float.__repr__(value), "float", value
        return json.dumps(value), "float", None
    return json.dumps(value, default=repr), "json", None


def param_value(value: str | None, value_type: str | None) -> Any:
    """Rebuild the Python value of a stored parameter."""
    if value_type == "str":
        return value
    if value_type == "null" or value is None:
        return None
    if value_type is None:  # written before types were kept
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
