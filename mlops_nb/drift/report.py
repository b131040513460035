"""DriftReport: the result of :func:`mlops_nb.drift`."""

from __future__ import annotations

import datetime as _dt
import math
import weakref
from typing import Any

import numpy as np
import pandas as pd

from mlops_nb.errors import DriftError

#: Columns of :attr:`DriftReport.table`, in order.
TABLE_COLUMNS = [
    "column", "type", "test", "statistic", "p_value", "distance", "score", "threshold", "drifted",
    "test_drifted", "severity", "ref_rows", "cur_rows", "ref_count", "cur_count", "ref_missing_share",
    "cur_missing_share", "missing_change", "missing_drift", "unseen_categories", "unseen_share",
    "status", "reference", "note",
]  # fmt: skip


class DriftReport:
    """Per-column drift results and the dataset verdict.

    Attributes
    ----------
    table : DataFrame
        One row per column (see :data:`TABLE_COLUMNS`), index = column name.
    n_columns, n_drifted, share_drifted, dataset_drift
        The verdict: dataset drift when ``share_drifted >= drift_share``.
    histograms : dict
        Column -> aggregated reference/current counts on shared bins.
    reference_label, reference_kind, reference_note
        Which reference was used; ``reference_note`` says which input of a
        ``run:`` reference was taken and why (e.g. the largest of several).
    """

    def __init__(
        self,
        rows: list[dict],
        histograms: dict,
        *,
        drift_share: float,
        options: dict,
        reference_label: str,
        reference_kind: str,
        reference_digest: str | None,
        reference_rows: int,
        current_rows: int,
        warnings: list[str],
        current: Any = None,
        reference: Any = None,
        reference_note: str | None = None,
    ) -> None:
        self.rows = rows
        self.histograms = histograms
        self.drift_share = drift_share
        self.options = options
        self.reference_label = reference_label
        self.reference_kind = reference_kind
        self.reference_digest = reference_digest
        self.reference_rows = reference_rows
        self.reference_note = reference_note
        self.current_rows = current_rows
        self.warnings = warnings
        self.current_digest: str | None = None
        self.check_id: int | None = None
        self.created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        # weak references: a report kept in a notebook must not pin the frames in memory
        self._current = _weak(current)
        self._reference = _weak(reference)

    # ------------------------------------------------------------------ verdict
    @property
    def n_columns(self) -> int:
        return len(self.rows)

    @property
    def n_drifted(self) -> int:
        return sum(1 for r in self.rows if r["drifted"])

    @property
    def share_drifted(self) -> float:
        return self.n_drifted / self.n_columns if self.rows else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.rows) and self.share_drifted >= self.drift_share

    @property
    def drifted_columns(self) -> list[str]:
        return [r["column"] for r in self.rows if r["drifted"]]

    @property
    def table(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=TABLE_COLUMNS)
        return frame.set_index("column", drop=False).rename_axis(None)

    def to_frame(self) -> pd.DataFrame:
        """Same as :attr:`table`."""
        return self.table

    def __getitem__(self, column) -> dict:
        for r in self.rows:
            if r["column"] == column or r["column"] == str(column):
                return r
        raise KeyError(column)

    def __len__(self) -> int:
        return len(self.rows)

    def summary(self) -> str:
        verdict = "DRIFT" if self.dataset_drift else "no dataset drift"
        return (
            f"{self.n_drifted} of {self.n_columns} columns drifted "
            f"({self.share_drifted:.0%}, threshold {self.drift_share:.0%}): {verdict}"
        )

    def __repr__(self) -> str:
        note = f", {self.reference_note}" if self.reference_note else ""
        lines = [f"DriftReport: {self.summary()}", f"  reference: {self.reference_label} ({self.reference_kind}{note})"]
        for r in self.rows:
            flag = "DRIFT" if r["drifted"] else "ok   "
            score = "-" if r["score"] is None else f"{r['score']:.4g}"
            lines.append(f"  {flag} {r['column']!s:<24} {r['type']:<11} {r['test'] or r['status']:<13} {score}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict:
        """JSON-serialisable summary, rows, histograms and options."""
        return _jsonable(
            {
                "summary": {
                    "n_columns": self.n_columns,
                    "n_drifted": self.n_drifted,
                    "share_drifted": self.share_drifted,
                    "drift_share": self.drift_share,
                    "dataset_drift": self.dataset_drift,
                    "reference": self.reference_label,
                    "reference_kind": self.reference_kind,
                    "reference_note": self.reference_note,
                    "reference_digest": self.reference_digest,
                    "current_digest": self.current_digest,
                    "reference_rows": self.reference_rows,
                    "current_rows": self.current_rows,
                    "created": self.created,
                },
                "columns": self.rows,
                "histograms": self.histograms,
                "options": self.options,
                "warnings": self.warnings,
            }
        )

    @classmethod
    def from_dict(cls, data: dict) -> "DriftReport":
        """Rebuild a report from :meth:`to_dict` output (e.g. a stored check)."""
        s = data["summary"]
        rep = cls(
            data["columns"],
            data.get("histograms", {}),
            drift_share=s["drift_share"],
            options=data.get("options", {}),
            reference_label=s.get("reference", "reference"),
            reference_kind=s.get("reference_kind", "data"),
            reference_digest=s.get("reference_digest"),
            reference_rows=s.get("reference_rows", 0),
            reference_note=s.get("reference_note"),
            current_rows=s.get("current_rows", 0),
            warnings=data.get("warnings", []),
        )
        rep.current_digest = s.get("current_digest")
        rep.created = s.get("created", rep.created)
        return rep

    def _repr_html_(self) -> str:
        from mlops_nb.drift.render import report_html

        return report_html(self)

    def plot(self, column, ax=None):
        """Matplotlib figure: reference vs current histogram of ``column``."""
        from mlops_nb.drift.render import ensure_figure_display, plot_histogram

        ensure_figure_display()
        row = self[column]
        hist = self.histograms.get(row["column"])
        if hist is None:
            raise DriftError(
                f"No histogram for column {column!r}: its test was not run ({row['status']}).", column=column
            )
        return plot_histogram(hist, row, ax=ax)

    # ------------------------------------------------------------------ registry
    def save(self, store: Any = None) -> int:
        """Record this check in the registry; returns the check id.

        Stores which reference (label and data-version digest), which current
        data (its fingerprint) and the full result (:meth:`to_dict`). The
        report holds its frames weakly: fingerprints are taken here if the
        frames still exist, else recorded as unknown (None).
        """
        if store is None:
            from mlops_nb.store import get_store

            store = get_store()
        from mlops_nb.fingerprint import fingerprint

        current, reference = self._current(), self._reference()
        if self.current_digest is None and current is not None:
            self.current_digest = fingerprint(current)
        if self.reference_digest is None and reference is not None:
            # the same frame as reference and current: hash it once
            if reference is current and self.current_digest is not None:
                self.reference_digest = self.current_digest
            else:
                self.reference_digest = fingerprint(reference)
        self.check_id = store.add_drift_check(
            reference=self.reference_label,
            current_digest=self.current_digest,
            reference_digest=self.reference_digest,
            n_columns=self.n_columns,
            n_drifted=self.n_drifted,
            dataset_drift=self.dataset_drift,
            result=self.to_dict(),
        )
        return self.check_id


def _weak(obj: Any):
    """Weak reference to ``obj`` (a callable returning it, or None once it is gone)."""
    if obj is None:
        return lambda: None
    try:
        return weakref.ref(obj)
    except TypeError:  # pragma: no cover - DataFrames and Series support weak references
        return lambda: obj


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)
