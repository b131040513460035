"""Data drift: per-column statistical tests, reference profiles, drift over time.

>>> from mlops_nb.drift import drift
>>> report = drift(reference_df, current_df)        # doctest: +SKIP
>>> report.dataset_drift, report.drifted_columns     # doctest: +SKIP

``mlops_nb.drift`` (this package) is itself callable as ``drift(...)``, so
``import mlops_nb; mlops_nb.drift(ref, cur)`` works whichever of the module or
the function ``mlops_nb.drift`` names.
"""

from __future__ import annotations

import sys
import types

from mlops_nb.drift.engine import drift
from mlops_nb.drift.reference import resolve_reference
from mlops_nb.drift.report import DriftReport
from mlops_nb.drift.stattests import SPECS as TESTS
from mlops_nb.drift.timeline import DriftTimeline, drift_over_time

__all__ = ["DriftReport", "DriftTimeline", "TESTS", "drift", "drift_over_time", "resolve_reference"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return drift(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
