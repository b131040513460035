"""Run parameters stored with their type, so ``True`` comes back as ``True`` (not ``"true"``)."""

from __future__ import annotations

import json
import math
from typing import Any


def param_columns(value: Any) -> dict[str, Any]:
    """``value``, ``value_type`` and ``value_num`` columns for one parameter value."""
    if value is None:
        return {"value": None, "value_type": "null", "value_num": None}
    if isinstance(value, bool):
        return {"value": json.dumps(value), "value_type": "bool", "value_num": float(value)}
    if isinstance(value, str):
        return {"value": value, "value_type": "str", "value_num": None}
    if hasattr(value, "item") and not isinstance(value, (list, dict)):
        try:  # numpy scalars
            value = value.item()
        except Exception:
            pass
    if isinstance(value, bool):
        return param_columns(value)
    if isinstance(value, int):
        return {"value": json.dumps(value), "value_type": "int", "value_num": float(value)}
    if isinstance(value, float):
        num = value if math.isfinite(value) else None
        return {"value": json.dumps(value), "value_type": "float", "value_num": num}
    return {"value": json.dumps(value, default=repr), "value_type": "json", "value_num": None}


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
