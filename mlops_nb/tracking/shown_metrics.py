"""Metrics the notebook shows: metric-like calls and hyper-parameter searches.

A data scientist rarely names a score ``accuracy = …``; more often the cell
ends with ``accuracy_score(y, y_model)`` or ``cross_val_score(model, X, y)``
and the value is simply displayed.  Recorded here:

- the displayed value of a cell whose last expression is a metric-like call —
  scikit-learn's ``*_score``/``*_error``/``*_loss`` functions, ``.score(...)``,
  or ``.mean()``/``.std()`` of a name holding scores — under the call's name
  (``accuracy_score``, ``clf.score``, ``scores.mean``);
- a name bound to such a call (``acc = accuracy_score(...)``) under that name;
- arrays (``cross_val_score``) as ``NAME.mean`` and ``NAME.std`` plus the
  values themselves as a stepped metric ``NAME`` (step = fold);
- fitted searches (``GridSearchCV``, ``RandomizedSearchCV``…): params
  ``NAME.best_params.<param>``, metric ``NAME.best_score`` and the cv table's
  ``mean_test_score`` per candidate as the stepped metric
  ``NAME.mean_test_score`` (step = candidate index).

Nothing is evaluated again: values come from the displayed result and the namespace.
"""

from __future__ import annotations

import ast
import math
import re
from typing import Any

from .capture import is_metric_name, metric_value, safe_attr
from .cells import parsed

_METRIC_FUNCTION = re.compile(r".+_(score|error|loss)$")
_SUMMARIES = {"mean", "std", "median", "min", "max"}
_MAX_STEPS = 10_000


def add_shown_metrics(run: Any, capture: Any, displayed: Any) -> None:
    """Add to ``run`` the metrics a cell showed or bound through metric-like calls, and its searches."""
    try:
        tree = parsed(capture.source)
    except SyntaxError:
        return
    ns = capture.ns
    scored = _bound_by_metric_calls(tree)
    for name in scored:
        if name in ns and name not in capture.metrics:
            _record(run, name, ns[name])
    body = tree.body
    if body and isinstance(body[-1], ast.Expr) and displayed is not None:
        label = metric_call_label(body[-1].value, scored)
        if label is not None:
            _record(run, label, displayed)
    for name, model in capture.models.items():
        if "." not in name:
            _record_search(run, name, model)
    if displayed is not None and safe_attr(displayed, "cv_results_") is not None and not any(
        m is displayed for m in capture.models.values()
    ):
        _record_search(run, type(displayed).__name__, displayed)


def metric_call_label(node: ast.AST, scored: set[str] | frozenset[str] = frozenset()) -> str | None:
    """The metric name of a metric-like call expression, else None.

    ``scored``: names bound to metric-like calls in the same cell (their
    ``.mean()`` counts too).
    """
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Name):
        return func.id if _METRIC_FUNCTION.match(func.id) else None
    if not isinstance(func, ast.Attribute):
        return None
    if _METRIC_FUNCTION.match(func.attr):
        return func.attr  # metrics.accuracy_score(...): the function's own name
    owner = _dotted(func.value)
    if func.attr == "score":
        return f"{owner}.score" if owner else "score"
    if func.attr in _SUMMARIES and owner and "." not in owner and (owner in scored or _scores_name(owner)):
        return f"{owner}.{func.attr}"
    return None


def _scores_name(name: str) -> bool:
    """``accuracy``, ``val_loss``, and their plurals (``scores``, ``cv_scores``)."""
    return is_metric_name(name) or (name.endswith("s") and is_metric_name(name[:-1]))


def _bound_by_metric_calls(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for statement in tree.body:
        if (
            isinstance(statement, (ast.Assign, ast.AnnAssign))
            and statement.value is not None
            and metric_call_label(statement.value, names) is not None
        ):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def _record(run: Any, name: str, value: Any) -> None:
    """A number as one metric; a 1-d numeric array as mean, std and a stepped series."""
    existing = {m[0] for m in run.metrics}
    number = metric_value(value)
    if number is not None:
        if name not in existing and math.isfinite(number):
            run.log_metric(name, number)
        return
    values = _numbers(value)
    if not values or f"{name}.mean" in existing:
        return
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))  # numpy's default (ddof=0)
    run.log_metric(f"{name}.mean", mean)
    run.log_metric(f"{name}.std", std)
    for step, v in enumerate(values):
        run.log_metric(name, v, step)


def _numbers(value: Any) -> list[float] | None:
    shape = safe_attr(value, "shape")
    if shape is not None and len(shape) != 1:
        return None
    if shape is None and not isinstance(value, (list, tuple)):
        return None
    try:
        items = value.tolist() if hasattr(value, "tolist") else list(value)
    except Exception:
        return None
    if not 0 < len(items) <= _MAX_STEPS:
        return None
    numbers = [metric_value(v) for v in items]
    if any(n is None or not math.isfinite(n) for n in numbers):
        return None
    return numbers  # type: ignore[return-value]


def _record_search(run: Any, name: str, search: Any) -> None:
    """Best params, best score and the per-candidate mean test score of a fitted search."""
    results = getattr(search, "cv_results_", None)
    if not isinstance(results, dict) or f"{name}.best_score" in {m[0] for m in run.metrics}:
        return
    for key, value in (getattr(search, "best_params_", None) or {}).items():
        run.log_param(f"{name}.best_params.{key}", _plain(value))
    best = metric_value(getattr(search, "best_score_", None))
    if best is not None and math.isfinite(best):
        run.log_metric(f"{name}.best_score", best)
    scores = results.get("mean_test_score")
    if scores is None:
        return
    for step, value in enumerate(list(scores)[:_MAX_STEPS]):
        number = metric_value(value)
        if number is not None and math.isfinite(number):
            run.log_metric(f"{name}.mean_test_score", number, step)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item"):
        try:
            return value.item()
        except Exception:
            pass
    if hasattr(value, "get_params"):
        return type(value).__name__
    return repr(value)
