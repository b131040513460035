"""Store methods for notebook jobs (validations, job runs, batches, schedules)."""

from __future__ import annotations


class JobStoreMixin:
    """Mixed into :class:`~mlops_nb.store.sql.SqlStore`; uses its engine and helpers."""
