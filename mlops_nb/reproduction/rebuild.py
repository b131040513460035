"""Inside the fresh kernel of a reproduction: put back what the recorded cell read.

Data inputs come from their snapshots (checked against their fingerprints), names reached
through an attribute or a key (``digits.data``) on a stand-in object that answers both,
settings from their recorded values, classes and functions by their import path, models
the cell read from the registry. What cannot be rebuilt is named, with what to do.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import MlopsError, ReproduceError


class Rebuilt(dict):
    """A stand-in for an object whose data the cell reached by attribute or key
    (``digits.data``, ``bunch['target']``): it answers both ways."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def into(namespace: dict[str, Any], run_id: str, *, store: Any = None) -> list[str]:
    """Rebuild run ``run_id``'s inputs into ``namespace``; returns the names rebuilt."""
    from ..data import load_data
    from ..store import get_store
    from ..tracking.context import rebuild_value

    store = store or get_store()
    run = store.get_run(run_id)
    problems: list[str] = []
    done: list[str] = []
    for record in run.get("inputs", []):
        name = record["name"]
        try:
            obj = load_data(f"data:{record['digest']}", store=store)
        except MlopsError as exc:
            problems.append(f"data {name}: {exc}")
            continue
        if record.get("kind") == "file":
            continue  # files are restored on disk by the caller, not bound to a name
        _bind(namespace, name, obj)
        done.append(name)
    for name, how in (run.get("context") or {}).items():
        kind = how.get("kind")
        try:
            if kind == "module":
                namespace[name] = importlib.import_module(how["module"])
            elif kind == "import":
                obj: Any = importlib.import_module(how["module"])
                for part in how["qualname"].split("."):
                    obj = getattr(obj, part)
                namespace[name] = obj
            elif kind == "value":
                namespace[name] = rebuild_value(how["value"])
            elif kind == "model":
                from ..registry import load_model

                namespace[name] = load_model(how["digest"], store=store)
            elif kind == "chain":
                continue  # bound with its data inputs above
            else:
                problems.append(f"{name}: a {how.get('type', 'value')} ({how.get('why', 'not recorded')}); "
                                "define it in the reproduction or make the cell create it")  # fmt: skip
                continue
        except (ImportError, AttributeError) as exc:
            problems.append(f"{name}: cannot import {how.get('module')}.{how.get('qualname', '')} here ({exc})")
            continue
        except MlopsError as exc:
            problems.append(f"{name}: {exc}")
            continue
        done.append(name)
    if problems:
        raise ReproduceError(
            f"Run {run['id'][:8]} cannot be rebuilt in a fresh kernel: " + "; ".join(problems) + ".",
            run_id=run["id"], problems=problems,
        )  # fmt: skip
    return done


def _bind(namespace: dict[str, Any], name: str, obj: Any) -> None:
    """Bind ``name`` (a plain name, or ``base.attr`` / ``base['key']`` chains) to ``obj``."""
    import ast

    try:
        node = ast.parse(name, mode="eval").body
    except SyntaxError:
        namespace[name] = obj  # a file path or another name that is not Python: kept as it is
        return
    steps = []
    while isinstance(node, ast.Attribute | ast.Subscript):
        steps.append(node.attr if isinstance(node, ast.Attribute) else node.slice.value)  # type: ignore[union-attr]
        node = node.value
    if not isinstance(node, ast.Name):
        namespace[name] = obj
        return
    if not steps:
        namespace[node.id] = obj
        return
    holder = namespace.setdefault(node.id, Rebuilt())
    for key in reversed(steps[1:]):
        holder = holder.setdefault(key, Rebuilt())
    holder[steps[0]] = obj
