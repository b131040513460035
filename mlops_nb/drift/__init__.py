"""Data drift: per-column statistical tests, reference profiles, drift over time.

>>> from mlops_nb.drift import drift
>>> report = drift(reference_df, current_df)        # doctest: +SKIP
>>> report.dataset_drift, report.drifted_columns     # doctest: +SKIP

Public API: :func:`drift`, :func:`drift_over_time`, :class:`DriftReport`,
:class:`DriftTimeline`, :func:`resolve_reference`, ``TESTS`` (test specs).

The names are imported on first use, so that importing the package does not
load scipy. Column typing and distribution sketches live below, in
:mod:`mlops_nb.profiling`, with the data profiles tracked runs store. ``mlops_nb.drift`` (this package) is
itself callable as ``drift(...)``, so ``mlops_nb.drift(ref, cur)`` works
whichever of the module or the function that attribute names.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__all__ = ["DriftReport", "DriftTimeline", "TESTS", "drift", "drift_over_time", "resolve_reference"]

_EXPORTS = {
    "drift": ("mlops_nb.drift.engine", "drift"),
    "DriftReport": ("mlops_nb.drift.report", "DriftReport"),
    "drift_over_time": ("mlops_nb.drift.timeline", "drift_over_time"),
    "DriftTimeline": ("mlops_nb.drift.timeline", "DriftTimeline"),
    "resolve_reference": ("mlops_nb.drift.reference", "resolve_reference"),
    "TESTS": ("mlops_nb.drift.stattests", "SPECS"),
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, attr = _EXPORTS[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any):
        from mlops_nb.drift.engine import drift

        return drift(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
