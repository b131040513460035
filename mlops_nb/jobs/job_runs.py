"""What one notebook execution came to: :class:`JobRun`, as run_notebook returns it and the
registry keeps it (a module of its own: listing job runs needs no notebook machinery)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import NotebookExecutionError


@dataclass
class JobRun:
    """Outcome of one notebook execution (also stored as a ``job_runs`` row).

    ``status`` is ``finished``, ``failed``, ``timeout`` or ``interrupted``;
    ``failed_cell`` names the cell that raised (index in the source notebook,
    execution count, source line, exception); ``run_ids`` are the runs that
    ``%%mlops track`` cells recorded inside the notebook.
    """

    id: str
    notebook_path: str
    notebook_hash: str
    parameters: dict[str, Any]
    kernel: str
    status: str
    start_time: float
    end_time: float
    duration: float
    output_digest: str | None = None
    output_url: str | None = None
    error: str | None = None
    failed_cell: dict[str, Any] | None = None
    run_ids: list[str] = field(default_factory=list)
    batch_id: str | None = None
    schedule_name: str | None = None
    firing_id: int | None = None
    attempt: int | None = None
    queued: str | None = None  # why the record waits in the local spool (registry unreachable)

    @property
    def ok(self) -> bool:
        return self.status == "finished"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe_failure(self) -> str:
        """One line: where and why the notebook failed."""
        if self.ok:
            return ""
        if self.status == "timeout":
            return f"timed out: {self.error}"
        cell = self.failed_cell
        if cell:
            where = f"cell {cell['index']}"
            if cell.get("execution_count") is not None:
                where += f" [In {cell['execution_count']}]"
            if cell.get("line"):
                where += f", line {cell.get('lineno') or '?'}: {cell['line'].strip()}"
            return f"{where}: {cell.get('ename')}: {cell.get('evalue')}"
        return (self.error or self.status).strip().splitlines()[-1] if (self.error or "").strip() else self.status

    def raise_for_status(self) -> JobRun:
        """Raise :class:`NotebookExecutionError` unless the notebook finished."""
        if not self.ok:
            raise NotebookExecutionError(
                f"Notebook {self.notebook_path} {self.status} ({self.describe_failure()}). "
                f"The executed notebook is kept as artifact {self.output_digest or '(none)'}; "
                f"see mlops-nb jobs show {self.id[:8]}.",
                job_run_id=self.id,
                failed_cell=self.failed_cell,
            )
        return self


def job_run_from_record(row: Mapping[str, Any]) -> JobRun:
    """A :class:`JobRun` from a ``job_runs`` row."""
    names = JobRun.__dataclass_fields__
    values = {k: row.get(k) for k in names}
    values["parameters"] = values["parameters"] or {}
    values["run_ids"] = values["run_ids"] or []
    values["end_time"] = values["end_time"] or 0.0
    values["duration"] = values["duration"] or 0.0
    return JobRun(**values)
