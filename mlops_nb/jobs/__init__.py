"""Notebook jobs: validate, run, batch and schedule notebooks with papermill.

>>> from mlops_nb.jobs import validate, run_notebook, batch, schedule
>>> validate("train.ipynb").raise_for_status()
>>> job = run_notebook("train.ipynb", {"C": 0.5}, timeout=600)
>>> batch("train.ipynb", {"C": [0.1, 1.0], "max_depth": [2, 4]}, workers=2).table()
>>> schedule("train.ipynb", "0 3 * * *", retries=2, timeout=3600)

Every execution is papermill in a child process (papermill itself is imported
only there); what it records joins the registry.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Each name from its module on first use: `mlops-nb jobs list` must not import papermill's
# notebook stack (nbformat, jsonschema: 0.2-1 s) to print a table. No module of this package
# is named like one of these names, so importing a submodule never hides a function.
_NAMES = {
    "BatchResult": "batches", "batch": "batches", "JobRun": "job_runs", "run_notebook": "execute",
    "Scheduler": "scheduler", "schedule": ("schedules", "add_schedule"),
    "Check": "validation", "ValidationResult": "validation", "validate": "validation",
}  # fmt: skip

if TYPE_CHECKING:
    from .batches import BatchResult, batch
    from .execute import run_notebook
    from .job_runs import JobRun
    from .scheduler import Scheduler
    from .schedules import add_schedule as schedule
    from .validation import Check, ValidationResult, validate

__all__ = [
    "BatchResult", "Check", "JobRun", "Scheduler", "ValidationResult", "batch", "run_notebook",
    "schedule", "validate",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    where = _NAMES.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = where if isinstance(where, tuple) else (where, name)
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
    globals()[name] = value
    return value
