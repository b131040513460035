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

# Imported eagerly: a lazy import of the submodule ``validate`` would replace
# the function of the same name on this package with the module.
from .batches import BatchResult, batch
from .execute import JobRun, run_notebook
from .scheduler import Scheduler
from .schedules import add_schedule as schedule
from .validation import Check, ValidationResult, validate

__all__ = [
    "BatchResult", "Check", "JobRun", "Scheduler", "ValidationResult", "batch", "run_notebook",
    "schedule", "validate",
]  # fmt: skip
