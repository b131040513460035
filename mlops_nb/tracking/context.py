"""How to rebuild what a tracked cell read besides data and models, for ``reproduce``.

Each name the cell reads is described by what a fresh kernel needs to get it back:

``import``  a class or function of a module that is not the notebook (``sklearn.linear_model``'s
            ``LogisticRegression``): ``module`` + ``qualname``;
``module``  a module (``np``): its name;
``value``   a small plain value (numbers, strings, booleans, None, and lists, tuples and dicts
            of them): the value itself (tuples are marked, JSON has none);
``model``   a fitted estimator: its model digest (the registry may hold it);
``unknown`` anything else (a function the notebook defined, an open connection): its type, so
            that reproduce can name it and say what to do.

Data inputs are not described here: they are the run's inputs, with their snapshots.
"""

from __future__ import annotations

import json
import types
from collections.abc import Mapping
from typing import Any

MAX_VALUE_CHARS = 10_000  # a value larger than this as JSON is not recorded (it is data, not a setting)
MAX_ITEMS = 1_000  # elements looked at before a container counts as large: a cell reading a long list pays nothing


def describe_names(namespace: Mapping[str, Any], names: set[str], *, skip: set[str],
                   models: Mapping[str, str]) -> dict[str, dict[str, Any]]:  # fmt: skip
    """``{name: description}`` of ``names`` (found in ``namespace``), leaving out ``skip``
    (data inputs); ``models``: name -> model digest of the estimators the cell read."""
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(names - skip):
        if name not in namespace or name.startswith("_"):
            continue
        if name in models:
            out[name] = {"kind": "model", "digest": models[name]}
            continue
        try:
            out[name] = describe(namespace[name])
        except Exception as exc:  # a proxy whose attributes raise: named, never a failed capture
            out[name] = {"kind": "unknown", "type": "?", "why": f"could not be inspected ({type(exc).__name__})"}
    return out


def describe(obj: Any) -> dict[str, Any]:
    if isinstance(obj, types.ModuleType):
        return {"kind": "module", "module": obj.__name__}
    budget = [MAX_ITEMS]
    value = _plain(obj, budget)
    if value is not _NOT_PLAIN and len(json.dumps(value)) <= MAX_VALUE_CHARS:
        return {"kind": "value", "value": value}
    if budget[0] < 0 or value is not _NOT_PLAIN:
        return {"kind": "unknown", "type": type(obj).__name__, "why": "a large value (data, not a setting)"}
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if isinstance(obj, type | types.FunctionType | types.BuiltinFunctionType) and module and qualname:
        if module == "__main__" or "<locals>" in qualname:
            return {"kind": "unknown", "type": type(obj).__name__, "why": "defined in the notebook"}
        return {"kind": "import", "module": module, "qualname": qualname}
    return {"kind": "unknown", "type": f"{type(obj).__module__}.{type(obj).__qualname__}",
            "why": "not data, a model, an importable name or a plain value"}  # fmt: skip


_NOT_PLAIN = object()


def _plain(obj: Any, budget: list[int], depth: int = 0) -> Any:
    """``obj`` as JSON-able plain values (tuples as {"__tuple__": [...]}), or _NOT_PLAIN; gives up
    (leaving ``budget[0]`` below zero) after :data:`MAX_ITEMS` elements."""
    budget[0] -= 1
    if depth > 5 or budget[0] < 0:
        return _NOT_PLAIN
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int | float) and type(obj) in (int, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else {"__float__": repr(obj)}
    if type(obj) in (list, tuple):
        if len(obj) > budget[0]:
            budget[0] = -1
            return _NOT_PLAIN
        items = []
        for x in obj:
            if (item := _plain(x, budget, depth + 1)) is _NOT_PLAIN:
                return _NOT_PLAIN
            items.append(item)
        return items if isinstance(obj, list) else {"__tuple__": items}
    if type(obj) is dict and len(obj) <= budget[0] and all(isinstance(k, str) for k in obj):
        out = {}
        for k, v in obj.items():
            if (item := _plain(v, budget, depth + 1)) is _NOT_PLAIN:
                return _NOT_PLAIN
            out[k] = item
        return out
    if type(obj) is dict and len(obj) > budget[0]:
        budget[0] = -1
    return _NOT_PLAIN


def rebuild_value(value: Any) -> Any:
    """The Python value :func:`describe` recorded."""
    if isinstance(value, list):
        return [rebuild_value(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(rebuild_value(v) for v in value["__tuple__"])
        if set(value) == {"__float__"}:
            return float(value["__float__"])
        return {k: rebuild_value(v) for k, v in value.items()}
    return value
