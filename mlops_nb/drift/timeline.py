"""Drift over time: split current data into periods or chunks and test each."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from mlops_nb.errors import DriftError

TIMELINE_COLUMNS = [
    "chunk", "start", "end", "n_rows", "column", "type", "test", "statistic", "p_value", "distance",
    "score", "threshold", "drifted", "severity", "cur_missing_share", "unseen_share", "status",
]  # fmt: skip


class DriftTimeline(pd.DataFrame):
    """Per-chunk, per-column drift results (long format, one row per chunk x column).

    ``timeline.chunks`` has one row per chunk with the dataset verdict;
    ``timeline.plot()`` draws each column's score over the chunks with its
    threshold.
    """

    _metadata = ["chunks"]

    @property
    def _constructor(self):
        return DriftTimeline

    def plot(self, columns: list | None = None, max_columns: int = 12, ncols: int = 3):  # type: ignore[override]
        """Matplotlib figure: one line chart per column, threshold dashed, drifted chunks in red."""
        from matplotlib.figure import Figure

        from mlops_nb.drift.render import ensure_figure_display

        ensure_figure_display()
        names = list(dict.fromkeys(self["column"])) if columns is None else [str(c) for c in columns]
        names = names[:max_columns]
        if not names:
            raise DriftError("Nothing to plot: the timeline has no column results.")
        ncols = min(ncols, len(names))
        nrows = math.ceil(len(names) / ncols)
        fig = Figure(figsize=(4.2 * ncols, 2.8 * nrows), dpi=90)
        chunks = list(dict.fromkeys(self["chunk"]))
        pos = {c: i for i, c in enumerate(chunks)}
        for k, name in enumerate(names):
            ax = fig.add_subplot(nrows, ncols, k + 1)
            part = self[(self["column"] == name) & self["score"].notna()]
            if part.empty:
                ax.set_title(f"{name}: no results", fontsize=9)
                continue
            x = np.array([pos[c] for c in part["chunk"]])
            y = part["score"].to_numpy(dtype=float)
            p_test = part["p_value"].notna().all()
            if p_test:
                y = np.clip(y, 1e-16, None)
                ax.set_yscale("log")
            ax.plot(x, y, marker="o", ms=3, lw=1.2, color="#4c72b0")
            drifted = part["drifted"].to_numpy(dtype=bool)
            ax.scatter(x[drifted], y[drifted], color="#c0392b", zorder=3, s=18, label="drifted")
            ax.step(x, part["threshold"].to_numpy(dtype=float), where="mid", ls="--", color="#c0392b", lw=1,
                    label="threshold")  # fmt: skip
            tests = ", ".join(dict.fromkeys(part["test"].dropna()))
            ax.set_title(f"{name} ({tests})", fontsize=9)
            ax.set_ylabel("p-value (drift below)" if p_test else "distance (drift above)", fontsize=8)
            step = max(1, len(chunks) // 6)
            ticks = list(range(0, len(chunks), step))
            ax.set_xticks(ticks)
            ax.set_xticklabels([_short(chunks[i]) for i in ticks], fontsize=7, rotation=30)
            if k == 0:
                ax.legend(fontsize=7)
        fig.tight_layout()
        return fig


def _short(label: Any) -> str:
    if isinstance(label, pd.Timestamp):
        return str(label.date()) if label == label.normalize() else str(label)
    return str(label)


def drift_over_time(
    reference: Any,
    current: pd.DataFrame,
    by: str | None = None,
    *,
    chunk_size: int | None = None,
    time_column: Any = None,
    store: Any = None,
    **options: Any,
) -> DriftTimeline:
    """Drift of ``current`` against ``reference`` per time period or per chunk.

    Parameters
    ----------
    reference : DataFrame, profile or str
        As for :func:`mlops_nb.drift`; prepared once and reused for every chunk.
    current : DataFrame
        Data to split.
    by : str, optional
        pandas frequency (``"D"``, ``"W"``, ``"MS"``...) to group rows by the
        ``time_column`` (or the DatetimeIndex). Empty periods are skipped;
        rows without a time are left out (reported in ``timeline.attrs``).
    chunk_size : int, optional
        Instead of ``by``: consecutive chunks of this many rows (the last may
        be shorter).
    time_column : optional
        Column holding the times; it is not itself tested.
    **options
        Passed to :func:`mlops_nb.drift` (columns, method, threshold, ...).
    """
    from mlops_nb.drift.engine import PreparedReference, compare
    from mlops_nb.profiling.profile import as_frame

    if (by is None) == (chunk_size is None):
        raise DriftError("Give exactly one of by='W' (a pandas frequency) or chunk_size=N.")
    frame = as_frame(current)
    if frame is None:
        raise DriftError(f"current must be a DataFrame, not {type(current).__name__}.")
    prepared = PreparedReference.from_any(reference, options.pop("reference_label", None), store)
    if time_column is not None and time_column not in frame.columns:
        raise DriftError(f"time_column {time_column!r} is not a column of the current data.", column=time_column)
    chunks, dropped = _split(frame, by, chunk_size, time_column)
    exclude = (time_column,) if time_column is not None else ()
    records, summary = [], []
    for key, start, end, part in chunks:
        rep = compare(prepared, part, exclude=exclude, **options)
        for r in rep.rows:
            rec = {k: r.get(k) for k in TIMELINE_COLUMNS if k in r}
            rec.update(chunk=key, start=start, end=end, n_rows=len(part))
            records.append(rec)
        summary.append(
            {
                "chunk": key, "start": start, "end": end, "n_rows": len(part), "n_columns": rep.n_columns,
                "n_drifted": rep.n_drifted, "share_drifted": rep.share_drifted, "dataset_drift": rep.dataset_drift,
            }  # fmt: skip
        )
    out = DriftTimeline(pd.DataFrame.from_records(records, columns=TIMELINE_COLUMNS))
    out.chunks = pd.DataFrame(summary, columns=["chunk", "start", "end", "n_rows", "n_columns", "n_drifted",
                                                "share_drifted", "dataset_drift"])  # fmt: skip
    out.attrs["rows_without_time"] = dropped
    out.attrs["reference"] = prepared.label
    return out


def _split(frame: pd.DataFrame, by, chunk_size, time_column):
    """[(key, start, end, part)] and the number of rows left out for lack of a time."""
    if chunk_size is not None:
        if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
            raise DriftError(f"chunk_size must be a positive integer, got {chunk_size!r}.")
        times = _times(frame, time_column) if time_column is not None else None
        out = []
        for i, lo in enumerate(range(0, len(frame), int(chunk_size))):
            hi = min(lo + int(chunk_size), len(frame))
            if times is not None:
                t = times.iloc[lo:hi].dropna()
                start, end = (t.min(), t.max()) if len(t) else (None, None)
            else:
                start, end = lo, hi - 1
            out.append((i, start, end, frame.iloc[lo:hi]))
        return out, 0
    if time_column is None and not isinstance(frame.index, pd.DatetimeIndex):
        raise DriftError(
            "by= needs times: pass time_column='...' or give the current data a DatetimeIndex.",
        )
    times = _times(frame, time_column)
    valid = times.notna().to_numpy()
    positions = pd.Series(np.flatnonzero(valid), index=pd.DatetimeIndex(times[valid]))
    try:
        groups = positions.groupby(pd.Grouper(freq=by))
    except (ValueError, TypeError) as exc:
        raise DriftError(f"by={by!r} is not a pandas frequency such as 'D', 'W' or 'MS' ({exc}).", by=by) from None
    out = []
    for key, pos in groups:
        if len(pos) == 0:
            continue
        idx = pos.to_numpy()
        out.append((key, pos.index.min(), pos.index.max(), frame.iloc[idx]))
    return out, int((~valid).sum())


def _times(frame: pd.DataFrame, time_column) -> pd.Series:
    raw = frame[time_column] if time_column is not None else frame.index.to_series(index=range(len(frame)))
    try:
        times = pd.to_datetime(raw, errors="coerce")
    except (TypeError, ValueError) as exc:
        raise DriftError(f"Cannot read times from {time_column!r}: {exc}.", column=time_column) from None
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return times.reset_index(drop=True)
